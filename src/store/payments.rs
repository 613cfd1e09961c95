//! The `payments` table: one row per provider call that moves or secures money, written
//! under the idempotency key the call uses.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, JoinType,
    QueryFilter, QuerySelect, Set,
};

use super::entities::{bid, payment};
use crate::ids;

/// A provider call to record.
pub struct NewPayment<'a> {
    pub bid_id: &'a str,
    /// `hold`, `save_card`, `charge`, `release`, `refund`, `upgrade_now`.
    pub kind: &'a str,
    pub amount_minor: i64,
    pub currency: &'a str,
    /// `pending` until the provider answers, then `succeeded`, `failed` or `released`.
    pub status: &'a str,
    pub provider: &'a str,
    pub provider_ref: Option<String>,
    pub idempotency_key: String,
    pub attempt: u32,
}

pub async fn insert(db: &impl ConnectionTrait, p: NewPayment<'_>) -> Result<payment::Model, DbErr> {
    row(p, Utc::now()).insert(db).await
}

/// Several calls recorded in one insert.
pub async fn insert_many(
    db: &impl ConnectionTrait,
    payments: Vec<NewPayment<'_>>,
) -> Result<(), DbErr> {
    if payments.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let rows = payments.into_iter().map(|p| row(p, now)).collect();
    for piece in super::shape::pieces(rows) {
        payment::Entity::insert_many(piece)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

fn row(p: NewPayment<'_>, now: chrono::DateTime<Utc>) -> payment::ActiveModel {
    payment::ActiveModel {
        id: Set(ids::new_id("pay")),
        bid_id: Set(p.bid_id.to_owned()),
        kind: Set(p.kind.to_owned()),
        amount_minor: Set(p.amount_minor),
        currency: Set(p.currency.to_owned()),
        status: Set(p.status.to_owned()),
        provider: Set(p.provider.to_owned()),
        provider_ref: Set(p.provider_ref),
        idempotency_key: Set(p.idempotency_key),
        attempt: Set(p.attempt as i32),
        error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// Records the provider's answer on a row written before the call.
pub async fn finish(
    db: &impl ConnectionTrait,
    row: payment::Model,
    status: &str,
    provider_ref: Option<String>,
    error: Option<String>,
) -> Result<(), DbErr> {
    let mut am = row.into_active_model();
    am.status = Set(status.to_owned());
    if provider_ref.is_some() {
        am.provider_ref = Set(provider_ref);
    }
    am.error = Set(error);
    am.updated_at = Set(Utc::now());
    am.update(db).await?;
    Ok(())
}

/// Payments joined to their bids (`payments.bid_id = bids.id`), for queries by lot or
/// operator.
pub fn of_bids() -> sea_orm::RelationDef {
    payment::Entity::belongs_to(bid::Entity)
        .from(payment::Column::BidId)
        .to(bid::Column::Id)
        .into()
}

/// The bids of a lot with a charge asked of the provider and not yet answered: the money
/// may have been taken.
pub async fn unanswered_charges(
    db: &impl ConnectionTrait,
    lot_id: &str,
) -> Result<HashSet<String>, DbErr> {
    let ids: Vec<String> = payment::Entity::find()
        .select_only()
        .column(payment::Column::BidId)
        .join(JoinType::InnerJoin, of_bids())
        .filter(bid::Column::LotId.eq(lot_id))
        .filter(payment::Column::Kind.eq("charge"))
        .filter(payment::Column::Status.eq("pending"))
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids.into_iter().collect())
}

/// Where the money of a bid that no longer stands is, for telling its traveller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charged {
    /// Nothing taken; the bid's hold is still on the card, on its way to be released.
    Releasing,
    /// Nothing taken, or all of it given back; the hold there was is released.
    Nothing,
    /// Nothing taken and nothing on the card: it was only saved, for a charge on award that
    /// never came (or never held at all).
    NeverHeld,
    /// A charge was asked for and not yet answered: the money may have been taken.
    Unanswered,
    /// Taken and not yet given back.
    Taken,
}

/// Where the bid's money stands, from the bid and its hold, charge and refund rows.
pub async fn charged(db: &impl ConnectionTrait, b: &bid::Model) -> Result<Charged, DbErr> {
    let of = charged_of(db, &[b]).await?;
    Ok(of.get(&b.id).copied().unwrap_or(Charged::NeverHeld))
}

/// Where each of these bids' money stands, in one read (a page listing several bids); every
/// bid asked about has an answer.
pub async fn charged_of(
    db: &impl ConnectionTrait,
    bids: &[&bid::Model],
) -> Result<HashMap<String, Charged>, DbErr> {
    if bids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String, String)> = payment::Entity::find()
        .select_only()
        .column(payment::Column::BidId)
        .column(payment::Column::Kind)
        .column(payment::Column::Status)
        .filter(payment::Column::BidId.is_in(bids.iter().map(|b| b.id.as_str())))
        .filter(payment::Column::Kind.is_in(["hold", "charge", "refund"]))
        .filter(payment::Column::Status.is_in(["pending", "succeeded", "released"]))
        .into_tuple()
        .all(db)
        .await?;
    let mut of: HashMap<&str, Vec<(String, String)>> =
        bids.iter().map(|b| (b.id.as_str(), Vec::new())).collect();
    for (bid, kind, status) in rows {
        if let Some(rows) = of.get_mut(bid.as_str()) {
            rows.push((kind, status));
        }
    }
    Ok(bids
        .iter()
        .map(|b| {
            let rows = &of[b.id.as_str()];
            let has = |kind: &str, status: &str| rows.iter().any(|(k, s)| k == kind && s == status);
            let held_once = rows.iter().any(|(k, _)| k == "hold");
            let money = if has("refund", "succeeded") {
                Charged::Nothing
            } else if has("charge", "succeeded") {
                Charged::Taken
            } else if has("charge", "pending") {
                Charged::Unanswered
            } else if b.payment_ref.is_some() {
                Charged::Releasing
            } else if b.card_only_saved() || !held_once {
                // A saved card's bid may have had an "upgrade now" hold, released since.
                Charged::NeverHeld
            } else {
                Charged::Nothing
            };
            (b.id.clone(), money)
        })
        .collect())
}

/// The idempotency key of an "upgrade now" capture: what tells that sale's charge from an
/// award's.
pub fn upgrade_now_key(bid_id: &str, attempt: u32) -> String {
    format!("surclass:{bid_id}{UPGRADE_NOW_KEY}{attempt}")
}

/// Whether a charge's key is an "upgrade now" capture's.
pub fn is_upgrade_now_key(key: &str) -> bool {
    key.contains(UPGRADE_NOW_KEY)
}

const UPGRADE_NOW_KEY: &str = ":upgrade-now:";

/// Money taken from and given back to cards, in minor units.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MoneyMoved {
    pub charged_minor: i64,
    pub refunded_minor: i64,
}

/// The money of a lot's award: the succeeded charges and refunds of its bids (a winner has at
/// most one of each). "Upgrade now" sales are left out, and so are their refunds: they are
/// paid at purchase, outside the auction, and the award counts their units as taken.
pub async fn of_award(db: &impl ConnectionTrait, lot_id: &str) -> Result<MoneyMoved, DbErr> {
    let rows: Vec<(String, String, i64, String)> = payment::Entity::find()
        .select_only()
        .column(payment::Column::BidId)
        .column(payment::Column::Kind)
        .column(payment::Column::AmountMinor)
        .column(payment::Column::IdempotencyKey)
        .join(JoinType::InnerJoin, of_bids())
        .filter(bid::Column::LotId.eq(lot_id))
        .filter(payment::Column::Status.eq("succeeded"))
        .filter(payment::Column::Kind.is_in(["charge", "refund"]))
        .into_tuple()
        .all(db)
        .await?;
    let bought_now: HashSet<&str> = rows
        .iter()
        .filter(|(_, kind, _, key)| kind == "charge" && is_upgrade_now_key(key))
        .map(|(bid_id, ..)| bid_id.as_str())
        .collect();
    Ok(rows
        .iter()
        .filter(|(bid_id, ..)| !bought_now.contains(bid_id.as_str()))
        .fold(MoneyMoved::default(), |mut moved, (_, kind, amount, _)| {
            match kind.as_str() {
                "charge" => moved.charged_minor += amount,
                _ => moved.refunded_minor += amount,
            }
            moved
        }))
}
