//! The payment provider's webhook: `payment_intent.*` events, signature verified, each event
//! recorded once (providers deliver at least once).

use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::Utc;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::problem::Problem;
use crate::payments::PaymentGateway;
use crate::store::entities::idempotency_key;
use crate::store::{Db, write_txn};

/// Where processed event ids are kept: the idempotency table, under this principal.
const PRINCIPAL: &str = crate::store::idempotency::PAYMENT_EVENTS;

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"event": "evt_1QfZ2x", "applied": true}))]
pub struct WebhookAck {
    pub event: String,
    /// False when this event was recorded before (a redelivery).
    pub applied: bool,
}

/// Receives the payment provider's events (Stripe format, `Stripe-Signature` header).
#[utoipa::path(
    tag = "health",
    request_body(content = String, description = "The provider's event, raw JSON", content_type = "application/json",
        example = json!({"id": "evt_1QfZ2x", "type": "payment_intent.succeeded", "created": 1767225600, "data": {"object": {}}})),
    params(("Stripe-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>")),
    responses(
        (status = 200, description = "Received", body = WebhookAck),
        (status = 400, description = "Signature missing, wrong or stale, or not an event", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/webhooks/payments")]
pub async fn payments(
    req: HttpRequest,
    body: web::Bytes,
    db: web::Data<Db>,
    gateway: web::Data<dyn PaymentGateway>,
) -> Result<HttpResponse, Problem> {
    let signature = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let payload = std::str::from_utf8(&body).map_err(|_| bad("The body is not UTF-8 JSON."))?;
    let event = gateway
        .parse_webhook(payload, signature)
        .map_err(|e| bad(&e.to_string()))?;

    let txn = write_txn(db.get_ref()).await?;
    let seen = idempotency_key::Entity::find_by_id((PRINCIPAL.to_owned(), event.id.clone()))
        .one(&txn)
        .await?;
    if seen.is_some() {
        return Ok(HttpResponse::Ok().json(WebhookAck {
            event: event.id,
            applied: false,
        }));
    }
    // Recorded, not applied to any payment row: each money step's row is finished by its
    // own job, which asks the provider under the step's key and records the bid's side in
    // the same transaction. An event that finished a row would leave the bid behind (a
    // winner left `won` with the money taken), and a hold's "authorised" or "canceled" says
    // nothing of whether a capture or a release of it was asked for.
    idempotency_key::ActiveModel {
        principal: Set(PRINCIPAL.to_owned()),
        key: Set(event.id.clone()),
        request_hash: Set(event.event_type.clone()),
        response_status: Set(200),
        response_content_type: Set("application/json".to_owned()),
        response_body: Set(String::new()),
        created_at: Set(Utc::now()),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(WebhookAck {
        event: event.id,
        applied: true,
    }))
}

fn bad(detail: &str) -> Problem {
    Problem::new(
        actix_web::http::StatusCode::BAD_REQUEST,
        "webhook-rejected",
        "Webhook rejected",
        detail.to_owned(),
    )
}
