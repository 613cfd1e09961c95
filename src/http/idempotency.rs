//! `Idempotency-Key`: a retried POST/PUT/PATCH/DELETE gets the stored response and changes
//! nothing; the same key with a different request is refused (422).
//!
//! Keys are per caller (the hash of its credentials), so two callers never see each other's
//! responses. A placeholder row is written before the handler runs, so a concurrent duplicate
//! gets 409 instead of running twice. 5xx answers are not stored: retrying them is the point.
//! An answer is not replayed to a credential withdrawn since (a key revoked, a session for a
//! booking erased): the guard runs before the route's own check.
//! Answers are kept for a day ([`crate::store::idempotency::KEPT_FOR`]).

use actix_web::body::{BoxBody, MessageBody, to_bytes};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};
use chrono::Utc;
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};
use sha2::{Digest, Sha256};

use super::api::auth::SESSION_COOKIE;
use super::problem::Problem;
use crate::domain::validation::FieldErrors;
use crate::store::Db;
use crate::store::entities::idempotency_key;

pub const HEADER: &str = "Idempotency-Key";
const IN_FLIGHT: i32 = 0;

pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let changes_state = matches!(req.method().as_str(), "POST" | "PUT" | "PATCH" | "DELETE");
    let key = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let principal = principal(&req);
    let (Some(key), Some(principal), true) = (key, principal, changes_state) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    if key.is_empty() || key.len() > 255 {
        let problem = Problem::invalid(FieldErrors::single(HEADER, "must be 1 to 255 characters"));
        return Ok(req.into_response(problem.error_response()));
    }
    let db = req
        .app_data::<web::Data<Db>>()
        .expect("database configured")
        .get_ref()
        .clone();

    let body = req.extract::<web::Bytes>().await?;
    let request_hash = {
        let mut h = Sha256::new();
        h.update(req.method().as_str());
        h.update(b" ");
        h.update(req.uri().to_string());
        h.update(b"\n");
        h.update(&body);
        hex::encode(h.finalize())
    };
    // The body was read to hash it; hand it back so the handler can read it too.
    let (_, mut payload) = actix_http::h1::Payload::create(true);
    payload.unread_data(body);
    req.set_payload(payload.into());

    let placeholder = idempotency_key::ActiveModel {
        principal: Set(principal.clone()),
        key: Set(key.clone()),
        request_hash: Set(request_hash.clone()),
        response_status: Set(IN_FLIGHT),
        response_content_type: Set(String::new()),
        response_body: Set(String::new()),
        created_at: Set(Utc::now()),
    };
    if placeholder.insert(&db).await.is_err() {
        // The key exists: replay, or explain why not.
        let stored = idempotency_key::Entity::find_by_id((principal.clone(), key.clone()))
            .one(&db)
            .await
            .ok()
            .flatten();
        let response = match stored {
            Some(s) if s.request_hash != request_hash => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key already used",
                "This Idempotency-Key was used for a different request; use a new key.",
            )
            .with_field(HEADER)
            .error_response(),
            Some(s) if s.response_status == IN_FLIGHT => Problem::conflict(
                "idempotency-key-in-flight",
                "Request in progress",
                "A request with this Idempotency-Key is still being processed; retry in a moment.",
            )
            .error_response(),
            // A key revoked (or a booking erased) since: its answer is not given again.
            Some(s) => match super::api::auth::withdrawn(req.request()).await {
                Ok(false) => replay(s),
                Ok(true) => Problem::unauthorized(
                    "This credential was revoked (or its booking erased) since; use a live API key or sign in again.",
                )
                .error_response(),
                Err(e) => Problem::from(e).error_response(),
            },
            None => Problem::internal().error_response(),
        };
        return Ok(req.into_response(response));
    }

    let res = next.call(req).await?;
    let status = res.status();
    let (http_req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let bytes = to_bytes(body).await.map_err(|_| Problem::internal())?;
    let content_type = head
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let pending = idempotency_key::ActiveModel {
        principal: Set(principal),
        key: Set(key),
        ..Default::default()
    };
    let outcome = if status.is_server_error() {
        idempotency_key::Entity::delete(pending)
            .exec(&db)
            .await
            .map(|_| ())
    } else {
        let mut am = pending.into_active_model();
        am.response_status = Set(i32::from(status.as_u16()));
        am.response_content_type = Set(content_type);
        am.response_body = Set(String::from_utf8_lossy(&bytes).into_owned());
        am.update(&db).await.map(|_| ())
    };
    if let Err(e) = outcome {
        tracing::error!(error = %e, "idempotency record not saved");
    }
    Ok(ServiceResponse::new(
        http_req,
        head.set_body(BoxBody::new(bytes)),
    ))
}

/// The stored answer, sent again.
fn replay(s: idempotency_key::Model) -> HttpResponse {
    let status = StatusCode::from_u16(s.response_status as u16).unwrap_or(StatusCode::OK);
    let mut res = HttpResponse::build(status);
    if !s.response_content_type.is_empty() {
        res.content_type(s.response_content_type);
    }
    res.insert_header(("Idempotent-Replayed", "true"));
    res.body(s.response_body)
}

/// The caller, as the hash of what authenticates it (never the secret itself). Anonymous
/// requests (signing in) have no principal and are not deduplicated.
fn principal(req: &ServiceRequest) -> Option<String> {
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let secret =
        authorization.or_else(|| req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()))?;
    Some(hex::encode(Sha256::digest(secret.as_bytes())))
}
