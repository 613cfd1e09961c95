//! Signing in and out, and the signed-in user of every other console page.
//!
//! The session cookie is HttpOnly and SameSite=Strict (Secure when the service is reached over
//! https). The sign-in form itself is protected by a double-submit token: a random value in a
//! short-lived cookie that the form must repeat, so another site cannot sign a browser in.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use chrono::Utc;
use sea_orm::EntityTrait;
use serde::Deserialize;

use super::{CsrfForm, Nav, PageError, see_other};
use crate::http::client_address::ClientAddress;
use crate::ids;
use crate::services::audit::Actor;
use crate::services::console_sessions::{self, csrf_matches, session_ttl};
use crate::services::links::PublicUrl;
use crate::services::operator_users::{self, SignInError};
use crate::services::throttle::LoginThrottle;
use crate::store::Db;
use crate::store::entities::{operator, operator_user};

pub const SESSION_COOKIE: &str = "surclass_console";
const SIGN_IN_CSRF_COOKIE: &str = "surclass_console_csrf";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(sign_in_page).service(sign_in).service(sign_out);
}

/// The signed-in console user, with the session's CSRF token.
pub struct ConsoleUser {
    pub user: operator_user::Model,
    pub operator_name: String,
    pub csrf: String,
    token: String,
}

impl ConsoleUser {
    pub fn operator_id(&self) -> &str {
        &self.user.operator_id
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == "admin"
    }

    pub fn actor(&self) -> Actor {
        Actor::user(&self.user.operator_id, &self.user.email)
    }

    pub fn nav(&self, active: &'static str) -> Nav {
        Nav {
            email: self.user.email.clone(),
            operator: self.operator_name.clone(),
            csrf: self.csrf.clone(),
            admin: self.is_admin(),
            active,
        }
    }

    /// Every POST calls this before changing anything.
    pub fn check_csrf(&self, given: &str) -> Result<(), PageError> {
        if csrf_matches(&self.csrf, given) {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }

    pub fn require_admin(&self) -> Result<(), PageError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(PageError::Forbidden(
                "Only an operator admin can do this.".into(),
            ))
        }
    }
}

impl FromRequest for ConsoleUser {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let db = req
            .app_data::<web::Data<Db>>()
            .expect("database configured")
            .get_ref()
            .clone();
        let token = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
        Box::pin(async move {
            let token = token.ok_or(PageError::SignIn)?;
            let (session, user) = console_sessions::find(&db, &token, Utc::now())
                .await?
                .ok_or(PageError::SignIn)?;
            let operator_name = operator::Entity::find_by_id(user.operator_id.clone())
                .one(&db)
                .await?
                .map(|o| o.name)
                .unwrap_or_default();
            Ok(Self {
                user,
                operator_name,
                csrf: session.csrf_token,
                token,
            })
        })
    }
}

fn secure(public_url: &PublicUrl) -> bool {
    public_url.as_str().starts_with("https://")
}

fn cookie<'a>(name: &'a str, value: String, max_age: CookieDuration, secure: bool) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/console")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(max_age)
        .finish()
}

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    csrf: String,
    email: String,
    error: Option<String>,
}

fn sign_in_form(
    public_url: &PublicUrl,
    email: String,
    error: Option<String>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, PageError> {
    let csrf = ids::random_token("pre", 24);
    let body = SignInPage {
        csrf: csrf.clone(),
        email,
        error,
    }
    .render()?;
    Ok(HttpResponse::build(status)
        .content_type(actix_web::http::header::ContentType::html())
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .cookie(cookie(
            SIGN_IN_CSRF_COOKIE,
            csrf,
            CookieDuration::hours(1),
            secure(public_url),
        ))
        .body(body))
}

#[get("/console/sign-in")]
async fn sign_in_page(public_url: web::Data<PublicUrl>) -> Result<HttpResponse, PageError> {
    sign_in_form(
        &public_url,
        String::new(),
        None,
        actix_web::http::StatusCode::OK,
    )
}

#[derive(Deserialize)]
struct SignInForm {
    email: String,
    password: String,
    csrf: String,
}

/// One wording for an account locked and for an email (known or not) refused for its wrong
/// passwords, with no time (the two clocks differ): the page does not tell which emails have
/// accounts.
fn locked_text() -> String {
    format!(
        "Too many wrong passwords: signing in with this email is locked for up to {} minutes. Try again later.",
        operator_users::lock_out().num_minutes()
    )
}

#[post("/console/sign-in")]
async fn sign_in(
    req: HttpRequest,
    db: web::Data<Db>,
    public_url: web::Data<PublicUrl>,
    throttle: web::Data<LoginThrottle>,
    ClientAddress(client): ClientAddress,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let expected = req
        .cookie(SIGN_IN_CSRF_COOKIE)
        .map(|c| c.value().to_owned());
    if !expected.is_some_and(|e| csrf_matches(&e, &form.csrf)) {
        return Err(PageError::Csrf);
    }
    let now = Utc::now();
    // Limited per client address as travellers' sign-ins are, before any password is hashed:
    // the form's cookie check costs a script nothing. Wrong passwords for an email count here
    // too, known or not, so an unknown email is refused as a locked account is.
    let email_key = operator_users::throttle_key(&form.email);
    let from_here = |wait: u64| {
        format!(
            "Too many sign-in attempts from your address: try again after {} UTC.",
            (now + chrono::Duration::seconds(wait as i64)).format("%Y-%m-%d %H:%M:%S")
        )
    };
    let refusal = match throttle
        .admit(&client)
        .and_then(|()| throttle.check_client(&client))
    {
        Err(wait) => Some(from_here(wait)),
        Ok(()) => throttle
            .check_reference(&email_key)
            .err()
            .map(|_| locked_text()),
    };
    if let Some(text) = refusal {
        return sign_in_form(
            &public_url,
            form.email,
            Some(text),
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let mut outcome = operator_users::sign_in(&db, &form.email, &form.password, now).await;
    match &outcome {
        Ok(_) => throttle.record_success(&email_key),
        Err(SignInError::Wrong) => {
            throttle.record_failure(&client, &email_key);
            // The wrong password that reaches the limit is refused as a locking one is.
            if throttle.check_reference(&email_key).is_err() {
                outcome = Err(SignInError::Locked { until: now });
            }
        }
        Err(_) => {}
    }
    match outcome {
        Ok(user) => {
            let (token, _) = console_sessions::start(&db, &user, now).await?;
            let ttl = CookieDuration::seconds(session_ttl().num_seconds());
            let mut gone = cookie(
                SIGN_IN_CSRF_COOKIE,
                String::new(),
                CookieDuration::ZERO,
                secure(&public_url),
            );
            gone.make_removal();
            Ok(HttpResponse::SeeOther()
                .insert_header((actix_web::http::header::LOCATION, "/console/lots"))
                .cookie(cookie(SESSION_COOKIE, token, ttl, secure(&public_url)))
                .cookie(gone)
                .finish())
        }
        Err(SignInError::Wrong) => sign_in_form(
            &public_url,
            form.email,
            Some(format!(
                "The email or password is not right. After {} wrong passwords in a row the account is locked for {} minutes.",
                operator_users::MAX_FAILURES,
                operator_users::lock_out().num_minutes()
            )),
            actix_web::http::StatusCode::UNAUTHORIZED,
        ),
        Err(SignInError::Locked { .. }) => sign_in_form(
            &public_url,
            form.email,
            Some(locked_text()),
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(SignInError::Db(e)) => Err(e.into()),
    }
}

#[post("/console/sign-out")]
async fn sign_out(
    user: ConsoleUser,
    db: web::Data<Db>,
    public_url: web::Data<PublicUrl>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    console_sessions::end(&db, &user.token).await?;
    let mut gone = cookie(
        SESSION_COOKIE,
        String::new(),
        CookieDuration::ZERO,
        secure(&public_url),
    );
    gone.make_removal();
    let mut res = see_other("/console/sign-in");
    res.add_cookie(&gone).map_err(|_| PageError::Internal)?;
    Ok(res)
}
