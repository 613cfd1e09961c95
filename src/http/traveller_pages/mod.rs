//! The traveller's pages, served by this process: sign in with a booking (or a signed link),
//! see the upgrades on offer, bid on one screen, follow the bid's timeline, change or
//! withdraw until the close. Server-rendered (askama), forms that work without JavaScript
//! (POST, then redirect), a little script for the slider and the live total.
//!
//! Pages call the same services as the REST API. Sessions are the API's `surclass_session`
//! cookie; every POST carries a form token derived from the session (plus SameSite=Lax).

mod assets;
mod bid;
mod card;
mod errors;
pub use errors::failures_in_their_language;
pub mod i18n;
mod offers;
mod privacy;
mod sign_in;
mod status;
mod view;

use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use sea_orm::EntityTrait;

use crate::http::api::auth::SESSION_COOKIE;
use crate::services::keys;
use crate::services::sessions::{SessionSigner, session_ttl};
use crate::store::Db;
use crate::store::entities::booking;

pub use errors::PageError;
use i18n::{Lang, Strings};

/// Page settings fixed at start-up.
#[derive(Clone, Debug, Default)]
pub struct PagesConfig {
    /// Stripe's publishable key when the Stripe gateway is configured: the bid screen then
    /// shows Stripe's Payment Element instead of the local card form.
    pub stripe_publishable_key: Option<String>,
    /// Cookies get `Secure` when the public URL is https.
    pub secure_cookies: bool,
}

pub const LANG_COOKIE: &str = "lang";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(sign_in::page)
        .service(sign_in::submit)
        .service(sign_in::status_link)
        .service(sign_in::sign_out)
        .service(sign_in::switch_language)
        .service(offers::page)
        .service(bid::page)
        .service(bid::submit)
        .service(status::page)
        .service(status::change)
        .service(status::withdraw)
        .service(status::replace_card)
        .service(privacy::download)
        .service(privacy::erase)
        .service(assets::serve);
}

/// What every page's frame needs: language, title, where the language switch returns to.
pub struct Chrome {
    pub lang: &'static str,
    pub t: &'static Strings,
    pub title: String,
    /// This page's path, for the language switch to come back to.
    pub here: String,
    pub signed_in: bool,
    pub csrf: String,
    pub css: String,
    pub js: String,
    /// Load Stripe.js (only when the Stripe gateway is configured and the page takes a card).
    pub stripe_js: bool,
}

impl Chrome {
    pub fn new(lang: Lang, title: impl Into<String>, here: impl Into<String>) -> Self {
        Self {
            lang: lang.code(),
            t: lang.t(),
            title: title.into(),
            here: here.into(),
            signed_in: false,
            csrf: String::new(),
            css: assets::css_url(),
            js: assets::js_url(),
            stripe_js: false,
        }
    }

    pub fn signed_in(mut self, traveller: &Traveller) -> Self {
        self.signed_in = true;
        self.csrf = traveller.csrf.clone();
        self
    }

    pub fn other_lang(&self) -> &'static str {
        if self.lang == "fr" { "en" } else { "fr" }
    }
}

/// A traveller signed in to one booking through the session cookie.
pub struct Traveller {
    pub booking: booking::Model,
    pub lang: Lang,
    /// The form token this session's forms must carry.
    pub csrf: String,
}

fn data<T: 'static>(req: &HttpRequest) -> web::Data<T> {
    req.app_data::<web::Data<T>>()
        .expect("configured in app.rs")
        .clone()
}

pub fn config(req: &HttpRequest) -> PagesConfig {
    req.app_data::<web::Data<PagesConfig>>()
        .map(|c| c.get_ref().clone())
        .unwrap_or_default()
}

/// The language to answer in: the switch's cookie, else the browser's, else the booking's.
pub fn language(req: &HttpRequest, booking: Option<&booking::Model>) -> Lang {
    req.cookie(LANG_COOKIE)
        .and_then(|c| Lang::from_tag(c.value()))
        .or_else(|| {
            req.headers()
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
        .or_else(|| booking.and_then(|b| Lang::from_tag(&b.language)))
        .unwrap_or(Lang::En)
}

/// The signed-in traveller, or a redirect to the sign-in page that says the session ended.
pub async fn traveller(req: &HttpRequest) -> Result<Traveller, PageError> {
    let signer = data::<SessionSigner>(req);
    let db = data::<Db>(req);
    let Some(token) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()) else {
        return Err(PageError::SignedOut { expired: false });
    };
    let Some(claims) = signer.verify(&token, Utc::now()) else {
        return Err(PageError::SignedOut { expired: true });
    };
    // A session a partner opened, its key since revoked, has ended.
    if let Some(key_id) = &claims.key_id
        && !keys::live(db.get_ref(), key_id).await?
    {
        return Err(PageError::SignedOut { expired: true });
    }
    let booking = booking::Entity::find_by_id(claims.booking_id)
        .one(db.get_ref())
        .await?
        .filter(|b| b.erased_at.is_none())
        .ok_or(PageError::SignedOut { expired: true })?;
    Ok(Traveller {
        lang: language(req, Some(&booking)),
        csrf: signer.form_token(&token),
        booking,
    })
}

/// Refuses a POST whose form token is not this session's: a page of another site cannot
/// make the traveller's browser bid or withdraw.
pub fn check_csrf(traveller: &Traveller, sent: Option<&str>) -> Result<(), PageError> {
    let expected = traveller.csrf.as_bytes();
    let sent = sent.unwrap_or("").as_bytes();
    // Constant-time comparison: the token is a secret.
    let same = expected.len() == sent.len()
        && expected
            .iter()
            .zip(sent)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(PageError::FormExpired(traveller.lang))
    }
}

/// A new session cookie for a booking (HttpOnly, SameSite=Lax, Secure on https).
pub fn session_cookie(req: &HttpRequest, booking_id: &str) -> Cookie<'static> {
    let signer = data::<SessionSigner>(req);
    let token = signer.sign(booking_id, Utc::now() + session_ttl());
    Cookie::build(SESSION_COOKIE, token)
        .path("/")
        .http_only(true)
        .secure(config(req).secure_cookies)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(session_ttl().num_seconds()))
        .finish()
}

/// An HTML page: never cached (it is one traveller's), never framed, no referrer leaks.
pub fn html(status: StatusCode, body: String) -> HttpResponse {
    let mut res = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body);
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    res
}

pub fn render(status: StatusCode, page: &impl askama::Template) -> Result<HttpResponse, PageError> {
    let body = page
        .render()
        .map_err(|e| PageError::Render(e.to_string()))?;
    Ok(html(status, body))
}

/// POST, then redirect: a reload never submits twice.
pub fn see_other(location: impl AsRef<str>) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.as_ref()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}
