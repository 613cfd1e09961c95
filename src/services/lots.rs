//! Operators configure lots: create, edit, open, cancel, change capacity, list.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Select, Set,
};

use super::audit::{self, Actor};
use super::award::{self as award_service, LoserRecord, PlanRecord};
use super::events;
use crate::domain::award::AwardStatus;
use crate::domain::bid::{BidEventKind, BidStatus};
use crate::domain::lot::{LotSpec, LotStatus, PaymentMode, hold_window};
use crate::domain::outcome::OutcomeReason;
use crate::domain::validation::FieldErrors;
use crate::ids;
use crate::jobs::{self, Job};
use crate::local_time;
use crate::money::Money;
use crate::notifications::why::Why;
use crate::notifications::{Topic, outbox};
use crate::store::entities::{award, bid, lot};
use crate::store::{Db, keyset, lots as store_lots, payments as store_payments, write_txn};

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

/// Fields that decide how bids already placed are judged, or what travellers were shown
/// before giving a card (whether taxes are included, which day the upgrade is for in which
/// zone): fixed once the lot opens.
const FIXED_ONCE_OPEN: &[&str] = &[
    "resource_kind",
    "resource",
    "service_date",
    "from_class",
    "to_class",
    "class_rank",
    "currency",
    "reserve",
    "maximum",
    "taxes_included",
    "award_policy",
    "tier_weight_pct",
    "payment_mode",
    "opens_at",
    "time_zone",
    "chained_capacity",
];

pub async fn create(
    db: &Db,
    by: &Actor,
    spec: LotSpec,
    open: bool,
) -> Result<lot::Model, LotError> {
    let now = Utc::now();
    let mut errors = FieldErrors::new();
    spec.check(now, &mut errors);
    errors.into_result()?;
    let mut am = lot::ActiveModel {
        id: Set(ids::new_id("lot")),
        operator_id: Set(by.operator_id.clone()),
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
    let txn = write_txn(db).await?;
    let created = am.insert(&txn).await?;
    audit::record(
        &txn,
        by,
        "lot.created",
        &created.id,
        None,
        Some(summary(&created)),
    )
    .await?;
    txn.commit().await?;
    Ok(created)
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

/// Edits a lot: anything while draft; once open, [`FIXED_ONCE_OPEN`] stays as the bids were
/// placed on it, and the rest (title, close time, "upgrade now" price, review, grace period,
/// ...) can change. A value sent again unchanged is no change.
pub async fn update(
    db: &Db,
    by: &Actor,
    lot_id: &str,
    edit: impl FnOnce(&LotSpec) -> Result<LotSpec, FieldErrors>,
) -> Result<lot::Model, LotError> {
    let txn = write_txn(db).await?;
    let current = lock(&txn, &by.operator_id, lot_id).await?;
    let status = store_lots::status(&current);
    if !matches!(status, LotStatus::Draft | LotStatus::Open) {
        return Err(LotError::WrongState {
            status,
            action: "edited",
        });
    }
    let base = store_lots::spec(&current)
        .map_err(|e| DbErr::Custom(format!("stored lot unreadable: {e}")))?;
    let spec = edit(&base)?;
    let mut errors = FieldErrors::new();
    if status == LotStatus::Open {
        // A value sent again unchanged is no change: a client may send the whole lot back.
        let changed = spec.differing_fields(&base);
        for field in changed.iter().filter(|f| FIXED_ONCE_OPEN.contains(f)) {
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
        let sold = current.units_sold_now.max(0) as u32;
        if spec.entitlement_units != base.entitlement_units
            && spec.entitlement_units + sold > spec.capacity
        {
            errors.add(
                "entitlement_units",
                format!(
                    "with the {sold} upgrades already sold by \"upgrade now\", at most {} fit the capacity of {}",
                    spec.capacity.saturating_sub(sold),
                    spec.capacity
                ),
            );
        }
        // Past its close, a lot waits only for the close job: moving the close then would
        // reopen bidding after the deadline.
        let now = Utc::now();
        if spec.closes_at != base.closes_at && base.closes_at <= now {
            errors.add(
                "closes_at",
                "bidding has already closed: the close can no longer move",
            );
        } else if spec.closes_at < base.closes_at
            && spec.closes_at < now + SOONER_CLOSE_NOTICE
            && has_active_bids(&txn, &current.id).await?
        {
            // Told by email, a bidder needs time to read it and change their offer.
            errors.add(
                "closes_at",
                format!(
                    "bidders are told of a sooner close an hour ahead at least: no earlier than {}",
                    (now + SOONER_CLOSE_NOTICE).format("%Y-%m-%dT%H:%M:%SZ")
                ),
            );
        }
        if spec.closes_at > base.closes_at
            && let Some(limit) = hold_limit(&txn, &current.id, &spec).await?
            && spec.closes_at > limit
        {
            errors.add(
                "closes_at",
                format!(
                    "must be no later than {} ({} days after the oldest card hold, which would expire before the award)",
                    limit.format("%Y-%m-%dT%H:%M:%SZ"),
                    hold_window().num_days()
                ),
            );
        }
    }
    if status == LotStatus::Open && spec.closes_at == base.closes_at {
        // An open lot saved before the service-day rule keeps taking edits until its close
        // moves (its service date and zone cannot).
        spec.check_but_service_day(Utc::now(), &mut errors);
    } else {
        spec.check(Utc::now(), &mut errors);
    }
    errors.into_result()?;
    let before = summary(&current);
    let mut am = current.into_active_model();
    store_lots::apply(&mut am, &spec, Utc::now());
    am.version = Set(am.version.as_ref() + 1);
    let updated = am.update(&txn).await?;
    audit::record(
        &txn,
        by,
        "lot.edited",
        &updated.id,
        Some(before),
        Some(summary(&updated)),
    )
    .await?;
    if status == LotStatus::Open && spec.entitlement_units > base.entitlement_units {
        // Fewer units for bids: parties the units left cannot take are let go.
        let room = Job::ReleaseWithoutRoom {
            lot_id: updated.id.clone(),
        };
        jobs::enqueue(&txn, room, Utc::now()).await?;
    }
    if status == LotStatus::Open && updated.closes_at != base.closes_at {
        tell_close_moved(&txn, &updated, base.closes_at).await?;
        // A reminder waiting for the old close looks again now (it waits anew if need be).
        let remind = Job::Remind {
            lot_id: updated.id.clone(),
        };
        jobs::bring_forward(&txn, &remind, Utc::now()).await?;
    }
    txn.commit().await?;
    Ok(updated)
}

/// Every active bidder hears of a new closing time at once, in the transaction that moves it
/// (bids wait on the lot's lock meanwhile, so none is missed): a sooner close would cut off a
/// change they meant to make, and a reminder already sent named the old time. Times are
/// written to the minute: a move within the minute tells no one.
async fn tell_close_moved(
    txn: &impl ConnectionTrait,
    l: &lot::Model,
    was: DateTime<Utc>,
) -> Result<(), DbErr> {
    if local_time::same_minute(was, l.closes_at) {
        return Ok(());
    }
    let now = Utc::now();
    let active = bid::Entity::find()
        .filter(bid::Column::LotId.eq(&l.id))
        .filter(bid::Column::Status.eq(BidStatus::Active.as_str()))
        .all(txn)
        .await?;
    if active.is_empty() {
        return Ok(());
    }
    let endpoints = outbox::endpoints_of(txn, &l.operator_id).await?;
    let why = Why::DeadlineMoved {
        was,
        closes: l.closes_at,
    };
    // A few multi-row inserts rather than two statements per bid: the lot stays locked.
    let told: Vec<_> = active.iter().map(|b| (b, l)).collect();
    outbox::enqueue_many(
        txn,
        &told,
        &endpoints,
        Topic::DeadlineMoved,
        Some(&why),
        now,
    )
    .await
}

pub async fn open(db: &Db, by: &Actor, lot_id: &str) -> Result<lot::Model, LotError> {
    let txn = write_txn(db).await?;
    let current = lock(&txn, &by.operator_id, lot_id).await?;
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
    // A draft saved under older rules is held to today's before travellers see it.
    let spec = store_lots::spec(&current)
        .map_err(|e| DbErr::Custom(format!("stored lot unreadable: {e}")))?;
    let mut errors = FieldErrors::new();
    spec.check(Utc::now(), &mut errors);
    errors.into_result()?;
    let updated = set_status(&txn, current, LotStatus::Open).await?;
    audit::record(
        &txn,
        by,
        "lot.opened",
        &updated.id,
        Some("status=draft".into()),
        Some("status=open".into()),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Cancels the lot: every active bid's hold is released and the traveller told.
pub async fn cancel(
    db: &Db,
    by: &Actor,
    lot_id: &str,
    reason: &str,
) -> Result<lot::Model, LotError> {
    let txn = write_txn(db).await?;
    let current = lock(&txn, &by.operator_id, lot_id).await?;
    let status = store_lots::status(&current);
    if status == LotStatus::Cancelled {
        return Err(LotError::WrongState {
            status,
            action: "cancelled",
        });
    }
    let now = Utc::now();
    let before = format!("status={status}");
    let why = Why::OperatorCancelled {
        words: reason.to_string(),
    };
    // Counted from the bids as locked and undone, not as they stood a moment before.
    let impact = unwind_bids(
        &txn,
        &current.id,
        BidEventKind::LotCancelled,
        OutcomeReason::LotCancelled,
        &why,
        now,
    )
    .await?;
    let updated = set_status(&txn, current, LotStatus::Cancelled).await?;
    // An award made before the cancel no longer stands: it is neither waiting for review
    // nor approved, and saying so keeps the API and the console from offering it.
    let award_cancelled = award::Entity::update_many()
        .col_expr(
            award::Column::Status,
            Expr::value(AwardStatus::Cancelled.as_str()),
        )
        .filter(award::Column::LotId.eq(&updated.id))
        .exec(&txn)
        .await?
        .rows_affected
        > 0;
    audit::record(
        &txn,
        by,
        "lot.cancelled",
        &updated.id,
        Some(before),
        Some(format!(
            "status=cancelled reason={reason:?} holds_released={} charges_refunded={}{}",
            impact.holds,
            impact.charges,
            if award_cancelled {
                " award=cancelled"
            } else {
                ""
            }
        )),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Changes capacity while the lot is draft or open. Zero withdraws the upgrade from sale:
/// every bidder is told at once and their hold released, so no one waits for what cannot be had.
pub async fn set_capacity(
    db: &Db,
    by: &Actor,
    lot_id: &str,
    capacity: u32,
) -> Result<lot::Model, LotError> {
    let txn = write_txn(db).await?;
    let current = lock(&txn, &by.operator_id, lot_id).await?;
    let status = store_lots::status(&current);
    if matches!(status, LotStatus::Cancelled | LotStatus::Closed) {
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
    // Upgrades sold by "upgrade now" are seats someone has paid for: the lot may be withdrawn
    // whole (0, which refunds them) but not shrunk under them.
    // After the award too: cutting winners refunds auction winners, not these.
    let sold = current.units_sold_now.max(0);
    let awarded = matches!(status, LotStatus::Awarded | LotStatus::Settled);
    if (capacity != 0 || awarded)
        && (capacity as i32) >= current.entitlement_units
        && (capacity as i32) < current.entitlement_units + sold
    {
        let withdraw = if current.entitlement_units == 0 && !awarded {
            "; 0 withdraws the lot and refunds them"
        } else {
            ""
        };
        errors.add(
            "capacity",
            format!(
                "is below the {} units already taken ({sold} sold by \"upgrade now\", {} by entitlements){withdraw}",
                current.entitlement_units + sold,
                current.entitlement_units
            ),
        );
    }
    errors.into_result()?;
    let now = Utc::now();
    let mut withdrawn = false;
    if awarded {
        let spec = store_lots::spec(&current)
            .map_err(|e| DbErr::Custom(format!("stored lot unreadable: {e}")))?;
        cut_awarded(&txn, &current, &spec, capacity, now).await?;
    } else if capacity == 0 {
        // What becomes of the card is the message's and the page's to say: held or saved.
        unwind_bids(
            &txn,
            &current.id,
            BidEventKind::CapacityChanged,
            OutcomeReason::CapacityWithdrawn,
            &Why::WithdrawnFromSale,
            now,
        )
        .await?;
        withdrawn = true;
    }
    if status == LotStatus::Open && !withdrawn && (capacity as i32) < current.capacity {
        // Parties the units left cannot take are let go, told why, their holds released.
        let room = Job::ReleaseWithoutRoom {
            lot_id: current.id.clone(),
        };
        jobs::enqueue(&txn, room, now).await?;
    }
    let before = format!("capacity={}", current.capacity);
    let mut am = current.into_active_model();
    if withdrawn {
        // Its "upgrade now" purchases are being refunded: no unit stays sold.
        am.units_sold_now = Set(0);
    }
    am.capacity = Set(capacity as i32);
    am.updated_at = Set(now);
    am.version = Set(am.version.as_ref() + 1);
    let updated = am.update(&txn).await?;
    audit::record(
        &txn,
        by,
        "lot.capacity_changed",
        &updated.id,
        Some(before),
        Some(format!("capacity={capacity}")),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// How far ahead a close moved sooner must stay while bids are active.
const SOONER_CLOSE_NOTICE: chrono::Duration = chrono::Duration::hours(1);

async fn has_active_bids(txn: &impl ConnectionTrait, lot_id: &str) -> Result<bool, DbErr> {
    Ok(bid::Entity::find()
        .filter(bid::Column::LotId.eq(lot_id))
        .filter(bid::Column::Status.eq(BidStatus::Active.as_str()))
        .one(txn)
        .await?
        .is_some())
}

/// The latest close a lot holding cards can move to: the oldest hold still in play must be
/// captured before the card's authorisation lapses. None when no hold binds it.
async fn hold_limit(
    txn: &impl ConnectionTrait,
    lot_id: &str,
    spec: &LotSpec,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    if spec.payment_mode != PaymentMode::Hold {
        return Ok(None);
    }
    // A bid's first hold is no younger than the bid: its placement bounds them all. A charged
    // bid's hold was captured already.
    let oldest = live_bids(lot_id)
        .filter(bid::Column::PaymentRef.is_not_null())
        .filter(bid::Column::Status.ne(BidStatus::Charged.as_str()))
        .order_by_asc(bid::Column::CreatedAt)
        .one(txn)
        .await?;
    Ok(oldest.map(|b| b.created_at + hold_window()))
}

/// What cancelling a lot would undo now: card holds to release and charges to refund.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CancelImpact {
    pub holds: u64,
    pub charges: u64,
}

/// Says what a cancel would do, for the confirmation an operator sees before cancelling.
pub async fn cancel_impact(
    db: &Db,
    operator_id: &str,
    lot_id: &str,
) -> Result<CancelImpact, LotError> {
    let l = get(db, operator_id, lot_id).await?;
    Ok(impact_of(&live_bids(&l.id).all(db).await?))
}

/// The lot's bids a cancel undoes: every one still in play.
fn live_bids(lot_id: &str) -> sea_orm::Select<bid::Entity> {
    bid::Entity::find()
        .filter(bid::Column::LotId.eq(lot_id))
        .filter(bid::Column::Status.is_in(BidStatus::TAKING_PART.map(BidStatus::as_str)))
}

/// Counts as [`unwind_bids`] acts: a charged bid is refunded, any other live bid with a card
/// hold has it released.
fn impact_of(bids: &[bid::Model]) -> CancelImpact {
    let charges = bids
        .iter()
        .filter(|b| b.status == BidStatus::Charged.as_str())
        .count() as u64;
    let holds = bids
        .iter()
        .filter(|b| b.status != BidStatus::Charged.as_str() && b.payment_ref.is_some())
        .count() as u64;
    CancelImpact { holds, charges }
}

/// One line that says what a lot is, for the audit log's before/after.
fn summary(l: &lot::Model) -> String {
    format!(
        "status={} title={:?} capacity={} reserve_minor={} maximum_minor={} currency={} closes_at={} policy={} payment_mode={}",
        l.status,
        l.title,
        l.capacity,
        l.reserve_minor,
        l.maximum_minor,
        l.currency,
        l.closes_at.to_rfc3339(),
        l.award_policy,
        l.payment_mode
    )
}

/// Which lots a list shows by status.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    #[default]
    Any,
    One(LotStatus),
    /// [`LotStatus::IN_PLAY`]: draft, open, closed or awarded.
    InPlay,
}

#[derive(Debug, Default, Clone)]
pub struct LotFilter {
    pub status: StatusFilter,
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
    list_query(operator_id, filter, after)
        .limit(limit)
        .all(db)
        .await
}

/// The query [`list`] runs, for a test to read the plan the store makes of it.
pub fn list_query(
    operator_id: &str,
    filter: &LotFilter,
    after: Option<(DateTime<Utc>, String)>,
) -> Select<lot::Entity> {
    let mut query = lot::Entity::find().filter(lot::Column::OperatorId.eq(operator_id));
    match filter.status {
        StatusFilter::Any => {}
        StatusFilter::One(status) => query = query.filter(lot::Column::Status.eq(status.as_str())),
        StatusFilter::InPlay => query = query.filter(Expr::cust(store_lots::IN_PLAY)),
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
        let columns = (lot::Column::ClosesAt, lot::Column::Id);
        query = query.filter(keyset::after(columns, closes_at, id));
    }
    query
        .order_by_asc(lot::Column::ClosesAt)
        .order_by_asc(lot::Column::Id)
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

/// Takes back every upgrade of the lot: active and standby bids and winners not yet charged
/// lose it and their holds are released; charged winners are refunded. Each is told why.
/// Returns what it undid.
async fn unwind_bids(
    txn: &impl ConnectionTrait,
    lot_id: &str,
    event: BidEventKind,
    reason: OutcomeReason,
    why: &Why,
    now: DateTime<Utc>,
) -> Result<CancelImpact, DbErr> {
    // Locked, as they are: an "upgrade now" request whose capture was answered meanwhile
    // writes its bid (taking only that bid) charged, and that bid must be refunded, not
    // have its captured hold "released". Paths that take the lot too take it first.
    let bids = live_bids(lot_id).lock_exclusive().all(txn).await?;
    let impact = impact_of(&bids);
    let unanswered = store_payments::unanswered_charges(txn, lot_id).await?;
    for b in bids {
        events::record(txn, &b.id, event, None, Some(why.en()), now).await?;
        if b.status != BidStatus::Charged.as_str() {
            let charging = unanswered.contains(&b.id);
            outbox::enqueue_cancelled(txn, &b.id, why, charging, now).await?;
        }
        if b.status == BidStatus::Charged.as_str() {
            jobs::enqueue(txn, Job::refund(&b.id, why.clone()), now).await?;
            continue;
        }
        let held = b.payment_ref.is_some();
        if held {
            jobs::enqueue(
                txn,
                Job::Release {
                    bid_id: b.id.clone(),
                    hold: b.payment_ref.clone().unwrap_or_default(),
                },
                now,
            )
            .await?;
        }
        let status = if held {
            BidStatus::Lost
        } else {
            BidStatus::Released
        };
        award_service::set_outcome(txn, &b, status, None, Some(reason.as_str()), None, now).await?;
    }
    Ok(impact)
}

/// A smaller aircraft or room block after the award: winners beyond the new capacity lose
/// their upgrade, last-ranked first, and are refunded (or their hold released).
async fn cut_awarded(
    txn: &impl ConnectionTrait,
    lot: &lot::Model,
    spec: &LotSpec,
    capacity: u32,
    now: DateTime<Utc>,
) -> Result<(), LotError> {
    let Some(stored) = award::Entity::find_by_id(lot.id.clone()).one(txn).await? else {
        return Ok(());
    };
    let mut record: PlanRecord = serde_json::from_str(&stored.plan)
        .map_err(|e| DbErr::Custom(format!("stored plan unreadable: {e}")))?;
    let available = (capacity + record.chained_units)
        .saturating_sub(spec.entitlement_units)
        .saturating_sub(lot.units_sold_now.max(0) as u32);
    let mut used = 0u32;
    let mut keep = Vec::new();
    let mut cut = Vec::new();
    for w in record.winners.drain(..) {
        // Winners are stored in rank order: the last-ranked lose first.
        if used + u32::from(w.units) <= available {
            used += u32::from(w.units);
            keep.push(w);
        } else {
            cut.push(w);
        }
    }
    // Keep the earliest-ranked that fit; a later small party may still fit after a big one is cut.
    record.winners = keep;
    let why = Why::CapacityCut;
    let unanswered = store_payments::unanswered_charges(txn, &lot.id).await?;
    for w in &cut {
        // Locked, as in `unwind_bids`: a replacement card (which takes only the bid) may be
        // writing it won with a new hold, which must then be released too.
        let Some(b) = bid::Entity::find_by_id(w.id.clone())
            .lock_exclusive()
            .one(txn)
            .await?
        else {
            continue;
        };
        events::record(
            txn,
            &b.id,
            BidEventKind::CapacityChanged,
            None,
            Some(why.en()),
            now,
        )
        .await?;
        record.losers.push(LoserRecord {
            id: w.id.clone(),
            reason: OutcomeReason::CapacityReduced.as_str().into(),
        });
        record.revenue_minor -= w.total_minor;
        if b.status == BidStatus::Charged.as_str() {
            jobs::enqueue(txn, Job::refund(&b.id, why.clone()), now).await?;
        } else {
            if b.payment_ref.is_some() {
                jobs::enqueue(
                    txn,
                    Job::Release {
                        bid_id: b.id.clone(),
                        hold: b.payment_ref.clone().unwrap_or_default(),
                    },
                    now,
                )
                .await?;
            }
            award_service::set_outcome(
                txn,
                &b,
                BidStatus::Lost,
                None,
                Some(OutcomeReason::CapacityReduced.as_str()),
                None,
                now,
            )
            .await?;
            let charging = unanswered.contains(&b.id);
            outbox::enqueue_cancelled(txn, &b.id, &why, charging, now).await?;
        }
    }
    record.revenue = Money::from_minor(record.revenue_minor, spec.currency)
        .map(|m| m.to_string())
        .unwrap_or_default();
    let revenue = record.revenue_minor;
    let mut am = stored.into_active_model();
    am.plan = Set(serde_json::to_string(&record).expect("plans serialise"));
    am.revenue_minor = Set(revenue);
    am.update(txn).await?;
    jobs::enqueue(
        txn,
        Job::Settle {
            lot_id: lot.id.clone(),
        },
        now,
    )
    .await?;
    Ok(())
}
