//! `/`: booking reference + last name, nothing else. `/s/{token}`: the signed link from an
//! email or notice opens the booking without typing anything. `/lang/{code}`: the switch.

use std::collections::HashMap;

use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use chrono::Utc;
use rand::RngCore;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::i18n::Lang;
use super::view::Alert;
use super::{
    Chrome, LANG_COOKIE, PageError, check_csrf, language, render, see_other, session_cookie,
    traveller,
};
use crate::domain::bid::BidStatus;
use crate::domain::identity::reference_key;
use crate::http::api::auth::SESSION_COOKIE;
use crate::http::client_address::ClientAddress;
use crate::services::bookings::{self, TravellerMatch};
use crate::services::sessions::SessionSigner;
use crate::services::throttle::LoginThrottle;
use crate::store::Db;
use crate::store::entities::{bid, booking};

/// The sign-in form has no session to derive a form token from: it carries a random token
/// that must match this cookie (double submit), so another site cannot sign a browser in.
const FORM_COOKIE: &str = "surclass_form";

#[derive(Template)]
#[template(path = "traveller/sign_in.html")]
struct SignInPage {
    c: Chrome,
    alert: Option<Alert>,
    notice: Option<&'static str>,
    typed: Typed,
    /// When bookings of several companies match: each company's slug and name, to choose.
    companies: Vec<(String, String)>,
    form_token: String,
}

/// What the traveller typed (or their link carried), kept on the form shown again.
#[derive(Default, Clone)]
struct Typed {
    reference: String,
    last_name: String,
    /// The company's slug, from an operator's link (`/?operator=aurora-air`) or a choice.
    operator: String,
}

fn sign_in_page(
    req: &HttpRequest,
    status: StatusCode,
    alert: Option<Alert>,
    notice: Option<&'static str>,
    typed: Typed,
    companies: Vec<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let lang = language(req, None);
    let form_token = req
        .cookie(FORM_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 32)
        .unwrap_or_else(|| {
            let mut bytes = [0u8; 16];
            rand::rng().fill_bytes(&mut bytes);
            hex::encode(bytes)
        });
    let view = SignInPage {
        c: Chrome::new(lang, lang.t().sign_in_title, "/"),
        alert,
        notice,
        typed,
        companies,
        form_token: form_token.clone(),
    };
    let mut res = render(status, &view)?;
    let cookie = Cookie::build(FORM_COOKIE, form_token)
        .path("/")
        .http_only(true)
        .secure(super::config(req).secure_cookies)
        .same_site(SameSite::Strict)
        .finish();
    res.add_cookie(&cookie)
        .map_err(|e| PageError::Render(e.to_string()))?;
    Ok(res)
}

#[get("/")]
pub async fn page(req: HttpRequest) -> Result<HttpResponse, PageError> {
    let lang = language(&req, None);
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let notice = match query.get("session").map(String::as_str) {
        Some("expired") => Some(lang.t().session_expired),
        Some("ended") => Some(lang.t().signed_out),
        _ => None,
    };
    let typed = Typed {
        operator: query.get("operator").cloned().unwrap_or_default(),
        ..Typed::default()
    };
    sign_in_page(&req, StatusCode::OK, None, notice, typed, Vec::new())
}

#[post("/")]
pub async fn submit(
    req: HttpRequest,
    db: web::Data<Db>,
    throttle: web::Data<LoginThrottle>,
    ClientAddress(client): ClientAddress,
    form: web::Form<HashMap<String, String>>,
) -> Result<HttpResponse, PageError> {
    let lang = language(&req, None);
    let t = lang.t();
    let field = |name: &str| {
        form.get(name)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let typed = Typed {
        reference: field("reference"),
        last_name: field("last_name"),
        operator: field("operator"),
    };
    let (reference, last_name) = (&typed.reference, &typed.last_name);
    let again = |status, alert: Alert| {
        sign_in_page(&req, status, Some(alert), None, typed.clone(), Vec::new())
    };
    let cookie_token = req.cookie(FORM_COOKIE).map(|c| c.value().to_owned());
    if cookie_token.is_none()
        || cookie_token.as_deref() != form.get("form_token").map(String::as_str)
    {
        return again(StatusCode::FORBIDDEN, Alert::new(t.form_expired));
    }
    if reference.is_empty() || last_name.is_empty() {
        let on = if reference.is_empty() {
            "reference"
        } else {
            "last_name"
        };
        return again(
            StatusCode::UNPROCESSABLE_ENTITY,
            Alert::new(t.sign_in_missing).on(on),
        );
    }
    let key = reference_key(reference);
    // A flood from one address is slowed here as on the API, right answers counting too.
    if throttle.admit(&client).is_err() || throttle.check(&client, &key).is_err() {
        return again(
            StatusCode::TOO_MANY_REQUESTS,
            Alert::new(t.sign_in_throttled),
        );
    }
    let operator = Some(typed.operator.as_str()).filter(|o| !o.is_empty());
    match bookings::find_for_traveller(db.get_ref(), reference, last_name, operator).await? {
        TravellerMatch::One(b) => {
            throttle.record_success(&key);
            let mut res = see_other("/offers");
            res.add_cookie(&session_cookie(&req, &b.id))
                .map_err(|e| PageError::Render(e.to_string()))?;
            Ok(res)
        }
        // The right pair, for bookings with several companies: which one is theirs.
        TravellerMatch::Several(companies) => {
            throttle.record_success(&key);
            let companies = companies.into_iter().map(|c| (c.slug, c.name)).collect();
            sign_in_page(&req, StatusCode::OK, None, None, typed.clone(), companies)
        }
        TravellerMatch::UnknownOperator => {
            let typed = Typed {
                operator: String::new(),
                ..typed.clone()
            };
            sign_in_page(
                &req,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(Alert::new(t.unknown_company)),
                None,
                typed,
                Vec::new(),
            )
        }
        TravellerMatch::None => {
            throttle.record_failure(&client, &key);
            again(
                StatusCode::UNAUTHORIZED,
                Alert::new(t.sign_in_wrong).on("reference"),
            )
        }
    }
}

/// The signed link: a session for its booking, then the booking's page (the bid that needs
/// a new card, if one does; otherwise the offers). A stale or forged link says so.
#[get("/s/{token}")]
pub async fn status_link(
    req: HttpRequest,
    db: web::Data<Db>,
    signer: web::Data<SessionSigner>,
    token: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    // A partner's session is no link: opened here it would become a session of its own, free
    // of the partner key it must end with.
    let claims = signer
        .verify(&token, Utc::now())
        .filter(|c| c.key_id.is_none());
    let found = match claims {
        Some(c) => booking::Entity::find_by_id(c.booking_id)
            .one(db.get_ref())
            .await?
            .filter(|b| b.erased_at.is_none()),
        None => None,
    };
    let Some(b) = found else {
        let lang = language(&req, None);
        let mut res = sign_in_page(
            &req,
            StatusCode::UNAUTHORIZED,
            Some(Alert::new(lang.t().link_expired)),
            None,
            Typed::default(),
            Vec::new(),
        )?;
        res.headers_mut().insert(
            actix_web::http::header::REFERRER_POLICY,
            actix_web::http::header::HeaderValue::from_static("no-referrer"),
        );
        return Ok(res);
    };
    let needs_card = bid::Entity::find()
        .filter(bid::Column::BookingId.eq(&b.id))
        .filter(bid::Column::Status.eq(BidStatus::PaymentFailed.as_str()))
        .one(db.get_ref())
        .await?;
    let target = needs_card.map_or_else(|| "/offers".to_owned(), |x| format!("/bids/{}", x.id));
    let mut res = see_other(target);
    res.headers_mut().insert(
        actix_web::http::header::REFERRER_POLICY,
        actix_web::http::header::HeaderValue::from_static("no-referrer"),
    );
    res.add_cookie(&session_cookie(&req, &b.id))
        .map_err(|e| PageError::Render(e.to_string()))?;
    Ok(res)
}

#[post("/sign-out")]
pub async fn sign_out(
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> Result<HttpResponse, PageError> {
    let who = traveller(&req).await?;
    check_csrf(&who, form.get("csrf").map(String::as_str))?;
    let mut res = see_other("/?session=ended");
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").finish();
    gone.make_removal();
    res.add_cookie(&gone)
        .map_err(|e| PageError::Render(e.to_string()))?;
    Ok(res)
}

/// The language switch: remembered in a cookie, then back to the page it was used on.
#[get("/lang/{code}")]
pub async fn switch_language(
    req: HttpRequest,
    code: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let lang = Lang::from_tag(&code).ok_or(PageError::NotFound(language(&req, None)))?;
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let next = query
        .get("next")
        .filter(|n| is_local_path(n))
        .cloned()
        .unwrap_or_else(|| "/".to_owned());
    let mut res = see_other(next);
    let cookie = Cookie::build(LANG_COOKIE, lang.code())
        .path("/")
        .same_site(SameSite::Lax)
        .secure(super::config(&req).secure_cookies)
        .max_age(time::Duration::days(365))
        .finish();
    res.add_cookie(&cookie)
        .map_err(|e| PageError::Render(e.to_string()))?;
    Ok(res)
}

/// Only our own pages: no `//host`, no scheme, nothing odd.
fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_switch_only_returns_to_our_own_pages() {
        assert!(super::is_local_path("/bids/bid_abc"));
        assert!(!super::is_local_path("//evil.example"));
        assert!(!super::is_local_path("https://evil.example"));
        assert!(!super::is_local_path("/x?y=1"));
    }
}
