//! What a page shows when it cannot do its job. Bad input is not here: each page shows that
//! on the same screen, with what to do. This is for the session ending, a forged or stale
//! form, an unknown address, and our own failures.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;
use sea_orm::DbErr;

use super::i18n::Lang;
use super::{Chrome, html, see_other};

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
                (Lang::En, Lang::En.t().error_title, Lang::En.t().error_text)
            }
            PageError::Render(e) => {
                tracing::error!(error = %e, "traveller page did not render");
                (Lang::En, Lang::En.t().error_title, Lang::En.t().error_text)
            }
        };
        let page = MessagePage {
            c: Chrome::new(lang, heading, "/offers"),
            heading,
            text,
        };
        let body = page
            .render()
            .unwrap_or_else(|_| format!("<!doctype html><title>{heading}</title><p>{text}"));
        html(self.status_code(), body)
    }
}
