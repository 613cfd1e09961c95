//! Data rights: a traveller (or the operator, for requests it receives) can download
//! everything held about a booking, and have its personal data erased. Erasure removes the
//! name, contact details and what was sent to them, and keeps the pseudonymous financial
//! records the law requires (bids, payments, awards, by random id). Operators set a retention
//! period after which personal data of settled lots is purged by a job.
//!
//! IP addresses: none are stored (the sign-in throttle keeps them in memory only).

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::{Value, json};

use crate::domain::bid::BidStatus;
use crate::domain::identity::reference_key;
use crate::domain::lot::LotStatus;
use crate::notifications::outbox;
use crate::store::entities::{
    bid, bid_event, booking, booking_lot, lot, outbox as outbox_entity, payment, privacy_setting,
    unsubscribe,
};
use crate::store::{Db, write_txn};

#[derive(Debug, thiserror::Error)]
pub enum DataRightsError {
    #[error("no such booking")]
    NotFound,
    #[error(
        "this booking has an offer still in play ({0}); withdraw it or wait for the outcome, then ask again"
    )]
    MoneyInFlight(String),
    #[error("the retention period must be between 1 and 3650 days")]
    BadRetention,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The operator's booking named by id (`bkg_…`) or by reference.
pub async fn find_booking(
    db: &impl ConnectionTrait,
    operator_id: &str,
    id_or_reference: &str,
) -> Result<booking::Model, DataRightsError> {
    let by_id = booking::Entity::find_by_id(id_or_reference.to_owned())
        .filter(booking::Column::OperatorId.eq(operator_id))
        .one(db)
        .await?;
    if let Some(b) = by_id {
        return Ok(b);
    }
    booking::Entity::find()
        .filter(booking::Column::OperatorId.eq(operator_id))
        .filter(booking::Column::ReferenceKey.eq(reference_key(id_or_reference)))
        .order_by_asc(booking::Column::CreatedAt)
        .one(db)
        .await?
        .ok_or(DataRightsError::NotFound)
}

fn minor(amount: i64, currency: &str) -> Value {
    match crate::money::Currency::parse(currency)
        .and_then(|c| crate::money::Money::from_minor(amount, c))
    {
        Ok(m) => json!(m.to_decimal().to_string()),
        Err(_) => json!(amount.to_string()),
    }
}

/// Everything held about this booking, as one JSON document.
pub async fn export(db: &impl ConnectionTrait, booking_id: &str) -> Result<Value, DataRightsError> {
    let b = booking::Entity::find_by_id(booking_id.to_owned())
        .one(db)
        .await?
        .ok_or(DataRightsError::NotFound)?;
    let lots: Vec<String> = booking_lot::Entity::find()
        .filter(booking_lot::Column::BookingId.eq(&b.id))
        .all(db)
        .await?
        .into_iter()
        .map(|l| l.lot_id)
        .collect();
    let bids = bid::Entity::find()
        .filter(bid::Column::BookingId.eq(&b.id))
        .order_by_asc(bid::Column::CreatedAt)
        .all(db)
        .await?;
    let mut bid_docs = Vec::new();
    for x in &bids {
        let events: Vec<Value> = bid_event::Entity::find()
            .filter(bid_event::Column::BidId.eq(&x.id))
            .order_by_asc(bid_event::Column::Id)
            .all(db)
            .await?
            .into_iter()
            .map(|e| {
                json!({"kind": e.kind, "at": e.at,
                    "amount": e.amount_minor.map(|a| minor(a, &x.currency)), "detail": e.detail})
            })
            .collect();
        let payments: Vec<Value> = payment::Entity::find()
            .filter(payment::Column::BidId.eq(&x.id))
            .order_by_asc(payment::Column::CreatedAt)
            .all(db)
            .await?
            .into_iter()
            .map(|p| {
                json!({"id": p.id, "kind": p.kind, "amount": minor(p.amount_minor, &p.currency),
                    "currency": p.currency, "status": p.status, "provider": p.provider,
                    "created_at": p.created_at})
            })
            .collect();
        bid_docs.push(json!({
            "id": x.id, "lot_id": x.lot_id, "status": x.status,
            "amount_per_person": minor(x.amount_minor, &x.currency), "currency": x.currency,
            "units": x.units, "partial_ok": x.partial_ok, "submitted_at": x.submitted_at,
            "events": events, "payments": payments,
        }));
    }
    let messages: Vec<Value> = outbox_entity::Entity::find()
        .filter(outbox_entity::Column::BookingId.eq(&b.id))
        .filter(outbox_entity::Column::Channel.eq(outbox::EMAIL))
        .order_by_asc(outbox_entity::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|m| {
            json!({"topic": m.topic, "status": m.status, "to": m.recipient, "subject": m.subject,
                "body": m.body, "created_at": m.created_at, "sent_at": m.sent_at})
        })
        .collect();
    let unsubscribed = unsubscribe::Entity::find_by_id(b.id.clone())
        .one(db)
        .await?;
    Ok(json!({
        "booking": {
            "id": b.id, "reference": b.reference, "last_name": b.last_name,
            "email": b.email, "phone": b.phone, "language": b.language,
            "party_size": b.party_size, "loyalty_tier": b.loyalty_tier,
            "created_at": b.created_at, "erased_at": b.erased_at,
        },
        "eligible_lots": lots,
        "bids": bid_docs,
        "messages": messages,
        "reminders": {"unsubscribed_at": unsubscribed.map(|u| u.at)},
        "ip_addresses": "none stored",
        "exported_at": Utc::now(),
    }))
}

/// Erases the booking's personal data; idempotent. Refused while an offer is still in play
/// (the traveller must be reachable about money that may move).
pub async fn erase(db: &Db, booking_id: &str) -> Result<booking::Model, DataRightsError> {
    let txn = write_txn(db).await?;
    let erased = erase_in(&txn, booking_id, Utc::now()).await?;
    txn.commit().await?;
    Ok(erased)
}

async fn erase_in(
    txn: &impl ConnectionTrait,
    booking_id: &str,
    now: DateTime<Utc>,
) -> Result<booking::Model, DataRightsError> {
    let b = booking::Entity::find_by_id(booking_id.to_owned())
        .one(txn)
        .await?
        .ok_or(DataRightsError::NotFound)?;
    if b.erased_at.is_some() {
        return Ok(b);
    }
    let in_play = [
        BidStatus::Active,
        BidStatus::Won,
        BidStatus::Standby,
        BidStatus::PaymentFailed,
    ];
    if let Some(live) = bid::Entity::find()
        .filter(bid::Column::BookingId.eq(&b.id))
        .filter(bid::Column::Status.is_in(in_play.iter().map(|s| s.as_str())))
        .one(txn)
        .await?
    {
        return Err(DataRightsError::MoneyInFlight(live.status));
    }
    let mut am = b.into_active_model();
    am.last_name = Set("(erased)".to_owned());
    // Matches no name anyone can type, so the old reference + name pair opens nothing.
    am.last_name_key = Set(String::new());
    am.email = Set(None);
    am.phone = Set(None);
    am.erased_at = Set(Some(now));
    am.updated_at = Set(now);
    let erased = am.update(txn).await?;
    // What was sent to them: address and text (their name, links) go; the fact stays.
    outbox_entity::Entity::update_many()
        .col_expr(
            outbox_entity::Column::Recipient,
            Option::<String>::None.into(),
        )
        .col_expr(
            outbox_entity::Column::Subject,
            Option::<String>::None.into(),
        )
        .col_expr(outbox_entity::Column::Body, Option::<String>::None.into())
        .filter(outbox_entity::Column::BookingId.eq(booking_id))
        .exec(txn)
        .await?;
    outbox_entity::Entity::update_many()
        .col_expr(outbox_entity::Column::Status, outbox::SUPPRESSED.into())
        .col_expr(
            outbox_entity::Column::LastError,
            Some("personal data erased".to_owned()).into(),
        )
        .filter(outbox_entity::Column::BookingId.eq(booking_id))
        .filter(outbox_entity::Column::Channel.eq(outbox::EMAIL))
        .filter(outbox_entity::Column::Status.is_in([outbox::PENDING, outbox::PARKED]))
        .exec(txn)
        .await?;
    unsubscribe::Entity::delete_by_id(booking_id.to_owned())
        .exec(txn)
        .await?;
    Ok(erased)
}

/// The operator's retention period in days, if set.
pub async fn retention(db: &impl ConnectionTrait, operator_id: &str) -> Result<Option<i32>, DbErr> {
    Ok(privacy_setting::Entity::find_by_id(operator_id.to_owned())
        .one(db)
        .await?
        .map(|s| s.retention_days))
}

/// Sets (or with `None` removes) the retention period.
pub async fn set_retention(
    db: &Db,
    operator_id: &str,
    days: Option<i32>,
) -> Result<Option<i32>, DataRightsError> {
    match days {
        None => {
            privacy_setting::Entity::delete_by_id(operator_id.to_owned())
                .exec(db)
                .await?;
            Ok(None)
        }
        Some(d) if !(1..=3650).contains(&d) => Err(DataRightsError::BadRetention),
        Some(d) => {
            let row = privacy_setting::ActiveModel {
                operator_id: Set(operator_id.to_owned()),
                retention_days: Set(d),
                updated_at: Set(Utc::now()),
            };
            privacy_setting::Entity::insert(row)
                .on_conflict(
                    sea_orm::sea_query::OnConflict::column(privacy_setting::Column::OperatorId)
                        .update_columns([
                            privacy_setting::Column::RetentionDays,
                            privacy_setting::Column::UpdatedAt,
                        ])
                        .to_owned(),
                )
                .exec(db)
                .await?;
            Ok(Some(d))
        }
    }
}

/// Erases bookings whose every lot was settled or cancelled more than the operator's
/// retention period ago. Returns how many were erased.
pub async fn purge_expired(db: &Db, now: DateTime<Utc>) -> Result<usize, DbErr> {
    let mut purged = 0;
    for setting in privacy_setting::Entity::find().all(db).await? {
        let cutoff = now - Duration::days(i64::from(setting.retention_days));
        let done: std::collections::HashSet<String> = lot::Entity::find()
            .select_only()
            .column(lot::Column::Id)
            .filter(lot::Column::OperatorId.eq(&setting.operator_id))
            .filter(
                lot::Column::Status
                    .is_in([LotStatus::Settled.as_str(), LotStatus::Cancelled.as_str()]),
            )
            .filter(lot::Column::UpdatedAt.lt(cutoff))
            .into_tuple::<String>()
            .all(db)
            .await?
            .into_iter()
            .collect();
        if done.is_empty() {
            continue;
        }
        let candidates: Vec<String> = booking::Entity::find()
            .select_only()
            .column(booking::Column::Id)
            .filter(booking::Column::OperatorId.eq(&setting.operator_id))
            .filter(booking::Column::ErasedAt.is_null())
            .filter(booking::Column::CreatedAt.lt(cutoff))
            .into_tuple()
            .all(db)
            .await?;
        for booking_id in candidates {
            let lots: Vec<String> = booking_lot::Entity::find()
                .select_only()
                .column(booking_lot::Column::LotId)
                .filter(booking_lot::Column::BookingId.eq(&booking_id))
                .into_tuple()
                .all(db)
                .await?;
            if lots.is_empty() || !lots.iter().all(|l| done.contains(l)) {
                continue;
            }
            let txn = write_txn(db).await?;
            match erase_in(&txn, &booking_id, now).await {
                Ok(_) => {
                    txn.commit().await?;
                    purged += 1;
                }
                // A bid still in play on a settled lot is left for reconcile to look at.
                Err(DataRightsError::MoneyInFlight(_)) => txn.rollback().await?,
                Err(DataRightsError::Db(e)) => return Err(e),
                Err(_) => txn.rollback().await?,
            }
        }
    }
    Ok(purged)
}
