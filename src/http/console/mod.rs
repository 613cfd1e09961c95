//! The operator console: server-rendered pages under `/console/…` that call the same services
//! as the REST API. Forms work without JavaScript; every POST carries the session's CSRF token.
//! Another operator's lot, bid or booking is "not found", never "forbidden".

mod audit;
mod bids;
mod bookings;
mod charts;
mod dashboard;
pub(crate) mod form;
mod lots;
mod review;
mod session;
mod users;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpResponse, ResponseError, get, web};
use askama::Template;

pub use session::{ConsoleUser, SESSION_COOKIE};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(stylesheet)
        .service(home)
        .configure(session::routes)
        .configure(lots::routes)
        .configure(bids::routes)
        .configure(review::routes)
        .configure(bookings::routes)
        .configure(dashboard::routes)
        .configure(users::routes)
        .configure(audit::routes);
}

const CSS: &str = include_str!("../../../static/console/console.css");

#[get("/console/static/console.css")]
async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(CSS)
}

#[get("/console")]
async fn home() -> HttpResponse {
    see_other("/console/lots")
}

/// What every page's header needs: who is signed in, for which operator, and the CSRF token
/// for the sign-out form.
#[derive(Debug, Clone)]
pub struct Nav {
    pub email: String,
    pub operator: String,
    pub csrf: String,
    pub admin: bool,
    pub active: &'static str,
}

/// A page that could not be shown: the sign-in page for a missing session, otherwise an HTML
/// page saying what went wrong (never a JSON problem: people read these).
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("sign in first")]
    SignIn,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(
        "This form has expired or did not come from the console. Go back, reload the page and try again."
    )]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    /// Refused as things stand (the last admin, say).
    #[error("{0}")]
    Conflict(String),
    #[error("Something went wrong on our side; nothing was changed. Try again in a minute.")]
    Internal,
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: String,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::SignIn => StatusCode::SEE_OTHER,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Forbidden(_) | PageError::Csrf => StatusCode::FORBIDDEN,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Conflict(_) => StatusCode::CONFLICT,
            PageError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let PageError::SignIn = self {
            return see_other("/console/sign-in");
        }
        let title = match self {
            PageError::NotFound(_) => "Not found",
            PageError::Forbidden(_) | PageError::Csrf => "Not allowed",
            PageError::BadRequest(_) | PageError::Conflict(_) => "Cannot do that",
            _ => "Error",
        };
        let body = ErrorPage {
            title,
            message: self.to_string(),
        }
        .render()
        .unwrap_or_else(|_| self.to_string());
        HttpResponse::build(self.status_code())
            .content_type(ContentType::html())
            .body(body)
    }
}

impl From<sea_orm::DbErr> for PageError {
    fn from(e: sea_orm::DbErr) -> Self {
        tracing::error!(error = %e, "console: database error");
        PageError::Internal
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        tracing::error!(error = %e, "console: template error");
        PageError::Internal
    }
}

impl From<crate::services::lots::LotError> for PageError {
    fn from(e: crate::services::lots::LotError) -> Self {
        use crate::services::lots::LotError;
        match e {
            LotError::NotFound => PageError::NotFound("No such lot.".into()),
            LotError::Db(e) => e.into(),
            e @ (LotError::Invalid(_) | LotError::WrongState { .. }) => {
                PageError::BadRequest(e.to_string())
            }
        }
    }
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
}

pub fn html(page: impl Template) -> Result<HttpResponse, PageError> {
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(page.render()?))
}

/// A paged list's address: `path` with the filters that are set, starting after `cursor`
/// (a [`crate::http::pagination::cursor_for`] of the last row shown), or from the start.
pub fn list_href(path: &str, filters: &[(&str, &str)], cursor: Option<&str>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in filters.iter().filter(|(_, v)| !v.is_empty()) {
        q.append_pair(name, value);
    }
    if let Some(cursor) = cursor {
        q.append_pair("after", cursor);
    }
    match q.finish() {
        q if q.is_empty() => path.to_owned(),
        q => format!("{path}?{q}"),
    }
}

/// A form that carries nothing but the session's CSRF token: a button that does one thing.
#[derive(serde::Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

/// A page link's `after` that no list made (edited, cut short, or from another list).
#[derive(Debug)]
pub struct BadLink;

/// Where a paged list starts: at the top when `after` is empty, otherwise after the sort key
/// its cursor carries. The list says a refused link on the page, beside a link to its start.
pub fn page_start<K: serde::de::DeserializeOwned>(after: &str) -> Result<Option<K>, BadLink> {
    match after {
        "" => Ok(None),
        cursor => crate::http::pagination::decode_cursor(cursor)
            .map(Some)
            .ok_or(BadLink),
    }
}

/// A form page shown again with its errors: 422 so tests and tools see the refusal.
pub fn html_invalid(page: impl Template) -> Result<HttpResponse, PageError> {
    Ok(HttpResponse::UnprocessableEntity()
        .content_type(ContentType::html())
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(page.render()?))
}

/// Field errors by field name, for showing each beside its field.
#[derive(Debug, Default, Clone)]
pub struct FormErrors(pub Vec<(String, String)>);

impl FormErrors {
    pub fn from_fields(errors: &crate::domain::validation::FieldErrors) -> Self {
        Self(
            errors
                .0
                .iter()
                .map(|e| (e.field.clone(), e.message.clone()))
                .collect(),
        )
    }

    pub fn for_field(&self, name: &str) -> Option<String> {
        let found: Vec<&str> = self
            .0
            .iter()
            .filter(|(f, _)| f == name)
            .map(|(_, m)| m.as_str())
            .collect();
        (!found.is_empty()).then(|| found.join("; "))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Minor units as a decimal amount in the currency, for display.
pub fn money(minor: i64, currency: &str) -> String {
    crate::money::Currency::parse(currency)
        .ok()
        .and_then(|c| crate::money::Money::from_minor(minor, c).ok())
        .map(|m| format!("{m} {currency}"))
        .unwrap_or_else(|| format!("{minor} (minor units) {currency}"))
}
