//! Request bodies: JSON parsed with the path of the failing field in the error, so a partner
//! reads `bookings[42].party_size: invalid type: string "2", expected u32`, as problem+json.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;

use super::problem::Problem;
use crate::domain::validation::FieldErrors;

/// Bodies above this are refused with 413 before they are read in full.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

pub struct JsonBody<T>(pub T);

/// A JSON body the caller may leave out: an empty body is `None`; anything else is read as
/// [`JsonBody`] reads it.
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !json {
                return Err(send_json());
            }
            parse(&bytes.await.map_err(unreadable)?).map(JsonBody)
        })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJsonBody<T> {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = bytes.await.map_err(unreadable)?;
            if bytes.is_empty() {
                return Ok(OptionalJsonBody(None));
            }
            if !json {
                return Err(send_json());
            }
            parse(&bytes).map(|body| OptionalJsonBody(Some(body)))
        })
    }
}

fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

fn send_json() -> Problem {
    Problem::new(
        actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Send JSON",
        "The body must be JSON with `Content-Type: application/json`.",
    )
}

fn unreadable(e: actix_web::Error) -> Problem {
    if e.to_string().contains("overflow") {
        Problem::new(
            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Body too large",
            format!("The body is over {} MiB.", MAX_BODY_BYTES / (1024 * 1024)),
        )
    } else {
        Problem::new(
            actix_web::http::StatusCode::BAD_REQUEST,
            "unreadable-body",
            "Body could not be read",
            e.to_string(),
        )
    }
}

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return Problem::new(
                actix_web::http::StatusCode::BAD_REQUEST,
                "malformed-json",
                "Malformed JSON",
                format!("The body is not valid JSON: {inner}"),
            );
        }
        let field = if path == "." { "body".to_owned() } else { path };
        // serde's message ends with " at line L column C": the field path says it better.
        let message = inner.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        Problem::invalid(FieldErrors::single(field, message))
    })
}
