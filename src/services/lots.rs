//! Operators configure lots: create, edit, open, cancel, change capacity, list.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::events;
use crate::domain::bid::{BidEventKind, BidStatus};
use crate::domain::lot::{LotSpec, LotStatus};
use crate::domain::validation::FieldErrors;
use crate::ids;
use crate::store::entities::{bid, lot};
use crate::store::{Db, lots as store_lots, write_txn};

#[derive(Debug, thiserror::Error)]
pub enum LotError {
    #[error("no such lot")]
    NotFound,
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error("the lot is {status}: it cannot be {action}")]
    WrongState {
        status: LotStatus,
        action: &'static str,
    },
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl From<FieldErrors> for LotError {
    fn from(e: FieldErrors) -> Self {
        LotError::Invalid(e)
    }
}

/// Fields that decide how bids already placed are judged: fixed once the lot opens.
const FIXED_ONCE_OPEN: &[&str] = &[
    "resource_kind",
    "resource",
    "service_date",
    "from_class",
    "to_class",
    "currency",
    "reserve",
    "maximum",
    "award_policy",
    "tier_weight_pct",
    "payment_mode",
    "opens_at",
];

pub async fn create(
    db: &Db,
    operator_id: &str,
    spec: LotSpec,
    open: bool,
) -> Result<lot::Model, LotError> {
    let now = Utc::now();
    let mut errors = FieldErrors::new();
    spec.check(now, &mut errors);
    errors.into_result()?;
    let mut am = lot::ActiveModel {
        id: Set(ids::new_id("lot")),
        operator_id: Set(operator_id.to_owned()),
        status: Set(if open {
            LotStatus::Open
        } else {
            LotStatus::Draft
        }
        .as_str()
        .to_owned()),
        version: Set(0),
        created_at: Set(now),
        ..Default::default()
    };
    store_lots::apply(&mut am, &spec, now);
    Ok(am.insert(db).await?)
}

/// A lot of this operator; another operator's lot is "not found", never "forbidden".
pub async fn get(
    db: &impl ConnectionTrait,
    operator_id: &str,
    lot_id: &str,
) -> Result<lot::Model, LotError> {
    lot::Entity::find_by_id(lot_id.to_owned())
        .filter(lot::Column::OperatorId.eq(operator_id))
        .one(db)
        .await?
        .ok_or(LotError::NotFound)
}

/// Edits a lot: anything while draft; once open, only what does not change how bids already
/// placed are judged (title, close time, "upgrade now" price, review, grace period, ...).
pub async fn update(
    db: &Db,
    operator_id: &str,
    lot_id: &str,
    edit: impl FnOnce(&LotSpec) -> Result<(LotSpec, Vec<&'static str>), FieldErrors>,
) -> Result<lot::Model, LotError> {
    let txn = write_txn(db).await?;
    let current = lock(&txn, operator_id, lot_id).await?;
    let status = store_lots::status(&current);
    if !matches!(status, LotStatus::Draft | LotStatus::Open) {
        return Err(LotError::WrongState {
            status,
            action: "edited",
        });
    }
    let base = store_lots::spec(&current)
        .map_err(|e| DbErr::Custom(format!("stored lot unreadable: {e}")))?;
    let (spec, touched) = edit(&base)?;
    let mut errors = FieldErrors::new();
    if status == LotStatus::Open {
        for field in touched.iter().filter(|f| FIXED_ONCE_OPEN.contains(f)) {
            errors.add(
                *field,
                "cannot change once the lot is open (cancel it and create another)",
            );
        }
        if spec.capacity != base.capacity {
            errors.add(
                "capacity",
                "change it with POST /v1/lots/{id}/capacity, which tells bidders",
            );
        }
    }
    spec.check(Utc::now(), &mut errors);
    errors.into_result()?;
    let mut am = current.into_active_model();
    store_lots::apply(&mut am, &spec, Utc::now());
    am.version = Set(am.version.as_ref() + 1);
    let updated = am.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

pub async fn open(db: &Db, operator_id: &str, lot_id: &str) -> Result<lot::Model, LotError> {
    let txn = write_txn(db).await?;
    let current = lock(&txn, operator_id, lot_id).await?;
    let status = store_lots::status(&current);
    if status != LotStatus::Draft {
        return Err(LotError::WrongState {
            status,
            action: "opened",
        });
    }
    if current.closes_at <= Utc::now() {
        return Err(
            FieldErrors::single("closes_at", "is already past: move it before opening").into(),
        );
    }
    let updated = set_status(&txn, current, LotStatus::Open).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Cancels the lot: every active bid's hold is released and the traveller told.
pub async fn cancel(
    db: &Db,
    operator_id: &str,
    lot_id: &str,
    reason: &str,
) -> Result<lot::Model, LotError> {
    let txn = write_txn(db).await?;
    let current = lock(&txn, operator_id, lot_id).await?;
    let status = store_lots::status(&current);
    if matches!(status, LotStatus::Settled | LotStatus::Cancelled) {
        return Err(LotError::WrongState {
            status,
            action: "cancelled",
        });
    }
    let now = Utc::now();
    let detail = format!("The operator cancelled this upgrade: {reason}");
    release_active_bids(&txn, &current.id, BidEventKind::LotCancelled, &detail, now).await?;
    let updated = set_status(&txn, current, LotStatus::Cancelled).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Changes capacity while the lot is draft or open. Zero withdraws the upgrade from sale:
/// every bidder is told at once and their hold released, so no one waits for what cannot be had.
pub async fn set_capacity(
    db: &Db,
    operator_id: &str,
    lot_id: &str,
    capacity: u32,
) -> Result<lot::Model, LotError> {
    let txn = write_txn(db).await?;
    let current = lock(&txn, operator_id, lot_id).await?;
    let status = store_lots::status(&current);
    if !matches!(status, LotStatus::Draft | LotStatus::Open) {
        return Err(LotError::WrongState {
            status,
            action: "resized",
        });
    }
    let mut errors = FieldErrors::new();
    if capacity > crate::domain::lot::MAX_CAPACITY {
        errors.add(
            "capacity",
            format!("must be at most {}", crate::domain::lot::MAX_CAPACITY),
        );
    }
    if (capacity as i32) < current.entitlement_units {
        errors.add(
            "capacity",
            format!(
                "is below the {} units already taken by entitlements",
                current.entitlement_units
            ),
        );
    }
    errors.into_result()?;
    let now = Utc::now();
    if capacity == 0 {
        let detail = "No upgrade is available on this lot any more; your card hold is released.";
        release_active_bids(
            &txn,
            &current.id,
            BidEventKind::CapacityChanged,
            detail,
            now,
        )
        .await?;
    }
    let mut am = current.into_active_model();
    am.capacity = Set(capacity as i32);
    am.updated_at = Set(now);
    am.version = Set(am.version.as_ref() + 1);
    let updated = am.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

#[derive(Debug, Default, Clone)]
pub struct LotFilter {
    pub status: Option<LotStatus>,
    pub resource: Option<String>,
    pub service_date_from: Option<NaiveDate>,
    pub service_date_to: Option<NaiveDate>,
}

/// Lots by closing time, then id; `after` is the last (closes_at, id) of the previous page.
pub async fn list(
    db: &Db,
    operator_id: &str,
    filter: &LotFilter,
    after: Option<(DateTime<Utc>, String)>,
    limit: u64,
) -> Result<Vec<lot::Model>, DbErr> {
    let mut query = lot::Entity::find().filter(lot::Column::OperatorId.eq(operator_id));
    if let Some(status) = filter.status {
        query = query.filter(lot::Column::Status.eq(status.as_str()));
    }
    if let Some(resource) = &filter.resource {
        query = query.filter(lot::Column::Resource.eq(resource.as_str()));
    }
    if let Some(from) = filter.service_date_from {
        query = query.filter(lot::Column::ServiceDate.gte(from));
    }
    if let Some(to) = filter.service_date_to {
        query = query.filter(lot::Column::ServiceDate.lte(to));
    }
    if let Some((closes_at, id)) = after {
        query = query.filter(
            Condition::any()
                .add(lot::Column::ClosesAt.gt(closes_at))
                .add(
                    Condition::all()
                        .add(lot::Column::ClosesAt.eq(closes_at))
                        .add(lot::Column::Id.gt(id)),
                ),
        );
    }
    query
        .order_by_asc(lot::Column::ClosesAt)
        .order_by_asc(lot::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Active bid count and best offer per unit, for the operator's view of these lots.
pub async fn bid_stats(
    db: &Db,
    lot_ids: &[String],
) -> Result<Vec<(String, i64, Option<i64>)>, DbErr> {
    if lot_ids.is_empty() {
        return Ok(vec![]);
    }
    bid::Entity::find()
        .select_only()
        .column(bid::Column::LotId)
        .column_as(Expr::from(Func::count(Expr::col(bid::Column::Id))), "bids")
        .column_as(
            Expr::from(Func::max(Expr::col(bid::Column::AmountMinor))),
            "best",
        )
        .filter(bid::Column::LotId.is_in(lot_ids.iter().cloned()))
        .filter(bid::Column::Status.eq(BidStatus::Active.as_str()))
        .group_by(bid::Column::LotId)
        .into_tuple()
        .all(db)
        .await
}

/// Reads the lot for a change, locking its row on PostgreSQL (SQLite's `BEGIN IMMEDIATE`
/// already holds the write lock).
async fn lock(
    txn: &impl ConnectionTrait,
    operator_id: &str,
    lot_id: &str,
) -> Result<lot::Model, LotError> {
    lot::Entity::find_by_id(lot_id.to_owned())
        .filter(lot::Column::OperatorId.eq(operator_id))
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(LotError::NotFound)
}

async fn set_status(
    txn: &impl ConnectionTrait,
    current: lot::Model,
    status: LotStatus,
) -> Result<lot::Model, DbErr> {
    let mut am = current.into_active_model();
    am.status = Set(status.as_str().to_owned());
    am.updated_at = Set(Utc::now());
    am.version = Set(am.version.as_ref() + 1);
    am.update(txn).await
}

async fn release_active_bids(
    txn: &impl ConnectionTrait,
    lot_id: &str,
    why: BidEventKind,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let active = bid::Entity::find()
        .filter(bid::Column::LotId.eq(lot_id))
        .filter(bid::Column::Status.eq(BidStatus::Active.as_str()))
        .all(txn)
        .await?;
    for b in active {
        events::record(txn, &b.id, why, None, Some(detail.to_owned()), now).await?;
        if b.payment_ref.is_some() {
            events::record(txn, &b.id, BidEventKind::HoldReleased, None, None, now).await?;
        }
        let mut am = b.into_active_model();
        am.status = Set(BidStatus::Released.as_str().to_owned());
        am.updated_at = Set(now);
        am.update(txn).await?;
    }
    Ok(())
}
