//! Partner webhooks: endpoints registered by operators and partners with the events they
//! want, and the signature every delivery carries.
//!
//! Signature (documented in openapi.yaml, `info.description`): header
//! `Surclass-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`;
//! the HMAC key is the endpoint's secret string as given (`whsec_…`, UTF-8 bytes). Receivers
//! recompute it, compare in constant time, and refuse a `t` more than 5 minutes from now.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use sha2::Sha256;

use super::Topic;
use super::outbox::{self, Facts};
use super::webhook_targets::WebhookTargets;
use crate::domain::validation::FieldErrors;
use crate::ids;
use crate::store::Db;
use crate::store::entities::{outbox as outbox_entity, webhook_attempt, webhook_endpoint};

pub const SIGNATURE_HEADER: &str = "Surclass-Signature";
pub const EVENT_HEADER: &str = "Surclass-Event";
pub const DELIVERY_HEADER: &str = "Surclass-Delivery";
/// How far a receiver should accept `t` from its own clock.
pub const TOLERANCE_SECONDS: i64 = 300;
/// Attempts before a delivery is parked: 30 s doubling to an hour, then hourly, about a day.
pub const MAX_ATTEMPTS: i32 = 30;

/// `t=…,v1=…` for this body at this time.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// What a receiver does (and what the tests do): `true` for a genuine, fresh delivery.
pub fn verify(secret: &str, header: &str, body: &str, now: i64) -> bool {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now - t).abs() > TOLERANCE_SECONDS {
        return false;
    }
    v1.iter().any(|sig| {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
        mac.update(format!("{t}.{body}").as_bytes());
        mac.verify_slice(sig).is_ok()
    })
}

/// The JSON body of a delivery: the same bytes on every attempt of one event.
pub fn body(topic: &str, facts: &Facts) -> String {
    serde_json::json!({
        "id": facts.event_id,
        "type": topic,
        "created": facts.at.timestamp(),
        "data": {
            "bid_id": facts.bid_id,
            "lot_id": facts.lot_id,
            "booking_id": facts.booking_id,
            "bid_status": facts.bid_status,
            "closes_at": facts.closes_at,
            "detail": facts.detail,
        }
    })
    .to_string()
}

pub fn events_of(endpoint: &webhook_endpoint::Model) -> Vec<String> {
    serde_json::from_str(&endpoint.events).unwrap_or_default()
}

pub fn subscribed(endpoint: &webhook_endpoint::Model, topic: Topic) -> bool {
    events_of(endpoint).iter().any(|e| e == topic.as_str())
}

/// Who manages endpoints: the operator (all of its endpoints) or one partner key (its own).
#[derive(Debug, Clone)]
pub struct Owner {
    pub operator_id: String,
    /// `Some(key id)` for a partner key.
    pub partner_key: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("no such webhook endpoint")]
    NotFound,
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Db(#[from] DbErr),
}

pub struct EndpointInput {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub active: Option<bool>,
}

fn validate(
    input: &EndpointInput,
    creating: bool,
    targets: WebhookTargets,
) -> Result<(), EndpointError> {
    let mut errors = FieldErrors::default();
    match &input.url {
        Some(url) => {
            // Read whatever the target rule: an address that cannot be parsed is refused now,
            // not tried for a day.
            let ok = (url.starts_with("https://") || url.starts_with("http://"))
                && url.len() > 10
                && url.len() <= 2000
                && !url.contains(char::is_whitespace)
                && url::Url::parse(url).is_ok_and(|u| u.host().is_some());
            if !ok {
                errors.add("url", "expected an absolute http:// or https:// URL");
            } else if let Some(why) = targets.refusal(url) {
                errors.add("url", why);
            }
        }
        None if creating => errors.add("url", "required"),
        None => {}
    }
    match &input.events {
        Some(events) if events.is_empty() => errors.add("events", "choose at least one event"),
        Some(events) => {
            for (i, e) in events.iter().enumerate() {
                if !Topic::parse(e).is_some_and(Topic::is_webhook_event) {
                    let known: Vec<&str> = Topic::ALL
                        .into_iter()
                        .filter(|t| t.is_webhook_event())
                        .map(Topic::as_str)
                        .collect();
                    errors.add(
                        format!("events[{i}]"),
                        format!("unknown event '{e}'; one of {}", known.join(", ")),
                    );
                }
            }
        }
        None if creating => errors.add("events", "required"),
        None => {}
    }
    if input
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 200)
    {
        errors.add("description", "at most 200 characters");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(EndpointError::Invalid(errors))
    }
}

/// Each event once, in the order first given.
fn once_each(events: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    events.retain(|e| seen.insert(e.clone()));
}

fn scoped(owner: &Owner) -> sea_orm::Select<webhook_endpoint::Entity> {
    let mut q = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::OperatorId.eq(&owner.operator_id));
    if let Some(key) = &owner.partner_key {
        q = q.filter(webhook_endpoint::Column::OwnerKeyId.eq(key));
    }
    q
}

/// Registers an endpoint; the model carries the secret, which the API shows this once.
pub async fn create(
    db: &Db,
    owner: &Owner,
    input: EndpointInput,
    targets: WebhookTargets,
) -> Result<webhook_endpoint::Model, EndpointError> {
    validate(&input, true, targets)?;
    let mut events = input.events.unwrap_or_default();
    once_each(&mut events);
    Ok(webhook_endpoint::ActiveModel {
        id: Set(ids::new_id("whe")),
        operator_id: Set(owner.operator_id.clone()),
        owner_key_id: Set(owner.partner_key.clone()),
        url: Set(input.url.unwrap_or_default()),
        events: Set(serde_json::to_string(&events).expect("strings serialise")),
        secret: Set(ids::random_token("whsec", 32)),
        description: Set(input.description),
        active: Set(input.active.unwrap_or(true)),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?)
}

pub async fn list(db: &Db, owner: &Owner) -> Result<Vec<webhook_endpoint::Model>, DbErr> {
    scoped(owner)
        .order_by_asc(webhook_endpoint::Column::CreatedAt)
        .order_by_asc(webhook_endpoint::Column::Id)
        .all(db)
        .await
}

pub async fn get(
    db: &impl ConnectionTrait,
    owner: &Owner,
    id: &str,
) -> Result<webhook_endpoint::Model, EndpointError> {
    scoped(owner)
        .filter(webhook_endpoint::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or(EndpointError::NotFound)
}

pub async fn update(
    db: &Db,
    owner: &Owner,
    id: &str,
    input: EndpointInput,
    targets: WebhookTargets,
) -> Result<webhook_endpoint::Model, EndpointError> {
    validate(&input, false, targets)?;
    let current = get(db, owner, id).await?;
    let mut am = current.into_active_model();
    if let Some(url) = input.url {
        am.url = Set(url);
    }
    if let Some(mut events) = input.events {
        once_each(&mut events);
        am.events = Set(serde_json::to_string(&events).expect("strings serialise"));
    }
    if let Some(description) = input.description {
        am.description = Set(Some(description));
    }
    if let Some(active) = input.active {
        am.active = Set(active);
    }
    Ok(am.update(db).await?)
}

/// Deletes an endpoint; deliveries not yet made to it are suppressed, the record stays.
pub async fn delete(db: &Db, owner: &Owner, id: &str) -> Result<(), EndpointError> {
    let current = get(db, owner, id).await?;
    webhook_endpoint::Entity::delete_by_id(current.id)
        .exec(db)
        .await?;
    Ok(())
}

/// One delivery (event to endpoint) with its attempts.
pub struct Delivery {
    pub row: outbox_entity::Model,
    pub attempts: Vec<webhook_attempt::Model>,
}

pub async fn deliveries(
    db: &Db,
    owner: &Owner,
    endpoint_id: &str,
    limit: u64,
) -> Result<Vec<Delivery>, EndpointError> {
    let endpoint = get(db, owner, endpoint_id).await?;
    let rows = outbox_entity::Entity::find()
        .filter(outbox_entity::Column::Channel.eq(outbox::WEBHOOK))
        .filter(outbox_entity::Column::EndpointId.eq(&endpoint.id))
        .order_by_desc(outbox_entity::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut attempts = webhook_attempt::Entity::find()
        .filter(webhook_attempt::Column::OutboxId.is_in(ids))
        .order_by_asc(webhook_attempt::Column::Id)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let (mine, rest): (Vec<_>, Vec<_>) =
                attempts.drain(..).partition(|a| a.outbox_id == row.id);
            attempts = rest;
            Delivery {
                row,
                attempts: mine,
            }
        })
        .collect())
}

/// Records one attempt; the caller commits it with the message's outcome.
pub async fn record_attempt(
    db: &impl ConnectionTrait,
    outbox_id: i64,
    attempt: i32,
    at: DateTime<Utc>,
    status_code: Option<i32>,
    error: Option<String>,
) -> Result<(), DbErr> {
    webhook_attempt::ActiveModel {
        outbox_id: Set(outbox_id),
        attempt: Set(attempt),
        at: Set(at),
        status_code: Set(status_code),
        error: Set(error),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_secret_body_and_time() {
        let header = sign("whsec_a", 1_767_225_600, "{\"id\":1}");
        assert!(header.starts_with("t=1767225600,v1="));
        assert!(verify("whsec_a", &header, "{\"id\":1}", 1_767_225_600 + 10));
        assert!(!verify("whsec_b", &header, "{\"id\":1}", 1_767_225_600));
        assert!(!verify("whsec_a", &header, "{\"id\":2}", 1_767_225_600));
        assert!(!verify(
            "whsec_a",
            &header,
            "{\"id\":1}",
            1_767_225_600 + 301
        ));
    }
}
