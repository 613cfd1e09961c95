//! The `payments` table: one row per provider call that moves or secures money, written
//! under the idempotency key the call uses.

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

/// Money taken from and given back to the cards of a lot's bidders, in minor units: every
/// succeeded charge and refund of its bids (at most two rows a winner).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MoneyMoved {
    pub charged_minor: i64,
    pub refunded_minor: i64,
}

pub async fn moved_on_lot(db: &impl ConnectionTrait, lot_id: &str) -> Result<MoneyMoved, DbErr> {
    let rows: Vec<(String, i64)> = payment::Entity::find()
        .select_only()
        .column(payment::Column::Kind)
        .column(payment::Column::AmountMinor)
        .join(
            JoinType::InnerJoin,
            payment::Entity::belongs_to(bid::Entity)
                .from(payment::Column::BidId)
                .to(bid::Column::Id)
                .into(),
        )
        .filter(bid::Column::LotId.eq(lot_id))
        .filter(payment::Column::Status.eq("succeeded"))
        .filter(payment::Column::Kind.is_in(["charge", "refund"]))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .fold(MoneyMoved::default(), |mut moved, (kind, amount)| {
            match kind.as_str() {
                "charge" => moved.charged_minor += amount,
                _ => moved.refunded_minor += amount,
            }
            moved
        }))
}
