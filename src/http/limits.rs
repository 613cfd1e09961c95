//! What a slow or greedy client gets: bodies over [`MAX_BODY_BYTES`] are refused with 413
//! (before reading when `Content-Length` says so, otherwise as soon as the count passes it),
//! and a body that does not arrive within the client timeout gets 408, both as problem+json,
//! on every route. The body is read here once, so every extractor behind sees it whole.
//! (Slow *headers* are actix-web's `client_request_timeout`: 408 and the connection closed.)

use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use futures_util::StreamExt;

use super::json::MAX_BODY_BYTES;
use super::problem::Problem;

#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    /// From the end of the headers to the last byte of the body.
    pub deadline: Duration,
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self {
            max_bytes: MAX_BODY_BYTES,
            deadline: Duration::from_secs(10),
        }
    }
}

pub async fn bodies(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limits = req
        .app_data::<web::Data<BodyLimits>>()
        .map(|d| *d.get_ref())
        .unwrap_or_default();
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        return Ok(req.into_response(too_large(&limits).error_response()));
    }
    let has_body = declared.is_some_and(|n| n > 0) || req.headers().contains_key(TRANSFER_ENCODING);
    if !has_body {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    let deadline = tokio::time::Instant::now() + limits.deadline;
    loop {
        let problem = match tokio::time::timeout_at(deadline, payload.next()).await {
            Ok(None) => break,
            Ok(Some(Ok(chunk))) if body.len() + chunk.len() <= limits.max_bytes => {
                body.extend_from_slice(&chunk);
                continue;
            }
            Ok(Some(Ok(_))) => too_large(&limits),
            Ok(Some(Err(e))) => Problem::new(
                StatusCode::BAD_REQUEST,
                "unreadable-body",
                "Body could not be read",
                e.to_string(),
            ),
            Err(_) => Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "request-timeout",
                "Body too slow",
                format!(
                    "The request body did not arrive within {} seconds; send it again in one go.",
                    limits.deadline.as_secs()
                ),
            ),
        };
        // The rest of the body is not read: the connection cannot be reused.
        let mut res = problem.error_response();
        res.head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
        return Ok(req.into_response(res));
    }
    // Hand the body back so the route's extractors (and the idempotency guard) read it.
    let (_, mut replay) = actix_http::h1::Payload::create(true);
    replay.unread_data(body.freeze());
    req.set_payload(replay.into());
    Ok(next.call(req).await?.map_into_boxed_body())
}

fn too_large(limits: &BodyLimits) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "Body too large",
        format!(
            "The body is over {} MiB; send fewer items per request.",
            limits.max_bytes / (1024 * 1024)
        ),
    )
}
