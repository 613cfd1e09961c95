//! A console form read as the list of fields it was sent with, for the forms that repeat a
//! field (one `take` or `winner` per bid) or carry a whole file (the import confirmation).
//! `web::Form` holds forms to 16 KiB, which a lot with hundreds of winners or a previewed file
//! of thousands of bookings passes. The body is still bounded by `limits::bodies` (8 MiB).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::PageError;

pub struct FormFields(Vec<(String, String)>);

impl FormFields {
    /// The field's first value, or "" when it was not sent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    /// Every value the field was sent with, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The console's answer to a form it cannot read, whichever reader found it so.
pub fn unreadable(reason: impl std::fmt::Display) -> PageError {
    PageError::BadRequest(format!(
        "This form could not be read ({reason}). Nothing was changed: go back, reload the page and try again."
    ))
}

impl FromRequest for FormFields {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type = req.content_type().to_owned();
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            // Media types ignore case; actix-web has already dropped any `; charset=…`.
            if !content_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
                return Err(unreadable(format_args!(
                    "it was sent as '{content_type}', not as a form"
                )));
            }
            let body = body.await.map_err(unreadable)?;
            Ok(FormFields(
                url::form_urlencoded::parse(&body).into_owned().collect(),
            ))
        })
    }
}
