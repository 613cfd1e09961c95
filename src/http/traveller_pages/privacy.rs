//! The traveller's data rights from the status page: download everything held about the
//! booking (JSON), and erase the personal data once no offer is in play. The same service
//! functions back the REST API (`/v1/traveller/data`, `/v1/traveller/erasure`).

use std::collections::HashMap;

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;

use super::i18n::Lang;
use super::{Chrome, PageError, check_csrf, render, traveller};
use crate::http::api::auth::SESSION_COOKIE;
use crate::services::data_rights::{self, DataRightsError};
use crate::store::Db;

#[derive(Template)]
#[template(path = "traveller/message.html")]
struct Said {
    c: Chrome,
    heading: &'static str,
    text: String,
}

fn said(
    lang: Lang,
    status: StatusCode,
    heading: &'static str,
    text: String,
) -> Result<HttpResponse, PageError> {
    render(
        status,
        &Said {
            c: Chrome::new(lang, heading, "/offers"),
            heading,
            text,
        },
    )
}

fn unexpected(lang: Lang, e: DataRightsError) -> PageError {
    match e {
        DataRightsError::Db(e) => PageError::Db(e),
        DataRightsError::NotFound => PageError::NotFound(lang),
        other => PageError::Render(other.to_string()),
    }
}

#[get("/my-data")]
pub async fn download(req: HttpRequest, db: web::Data<Db>) -> Result<HttpResponse, PageError> {
    let who = traveller(&req).await?;
    let data = data_rights::export(db.get_ref(), &who.booking.id)
        .await
        .map_err(|e| unexpected(who.lang, e))?;
    let body = serde_json::to_string_pretty(&data).map_err(|e| PageError::Render(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"surclass-{}.json\"", who.booking.id),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

#[post("/my-data/erase")]
pub async fn erase(
    req: HttpRequest,
    db: web::Data<Db>,
    form: web::Form<HashMap<String, String>>,
) -> Result<HttpResponse, PageError> {
    let who = traveller(&req).await?;
    check_csrf(&who, form.get("csrf").map(String::as_str))?;
    let t = who.lang.t();
    if form.get("confirm").map(String::as_str) != Some("yes") {
        return said(
            who.lang,
            StatusCode::UNPROCESSABLE_ENTITY,
            t.erase_heading,
            t.erase_unconfirmed.to_owned(),
        );
    }
    match data_rights::erase(db.get_ref(), &who.booking.id, data_rights::Asker::Traveller).await {
        Ok(_) => {
            let mut res = said(
                who.lang,
                StatusCode::OK,
                t.erased_heading,
                t.erased_text.to_owned(),
            )?;
            let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").finish();
            gone.make_removal();
            res.add_cookie(&gone)
                .map_err(|e| PageError::Render(e.to_string()))?;
            Ok(res)
        }
        Err(DataRightsError::MoneyInFlight(_)) => said(
            who.lang,
            StatusCode::CONFLICT,
            t.erase_heading,
            t.erase_in_play.to_owned(),
        ),
        Err(DataRightsError::UpgradeAhead(day)) => said(
            who.lang,
            StatusCode::CONFLICT,
            t.erase_heading,
            who.lang.erase_upgrade_ahead(day),
        ),
        Err(e) => Err(unexpected(who.lang, e)),
    }
}
