//! What a page shows when it cannot do its job. Bad input is not here: each page shows that
//! on the same screen, with what to do. This is for the session ending, a forged or stale
//! form, an unknown address, and our own failures.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;
use sea_orm::DbErr;

use super::i18n::Lang;
use super::{Chrome, html, language, see_other};

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No session, or it expired: back to the sign-in page, which says so.
    #[error("not signed in")]
    SignedOut { expired: bool },
    /// The form token did not match this session.
    #[error("form token missing or not this session's")]
    FormExpired(Lang),
    #[error("no such page for this booking")]
    NotFound(Lang),
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("template: {0}")]
    Render(String),
}

#[derive(Template)]
#[template(path = "traveller/message.html")]
struct MessagePage {
    c: Chrome,
    heading: &'static str,
    text: &'static str,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::SignedOut { .. } => StatusCode::SEE_OTHER,
            PageError::FormExpired(_) => StatusCode::FORBIDDEN,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Db(_) | PageError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (lang, heading, text) = match self {
            PageError::SignedOut { expired } => {
                return see_other(if *expired { "/?session=expired" } else { "/" });
            }
            PageError::FormExpired(lang) => (*lang, lang.t().problem, lang.t().form_expired),
            PageError::NotFound(lang) => (*lang, lang.t().not_found_title, lang.t().not_found),
            PageError::Db(e) => {
                tracing::error!(error = %e, "traveller page failed");
                return our_failure(Lang::En);
            }
            PageError::Render(e) => {
                tracing::error!(error = %e, "traveller page did not render");
                return our_failure(Lang::En);
            }
        };
        message(self.status_code(), lang, heading, text)
    }
}

fn message(
    status: StatusCode,
    lang: Lang,
    heading: &'static str,
    text: &'static str,
) -> HttpResponse {
    let page = MessagePage {
        c: Chrome::new(lang, heading, "/offers"),
        heading,
        text,
    };
    let body = page
        .render()
        .unwrap_or_else(|_| format!("<!doctype html><title>{heading}</title><p>{text}"));
    html(status, body)
}

/// Marks the page that says our side failed, to be put in the traveller's language.
#[derive(Clone, Copy)]
struct OurFailure;

fn our_failure(lang: Lang) -> HttpResponse {
    let t = lang.t();
    let mut res = message(
        StatusCode::INTERNAL_SERVER_ERROR,
        lang,
        t.error_title,
        t.error_text,
    );
    res.extensions_mut().insert(OurFailure);
    res
}

/// Our failure's page in the traveller's language: the error that makes it cannot see the
/// request, so the page is made again here, where the language is known.
pub async fn failures_in_their_language(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let res = next.call(req).await?;
    if res.response().extensions().get::<OurFailure>().is_none() {
        return Ok(res.map_into_boxed_body());
    }
    let lang = language(res.request(), None);
    if lang == Lang::En {
        return Ok(res.map_into_boxed_body());
    }
    let (req, _) = res.into_parts();
    Ok(ServiceResponse::new(req, our_failure(lang)))
}
