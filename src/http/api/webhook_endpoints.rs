//! Operators and partners: webhook endpoints (events chosen, secret shown once) and the
//! deliveries made to each, with every attempt. A partner key sees and manages only the
//! endpoints it registered; an operator key sees all of its operator's.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::json::JsonBody;
use crate::http::problem::Problem;
use crate::notifications::webhook_targets::WebhookTargets;
use crate::notifications::webhooks::{self, EndpointInput, Owner};
use crate::services::keys;
use crate::store::Db;
use crate::store::entities::webhook_endpoint;

/// An operator key (all endpoints of the operator) or a partner key (its own).
pub struct EndpointOwner(Owner);

impl FromRequest for EndpointOwner {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let db = req
            .app_data::<web::Data<Db>>()
            .expect("database configured")
            .get_ref()
            .clone();
        let token = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_owned());
        Box::pin(async move {
            let token = token.ok_or_else(|| {
                Problem::unauthorized("Send an API key as `Authorization: Bearer sk_…`.")
            })?;
            let key = keys::authenticate(&db, &token)
                .await?
                .ok_or_else(|| Problem::unauthorized("This API key is unknown or revoked."))?;
            let partner_key = match key.scope.as_str() {
                "operator" => None,
                "partner" => Some(key.id),
                other => {
                    return Err(Problem::forbidden(format!(
                        "This route needs an operator or partner key; this key has {other} scope."
                    )));
                }
            };
            Ok(Self(Owner {
                operator_id: key.operator_id,
                partner_key,
            }))
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "whe_4k9wz0c2e4g6j8m1p3r5", "url": "https://partner.example/hooks/surclass",
    "events": ["bid.charged", "bid.refunded"], "description": "Booking engine", "active": true,
    "owner_key_id": null, "created_at": "2026-11-23T09:00:00Z"}))]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub active: bool,
    /// The partner key that registered it (paused when that key is revoked); null for one the
    /// operator registered.
    pub owner_key_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

fn view(e: webhook_endpoint::Model) -> EndpointView {
    EndpointView {
        events: webhooks::events_of(&e),
        id: e.id,
        url: e.url,
        description: e.description,
        active: e.active,
        owner_key_id: e.owner_key_id,
        created_at: e.created_at,
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "whe_4k9wz0c2e4g6j8m1p3r5", "url": "https://partner.example/hooks/surclass",
    "events": ["bid.charged", "bid.refunded"], "description": "Booking engine", "active": true,
    "owner_key_id": null, "created_at": "2026-11-23T09:00:00Z", "secret": "whsec_2b4d6f8h0k2m4p6r8t1v3x5z7b9d0k2m"}))]
pub struct NewEndpointView {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// The signing secret, shown this once: the HMAC-SHA256 key of `Surclass-Signature`.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"id": "whe_4k9wz0c2e4g6j8m1p3r5", "url": "https://partner.example/hooks/surclass",
    "events": ["bid.charged"], "description": null, "active": true, "created_at": "2026-11-23T09:00:00Z"}]}))]
pub struct EndpointList {
    pub items: Vec<EndpointView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://partner.example/hooks/surclass", "events": ["bid.charged", "bid.refunded"],
    "description": "Booking engine"}))]
pub struct EndpointBody {
    /// Absolute `https://` (or `http://`) URL receiving `POST`s, on a public address: loopback,
    /// private and link-local addresses (and `localhost`) are refused unless the server allows them.
    pub url: Option<String>,
    /// Events to receive: `bid.placed`, `bid.changed`, `bid.withdrawn`, `bid.deadline_moved`
    /// (the close of bidding moved while the bid was active), `bid.charged`, `bid.lost` (at
    /// the award, or before it when too few upgrades are left for the party, as `detail`
    /// says: that bid may be placed again while bidding runs), `bid.payment_failed`,
    /// `bid.cancelled`, `bid.refunded`.
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    /// False pauses deliveries: new events to it are not recorded while paused, and those
    /// pending are parked, for an operator to retry once it is active again.
    pub active: Option<bool>,
}

impl From<EndpointBody> for EndpointInput {
    fn from(b: EndpointBody) -> Self {
        EndpointInput {
            url: b.url.map(|u| u.trim().to_owned()),
            events: b.events,
            description: b.description,
            active: b.active,
        }
    }
}

/// Register a webhook endpoint; the signing secret is in this response only.
#[utoipa::path(
    tag = "webhooks", security(("api_key" = [])), request_body = EndpointBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 201, description = "Registered", body = NewEndpointView),
        (status = 422, description = "Invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/webhook-endpoints")]
pub async fn create(
    owner: EndpointOwner,
    db: web::Data<Db>,
    targets: web::Data<WebhookTargets>,
    JsonBody(input): JsonBody<EndpointBody>,
) -> Result<HttpResponse, Problem> {
    let endpoint = webhooks::create(&db, &owner.0, input.into(), **targets).await?;
    let secret = endpoint.secret.clone();
    Ok(HttpResponse::Created().json(NewEndpointView {
        endpoint: view(endpoint),
        secret,
    }))
}

/// List webhook endpoints (secrets are never shown again).
#[utoipa::path(tag = "webhooks", security(("api_key" = [])), responses((status = 200, description = "Endpoints", body = EndpointList)))]
#[get("/v1/webhook-endpoints")]
pub async fn list(owner: EndpointOwner, db: web::Data<Db>) -> Result<HttpResponse, Problem> {
    let items = webhooks::list(&db, &owner.0)
        .await?
        .into_iter()
        .map(view)
        .collect();
    Ok(HttpResponse::Ok().json(EndpointList { items }))
}

/// One webhook endpoint.
#[utoipa::path(
    tag = "webhooks", security(("api_key" = [])), params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointView),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/webhook-endpoints/{id}")]
pub async fn get(
    owner: EndpointOwner,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(view(webhooks::get(db.get_ref(), &owner.0, &id).await?)))
}

/// Change an endpoint's URL, events, description, or pause it.
#[utoipa::path(
    tag = "webhooks", security(("api_key" = [])), request_body = EndpointBody,
    params(("id" = String, Path, description = "Endpoint id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 200, description = "Changed", body = EndpointView),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/webhook-endpoints/{id}")]
pub async fn update(
    owner: EndpointOwner,
    db: web::Data<Db>,
    targets: web::Data<WebhookTargets>,
    id: web::Path<String>,
    JsonBody(input): JsonBody<EndpointBody>,
) -> Result<HttpResponse, Problem> {
    let endpoint = webhooks::update(&db, &owner.0, &id, input.into(), **targets).await?;
    Ok(HttpResponse::Ok().json(view(endpoint)))
}

/// Remove an endpoint; deliveries not yet made to it are dropped (and listed as suppressed).
#[utoipa::path(
    tag = "webhooks", security(("api_key" = [])),
    params(("id" = String, Path, description = "Endpoint id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/webhook-endpoints/{id}")]
pub async fn remove(
    owner: EndpointOwner,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    webhooks::delete(&db, &owner.0, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"at": "2026-11-23T09:00:01Z", "attempt": 1, "status_code": 500, "error": "the receiver answered 500 Internal Server Error"}))]
pub struct AttemptView {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<i32>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 43, "event_id": "evt_9c1e2b…", "event": "bid.charged", "status": "sent",
    "created_at": "2026-11-23T09:00:00Z", "next_attempt_at": "2026-11-23T09:00:30Z", "sent_at": "2026-11-23T09:00:31Z",
    "attempts": [{"attempt": 1, "at": "2026-11-23T09:00:01Z", "status_code": 500, "error": "the receiver answered 500 Internal Server Error"},
                 {"attempt": 2, "at": "2026-11-23T09:00:31Z", "status_code": 200, "error": null}]}))]
pub struct DeliveryView {
    /// The message id (retry a parked delivery with `POST /v1/messages/{id}/retry`).
    pub id: i64,
    /// `Surclass-Delivery` header and `id` in the body: the same on every attempt.
    pub event_id: Option<String>,
    pub event: String,
    /// `pending`, `sent`, `parked` or `suppressed`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub attempts: Vec<AttemptView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"id": 43, "event_id": "evt_9c1e2b…", "event": "bid.charged", "status": "sent",
    "created_at": "2026-11-23T09:00:00Z", "next_attempt_at": "2026-11-23T09:00:00Z", "sent_at": "2026-11-23T09:00:01Z",
    "attempts": [{"attempt": 1, "at": "2026-11-23T09:00:01Z", "status_code": 200, "error": null}]}]}))]
pub struct DeliveryList {
    pub items: Vec<DeliveryView>,
}

/// Deliveries to an endpoint, newest first (the last 100), with every attempt.
#[utoipa::path(
    tag = "webhooks", security(("api_key" = [])), params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "Deliveries", body = DeliveryList),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/webhook-endpoints/{id}/deliveries")]
pub async fn deliveries(
    owner: EndpointOwner,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let items = webhooks::deliveries(&db, &owner.0, &id, 100)
        .await?
        .into_iter()
        .map(|d| DeliveryView {
            id: d.row.id,
            event_id: d.row.message_id,
            event: d.row.topic,
            status: d.row.status,
            created_at: d.row.created_at,
            next_attempt_at: d.row.next_attempt_at,
            sent_at: d.row.sent_at,
            attempts: d
                .attempts
                .into_iter()
                .map(|a| AttemptView {
                    attempt: a.attempt,
                    at: a.at,
                    status_code: a.status_code,
                    error: a.error,
                })
                .collect(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(DeliveryList { items }))
}
