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
use crate::payments::SavedCard;
use crate::services::audit::{self, Actor};
use crate::store::entities::{
    bid, bid_event, booking, booking_lot, lot, outbox as outbox_entity, payment, privacy_setting,
    unsubscribe, webhook_endpoint,
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
    /// A paid upgrade still ahead can be cancelled and refunded: the traveller must hear of
    /// it, so their contact details stay until the travel day has passed.
    #[error(
        "this booking has a paid upgrade for {0}; its contact details are kept until that day has passed, to tell the traveller if it changes, so ask again after it"
    )]
    UpgradeAhead(chrono::NaiveDate),
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
        // The card as the traveller knows it (brand, last digits, expiry), not its ids.
        let saved_card = x
            .saved_card
            .as_deref()
            .and_then(|c| serde_json::from_str::<SavedCard>(c).ok())
            .map(|c| {
                json!({"brand": c.card.brand, "last4": c.card.last4,
                    "exp_month": c.card.exp_month, "exp_year": c.card.exp_year})
            });
        bid_docs.push(json!({
            "id": x.id, "lot_id": x.lot_id, "status": x.status,
            "amount_per_person": minor(x.amount_minor, &x.currency), "currency": x.currency,
            "units": x.units, "partial_ok": x.partial_ok, "preference": x.preference,
            "submitted_at": x.submitted_at, "saved_card": saved_card,
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
    // Partners told of this booking's bids: what, to which site, and when (ids and statuses
    // only). The site, not the address: a partner's URL may carry its receiver's credentials.
    let notices = outbox_entity::Entity::find()
        .filter(outbox_entity::Column::BookingId.eq(&b.id))
        .filter(outbox_entity::Column::Channel.ne(outbox::EMAIL))
        .order_by_asc(outbox_entity::Column::Id)
        .all(db)
        .await?;
    let endpoints: std::collections::HashMap<String, String> = webhook_endpoint::Entity::find()
        .filter(
            webhook_endpoint::Column::Id
                .is_in(notices.iter().filter_map(|m| m.endpoint_id.clone())),
        )
        .all(db)
        .await?
        .into_iter()
        .map(|e| (e.id, site_of(&e.url)))
        .collect();
    let partner_notices: Vec<Value> = notices
        .into_iter()
        .map(|m| {
            let to = m.endpoint_id.as_ref().and_then(|e| endpoints.get(e));
            json!({"topic": m.topic, "status": m.status, "to": to,
                "created_at": m.created_at, "sent_at": m.sent_at})
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
        "partner_notices": partner_notices,
        "reminders": {"unsubscribed_at": unsubscribed.map(|u| u.at)},
        "ip_addresses": "none stored",
        "exported_at": Utc::now(),
    }))
}

/// What an erased booking's bids keep of a saved card: that there was one (pages and
/// messages word a saved card apart from a hold), and nothing of the card.
pub const ERASED_CARD: &str = r#"{"erased":true}"#;

/// Erases the booking's personal data; idempotent. Refused while an offer is still in play
/// (the traveller must be reachable about money that may move).
pub async fn erase(
    db: &Db,
    booking_id: &str,
    by: Asker,
) -> Result<booking::Model, DataRightsError> {
    let txn = write_txn(db).await?;
    let erased = erase_in(&txn, booking_id, by, Utc::now()).await?;
    txn.commit().await?;
    Ok(erased)
}

/// Who asked for an erasure, for the audit log.
pub enum Asker {
    /// The traveller, signed in to the booking.
    Traveller,
    /// The operator, with this actor (an API key).
    Operator(Actor),
}

async fn erase_in(
    txn: &impl ConnectionTrait,
    booking_id: &str,
    by: Asker,
    now: DateTime<Utc>,
) -> Result<booking::Model, DataRightsError> {
    // Taken for update before bids are looked at: a bid being written for this booking
    // holds it for key share (bid intake, "upgrade now"), so one of the two waits for the
    // other and sees it.
    let b = booking::Entity::find_by_id(booking_id.to_owned())
        .lock_exclusive()
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
    if let Some(day) = paid_upgrade_ahead(txn, &b.id, now).await? {
        return Err(DataRightsError::UpgradeAhead(day));
    }
    let by = match by {
        Asker::Traveller => Actor::traveller(&b.operator_id),
        Asker::Operator(actor) => actor,
    };
    // The booking's id only: its reference stays on it, its name goes.
    audit::record(txn, &by, "booking.erased", &b.id, None, None).await?;
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
    // A saved card's brand, last digits, expiry and provider ids: no bid left can be charged.
    bid::Entity::update_many()
        .col_expr(bid::Column::SavedCard, Some(ERASED_CARD.to_owned()).into())
        .filter(bid::Column::BookingId.eq(booking_id))
        .filter(bid::Column::SavedCard.is_not_null())
        .exec(txn)
        .await?;
    Ok(erased)
}

/// The travel day of a charged upgrade of this booking that is still ahead (today or later in
/// its lot's time zone), if there is one: until then the operator may cancel or cut it.
async fn paid_upgrade_ahead(
    txn: &impl ConnectionTrait,
    booking_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<chrono::NaiveDate>, DbErr> {
    let charged: Vec<String> = bid::Entity::find()
        .select_only()
        .column(bid::Column::LotId)
        .filter(bid::Column::BookingId.eq(booking_id))
        .filter(bid::Column::Status.eq(BidStatus::Charged.as_str()))
        .into_tuple()
        .all(txn)
        .await?;
    if charged.is_empty() {
        return Ok(None);
    }
    let lots = lot::Entity::find()
        .filter(lot::Column::Id.is_in(charged))
        .all(txn)
        .await?;
    Ok(lots
        .into_iter()
        .filter(|l| {
            let zone = crate::local_time::zone(&l.time_zone);
            l.service_date >= now.with_timezone(&zone).date_naive()
        })
        .map(|l| l.service_date)
        .max())
}

/// The lots a booking is eligible for.
async fn lots_of(conn: &impl ConnectionTrait, booking_id: &str) -> Result<Vec<String>, DbErr> {
    booking_lot::Entity::find()
        .select_only()
        .column(booking_lot::Column::LotId)
        .filter(booking_lot::Column::BookingId.eq(booking_id))
        .into_tuple()
        .all(conn)
        .await
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
        // A booking eligible for no lot yet is kept: its lot may not be created yet.
        let expired = |lots: &[String]| !lots.is_empty() && lots.iter().all(|l| done.contains(l));
        for booking_id in candidates {
            if !expired(&lots_of(db, &booking_id).await?) {
                continue;
            }
            let txn = write_txn(db).await?;
            // Looked at again under the booking's lock, which an import adding an eligibility
            // waits for: a lot added meanwhile keeps the booking.
            booking::Entity::find_by_id(booking_id.clone())
                .lock_exclusive()
                .one(&txn)
                .await?;
            if !expired(&lots_of(&txn, &booking_id).await?) {
                txn.rollback().await?;
                continue;
            }
            let by = Asker::Operator(Actor::system(&setting.operator_id, "retention"));
            match erase_in(&txn, &booking_id, by, now).await {
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

/// The scheme, host and port of a webhook address: where the notice went, without the path,
/// query or user name that could carry the receiver's secrets.
fn site_of(address: &str) -> String {
    url::Url::parse(address)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}
