//! Operators: the messages sent for them (emails to travellers, webhook deliveries), the
//! parked ones to look at, and a retry once the cause is fixed. With no SMTP server
//! configured this is also the local mailbox: each email's recipient, subject and text.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::OperatorAuth;
use crate::domain::validation::FieldErrors;
use crate::http::problem::Problem;
use crate::notifications::outbox;
use crate::store::Db;
use crate::store::entities::outbox as outbox_entity;

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 42, "channel": "email", "topic": "bid.charged", "status": "sent",
    "attempts": 1, "last_error": null, "to": "anna.muller@example.com",
    "subject": "Upgrade confirmed: Paris – Montréal, economy → business (Thu 24 Dec 2026)",
    "body": "Dear Müller,\n\nGood news: your upgrade …", "message_id": "<6f1c…@surclass>",
    "booking_id": "bkg_0k2m4p6r8t1v3x5z7b9d", "endpoint_id": null,
    "created_at": "2026-11-23T09:00:00Z", "next_attempt_at": "2026-11-23T09:00:00Z", "sent_at": "2026-11-23T09:00:01Z"}))]
pub struct MessageView {
    pub id: i64,
    /// `email` or `webhook`.
    pub channel: String,
    /// The event: `bid.placed`, `bid.changed`, `bid.withdrawn`, `bid.reminder`,
    /// `bid.deadline_moved`, `bid.charged`, `bid.lost`, `bid.payment_failed`, `bid.cancelled`,
    /// `bid.refunded`, or (email only) `bid.not_recorded`: a fault on our side lost an offer
    /// after its card hold was taken; the hold was released and the traveller is asked to bid
    /// again.
    pub topic: String,
    /// `pending`, `sent`, `parked` (kept failing, or its endpoint is paused: retry it),
    /// `suppressed` (unsubscribed, erased, no address, or endpoint removed).
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// Email recipient (blank once the booking's data is erased).
    pub to: Option<String>,
    pub subject: Option<String>,
    /// The email's text. Sent through an SMTP server, the token of each link that opens the
    /// traveller's booking or stops their reminders shows as `…`: those go to the traveller
    /// only. In the local mailbox (no SMTP server) the links are whole.
    pub body: Option<String>,
    /// `Message-ID` of the email, or the event id of a webhook delivery (stable across retries).
    pub message_id: Option<String>,
    pub booking_id: Option<String>,
    pub endpoint_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

pub fn view(m: outbox_entity::Model) -> MessageView {
    MessageView {
        id: m.id,
        channel: m.channel,
        topic: m.topic,
        status: m.status,
        attempts: m.attempts,
        last_error: m.last_error,
        to: m.recipient,
        subject: m.subject,
        body: m.body,
        message_id: m.message_id,
        booking_id: m.booking_id,
        endpoint_id: m.endpoint_id,
        created_at: m.created_at,
        next_attempt_at: m.next_attempt_at,
        sent_at: m.sent_at,
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"id": 42, "channel": "email", "topic": "bid.payment_failed", "status": "parked",
    "attempts": 10, "last_error": "Connection refused", "to": "anna.muller@example.com", "subject": "Action needed: payment failed",
    "body": "Dear Müller, …", "message_id": "<6f1c…@surclass>", "booking_id": "bkg_0k2m4p6r8t1v3x5z7b9d", "endpoint_id": null,
    "created_at": "2026-11-23T09:00:00Z", "next_attempt_at": "2026-11-23T13:00:00Z", "sent_at": null}]}))]
pub struct MessageList {
    pub items: Vec<MessageView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// Only messages in this status (`parked` to see what needs attention).
    pub status: Option<String>,
    /// `email` or `webhook`.
    pub channel: Option<String>,
    /// At most this many, newest first (1 to 500, default 100).
    pub limit: Option<u64>,
}

/// List messages, newest first.
#[utoipa::path(
    tag = "operator", security(("api_key" = [])), params(MessageQuery),
    responses(
        (status = 200, description = "Messages", body = MessageList),
        (status = 400, description = "The query string could not be read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/messages")]
pub async fn list(
    auth: OperatorAuth,
    db: web::Data<Db>,
    query: web::Query<MessageQuery>,
) -> Result<HttpResponse, Problem> {
    let mut e = FieldErrors::new();
    let statuses = [
        outbox::PENDING,
        outbox::SENT,
        outbox::PARKED,
        outbox::SUPPRESSED,
    ];
    if let Some(s) = &query.status
        && !statuses.contains(&s.as_str())
    {
        e.add(
            "status",
            format!("'{s}' is not one of: {}", statuses.join(", ")),
        );
    }
    if let Some(c) = &query.channel
        && c != outbox::EMAIL
        && c != outbox::WEBHOOK
    {
        e.add("channel", format!("'{c}' is not one of: email, webhook"));
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        e.add("limit", "must be 1 to 500");
    }
    if !e.is_empty() {
        return Err(e.into());
    }
    let items = outbox::list(
        db.get_ref(),
        &auth.operator_id,
        query.status.as_deref(),
        query.channel.as_deref(),
        limit,
    )
    .await?
    .into_iter()
    .map(view)
    .collect();
    Ok(HttpResponse::Ok().json(MessageList { items }))
}

/// Send a parked message again, with fresh attempts.
#[utoipa::path(
    tag = "operator", security(("api_key" = [])),
    params(("id" = i64, Path, description = "Message id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 202, description = "Queued again", body = MessageView),
        (status = 404, description = "No such message", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not parked", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/messages/{id}/retry")]
pub async fn retry(
    auth: OperatorAuth,
    db: web::Data<Db>,
    id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    let row = outbox::retry(&db, &auth.operator_id, id.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(view(row)))
}
