//! `GET /unsubscribe/{token}`: a small page with one button; `POST /unsubscribe/{token}`:
//! RFC 8058 one-click unsubscribe (what mail clients send, `List-Unsubscribe=One-Click`), and
//! the button's target. No session: the signed token is the authority. Reminders stop at once;
//! messages about the traveller's money still come.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use sea_orm::EntityTrait;

use crate::notifications::unsubscribe;
use crate::services::sessions::SessionSigner;
use crate::store::Db;
use crate::store::entities::{booking, operator};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(status: StatusCode, lang: &str, title: &str, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(format!(
            "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title>\
             <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}\
             button{{font-size:1.1rem;padding:.7rem 1.2rem}}</style></head>\
             <body><main><h1>{title}</h1>{body}</main></body></html>"
        ))
}

struct Found {
    booking: booking::Model,
    operator_name: String,
    fr: bool,
}

async fn find(
    db: &Db,
    signer: &SessionSigner,
    token: &str,
) -> Result<Option<Found>, sea_orm::DbErr> {
    let Some(booking_id) = unsubscribe::verify(signer, token) else {
        return Ok(None);
    };
    let Some(booking) = booking::Entity::find_by_id(booking_id).one(db).await? else {
        return Ok(None);
    };
    let operator_name = operator::Entity::find_by_id(booking.operator_id.clone())
        .one(db)
        .await?
        .map(|o| o.name)
        .unwrap_or_default();
    let fr = booking.language.eq_ignore_ascii_case("fr");
    Ok(Some(Found {
        booking,
        operator_name,
        fr,
    }))
}

fn invalid() -> HttpResponse {
    page(
        StatusCode::NOT_FOUND,
        "en",
        "Link not recognised / Lien non reconnu",
        "<p>This unsubscribe link is not valid. Use the link in your latest email.</p>\
         <p lang=\"fr\">Ce lien de désabonnement n'est pas valide. Utilisez celui de votre dernier message.</p>",
    )
}

fn failed() -> HttpResponse {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "en",
        "Please try again / Veuillez réessayer",
        "<p>Something went wrong on our side; nothing was changed. Please try again in a minute.</p>",
    )
}

#[get("/unsubscribe/{token}")]
pub async fn show(
    db: web::Data<Db>,
    signer: web::Data<SessionSigner>,
    token: web::Path<String>,
) -> HttpResponse {
    let found = match find(&db, &signer, &token).await {
        Ok(Some(found)) => found,
        Ok(None) => return invalid(),
        Err(_) => return failed(),
    };
    let already = unsubscribe::is_unsubscribed(db.get_ref(), &found.booking.id)
        .await
        .unwrap_or(false);
    let name = escape(&found.operator_name);
    let action = format!("/unsubscribe/{}", escape(&token));
    let (lang, title, text, button) = if found.fr {
        (
            "fr",
            "Rappels de surclassement",
            if already {
                format!("<p>Vous ne recevez plus de rappels de {name}.</p>")
            } else {
                format!(
                    "<p>Ne plus recevoir de rappels avant la clôture des offres de {name} ? Les messages sur vos offres et vos paiements continueront d'arriver.</p>"
                )
            },
            "Ne plus recevoir de rappels",
        )
    } else {
        (
            "en",
            "Upgrade reminders",
            if already {
                format!("<p>You no longer get reminders from {name}.</p>")
            } else {
                format!(
                    "<p>Stop reminders from {name} before bidding closes? Messages about your offers and payments still come.</p>"
                )
            },
            "Stop reminders",
        )
    };
    let form = if already {
        String::new()
    } else {
        format!(
            "<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">{button}</button></form>"
        )
    };
    page(StatusCode::OK, lang, title, &format!("{text}{form}"))
}

#[post("/unsubscribe/{token}")]
pub async fn one_click(
    db: web::Data<Db>,
    signer: web::Data<SessionSigner>,
    token: web::Path<String>,
) -> HttpResponse {
    let found = match find(&db, &signer, &token).await {
        Ok(Some(found)) => found,
        Ok(None) => return invalid(),
        Err(_) => return failed(),
    };
    if unsubscribe::unsubscribe(db.get_ref(), &found.booking.id)
        .await
        .is_err()
    {
        return failed();
    }
    let name = escape(&found.operator_name);
    if found.fr {
        page(
            StatusCode::OK,
            "fr",
            "C'est fait",
            &format!(
                "<p>Vous ne recevrez plus de rappels de {name}. Les messages sur vos offres et vos paiements continueront d'arriver.</p>"
            ),
        )
    } else {
        page(
            StatusCode::OK,
            "en",
            "Done",
            &format!(
                "<p>You will get no more reminders from {name}. Messages about your offers and payments still come.</p>"
            ),
        )
    }
}
