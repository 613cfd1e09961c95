//! Query strings and console forms that cannot be read at all (`limit=abc`, a repeated
//! `after`, a form that is not form-encoded or is too large), answered in the format of
//! whoever sent them: problem+json on the API, an error page in the console. Without this
//! actix-web answers in plain text, which neither a partner's client nor an operator can use.

use actix_web::error::{QueryPayloadError, UrlencodedError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};

use super::console::{PageError, form};
use super::problem::Problem;

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(unreadable_query)
}

/// Forms keep actix-web's 16 KiB limit (a sign-in or a bid needs far less); the console
/// forms that can be larger read their fields through `console::form::FormFields`.
pub fn form_config() -> web::FormConfig {
    web::FormConfig::default().error_handler(unreadable_form)
}

fn is_console(req: &HttpRequest) -> bool {
    req.path() == "/console" || req.path().starts_with("/console/")
}

fn unreadable_query(e: QueryPayloadError, req: &HttpRequest) -> actix_web::Error {
    let reason = match &e {
        QueryPayloadError::Deserialize(e) => e.to_string(),
        other => other.to_string(),
    };
    if is_console(req) {
        return PageError::BadRequest(format!(
            "This page's address could not be read ({reason}). Nothing was changed: open the page again from the menu."
        ))
        .into();
    }
    Problem::new(
        StatusCode::BAD_REQUEST,
        "unreadable-query",
        "Query string could not be read",
        format!("The query string could not be read: {reason}. Nothing was changed."),
    )
    .into()
}

fn unreadable_form(e: UrlencodedError, req: &HttpRequest) -> actix_web::Error {
    if !is_console(req) {
        // Traveller pages read their forms as text maps and say what is wrong on the page;
        // what reaches here (a body that is not a form at all) keeps actix-web's answer.
        return e.into();
    }
    let reason = match &e {
        UrlencodedError::Parse(e) => e.to_string(),
        other => other.to_string(),
    };
    form::unreadable(reason).into()
}
