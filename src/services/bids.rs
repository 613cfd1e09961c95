//! What a traveller does with a bid: see offers, place, change, withdraw, read the timeline.
//!
//! The deadline is the server's and is checked inside the write transaction, after the lot
//! row is locked (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: `FOR SHARE` on the lot, which the
//! close takes `FOR UPDATE`), so a change either commits before the close counts bids or
//! is refused; no request racing the close slips in after it.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::events;
use crate::domain::bid::{BidEventKind, BidStatus};
use crate::domain::lot::{LotSpec, LotStatus};
use crate::domain::validation::FieldErrors;
use crate::ids;
use crate::money::Money;
use crate::store::entities::{bid, bid_event, booking, booking_lot, lot};
use crate::store::{Db, lots as store_lots, write_txn};

#[derive(Debug, thiserror::Error)]
pub enum BidError {
    #[error("no such offer or bid for this booking")]
    NotFound,
    #[error("bidding closed at {closes_at}")]
    Closed { closes_at: DateTime<Utc> },
    #[error("bidding opens at {opens_at}")]
    NotOpenYet { opens_at: DateTime<Utc> },
    #[error("{0}")]
    Unavailable(String),
    #[error("the amount per person must be between {min} and {max} {currency}")]
    OutOfRange {
        min: String,
        max: String,
        currency: String,
    },
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error("this booking already has an active bid on the lot: change it instead")]
    AlreadyBid { bid_id: String },
    #[error("the bid is {status} and can no longer be changed")]
    NotActive { status: BidStatus },
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn corrupt(e: String) -> DbErr {
    DbErr::Custom(format!("stored lot unreadable: {e}"))
}

/// One upgrade on offer to a booking, with the booking's own bid if it has one.
#[derive(Debug, Clone)]
pub struct Offer {
    pub lot: lot::Model,
    pub spec: LotSpec,
    pub status: LotStatus,
    pub bid: Option<bid::Model>,
}

/// The upgrades this booking may bid on. An upgrade that cannot be had (capacity withdrawn,
/// party larger than the cabin) is not shown, unless the traveller already bid on it and
/// needs to see what became of the bid.
pub async fn offers(db: &Db, booking: &booking::Model) -> Result<Vec<Offer>, DbErr> {
    let lot_ids: Vec<String> = booking_lot::Entity::find()
        .filter(booking_lot::Column::BookingId.eq(&booking.id))
        .all(db)
        .await?
        .into_iter()
        .map(|l| l.lot_id)
        .collect();
    let lots = lot::Entity::find()
        .filter(lot::Column::Id.is_in(lot_ids))
        .filter(lot::Column::OperatorId.eq(&booking.operator_id))
        .filter(lot::Column::Status.ne(LotStatus::Draft.as_str()))
        .order_by_asc(lot::Column::ClosesAt)
        .order_by_asc(lot::Column::Id)
        .all(db)
        .await?;
    let bids = bid::Entity::find()
        .filter(bid::Column::BookingId.eq(&booking.id))
        .all(db)
        .await?;
    let mut offers = Vec::new();
    for l in lots {
        let spec = store_lots::spec(&l).map_err(corrupt)?;
        let status = store_lots::status(&l);
        let my_bid = bids.iter().find(|b| b.lot_id == l.id).cloned();
        let can_be_had = status == LotStatus::Open && spec.biddable_units() > 0;
        if can_be_had || my_bid.is_some() {
            offers.push(Offer {
                lot: l,
                spec,
                status,
                bid: my_bid,
            });
        }
    }
    Ok(offers)
}

pub struct NewBid<'a> {
    pub lot_id: &'a str,
    pub amount: &'a str,
    pub payment_method: &'a str,
    pub partial_ok: bool,
    pub preference: Option<u32>,
}

/// Places the booking's bid on a lot (or bids again after withdrawing).
pub async fn place(
    db: &Db,
    booking: &booking::Model,
    new: NewBid<'_>,
) -> Result<bid::Model, BidError> {
    let mut errors = FieldErrors::new();
    if new.payment_method.trim().is_empty() || new.payment_method.len() > 255 {
        errors.add(
            "payment_method",
            "is required: the token of the card to authorise",
        );
    }
    if let Some(p) = new.preference
        && !(1..=9).contains(&p)
    {
        errors.add("preference", "must be between 1 (first choice) and 9");
    }
    errors.into_result().map_err(BidError::Invalid)?;

    let txn = write_txn(db).await?;
    let (lot, spec) = lock_open_lot(&txn, booking, new.lot_id).await?;
    let now = Utc::now();
    check_window(&spec, now)?;
    let units = booking.party_size.max(1) as u32;
    if spec.biddable_units() == 0 {
        return Err(BidError::Unavailable(
            "No upgrade is available on this lot any more.".into(),
        ));
    }
    if units > spec.biddable_units() && !new.partial_ok {
        return Err(BidError::Unavailable(format!(
            "Your party of {units} is larger than the {} upgrades on offer; tick \"a partial upgrade is fine\" to bid anyway.",
            spec.biddable_units()
        )));
    }
    let amount = parse_amount(&spec, new.amount)?;

    let existing = bid::Entity::find()
        .filter(bid::Column::LotId.eq(&lot.id))
        .filter(bid::Column::BookingId.eq(&booking.id))
        .lock_exclusive()
        .one(&txn)
        .await?;
    let placed = match existing {
        Some(b) if b.status == BidStatus::Active.as_str() => {
            return Err(BidError::AlreadyBid { bid_id: b.id });
        }
        Some(b) if b.status == BidStatus::Withdrawn.as_str() => {
            let mut am = b.into_active_model();
            am.amount_minor = Set(amount.minor());
            am.units = Set(units as i32);
            am.partial_ok = Set(new.partial_ok);
            am.tier = Set(booking.loyalty_tier);
            am.preference = Set(new.preference.map(|p| p as i32));
            am.status = Set(BidStatus::Active.as_str().to_owned());
            am.payment_method_ref = Set(Some(new.payment_method.trim().to_owned()));
            am.submitted_at = Set(now);
            am.updated_at = Set(now);
            am.version = Set(am.version.as_ref() + 1);
            am.update(&txn).await?
        }
        Some(b) => {
            let status = BidStatus::parse(&b.status).unwrap_or(BidStatus::Lost);
            return Err(BidError::NotActive { status });
        }
        None => {
            bid::ActiveModel {
                id: Set(ids::new_id("bid")),
                lot_id: Set(lot.id.clone()),
                booking_id: Set(booking.id.clone()),
                amount_minor: Set(amount.minor()),
                currency: Set(spec.currency.code().to_owned()),
                units: Set(units as i32),
                partial_ok: Set(new.partial_ok),
                tier: Set(booking.loyalty_tier),
                preference: Set(new.preference.map(|p| p as i32)),
                status: Set(BidStatus::Active.as_str().to_owned()),
                payment_method_ref: Set(Some(new.payment_method.trim().to_owned())),
                payment_ref: Set(None),
                submitted_at: Set(now),
                created_at: Set(now),
                updated_at: Set(now),
                version: Set(0),
            }
            .insert(&txn)
            .await?
        }
    };
    events::record(
        &txn,
        &placed.id,
        BidEventKind::Placed,
        Some(amount.minor()),
        None,
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(placed)
}

/// Changes the amount per person of an active bid. The ranking time becomes now: a changed
/// offer queues behind equal offers made earlier.
pub async fn change(
    db: &Db,
    booking: &booking::Model,
    bid_id: &str,
    amount: &str,
) -> Result<bid::Model, BidError> {
    let txn = write_txn(db).await?;
    let current = lock_own_bid(&txn, booking, bid_id).await?;
    let (_, spec) = lock_open_lot(&txn, booking, &current.lot_id).await?;
    let now = Utc::now();
    check_window(&spec, now)?;
    ensure_active(&current)?;
    let amount = parse_amount(&spec, amount)?;
    let kind = if amount.minor() >= current.amount_minor {
        BidEventKind::Raised
    } else {
        BidEventKind::Lowered
    };
    let mut am = current.into_active_model();
    am.amount_minor = Set(amount.minor());
    am.submitted_at = Set(now);
    am.updated_at = Set(now);
    am.version = Set(am.version.as_ref() + 1);
    let updated = am.update(&txn).await?;
    events::record(&txn, &updated.id, kind, Some(amount.minor()), None, now).await?;
    txn.commit().await?;
    Ok(updated)
}

pub async fn withdraw(
    db: &Db,
    booking: &booking::Model,
    bid_id: &str,
) -> Result<bid::Model, BidError> {
    let txn = write_txn(db).await?;
    let current = lock_own_bid(&txn, booking, bid_id).await?;
    let (_, spec) = lock_open_lot(&txn, booking, &current.lot_id).await?;
    let now = Utc::now();
    check_window(&spec, now)?;
    ensure_active(&current)?;
    let mut am = current.into_active_model();
    am.status = Set(BidStatus::Withdrawn.as_str().to_owned());
    am.updated_at = Set(now);
    am.version = Set(am.version.as_ref() + 1);
    let updated = am.update(&txn).await?;
    events::record(&txn, &updated.id, BidEventKind::Withdrawn, None, None, now).await?;
    txn.commit().await?;
    Ok(updated)
}

/// The bid, its lot and every event on its timeline, oldest first.
pub async fn timeline(
    db: &Db,
    booking: &booking::Model,
    bid_id: &str,
) -> Result<(bid::Model, lot::Model, Vec<bid_event::Model>), BidError> {
    let b = bid::Entity::find_by_id(bid_id.to_owned())
        .filter(bid::Column::BookingId.eq(&booking.id))
        .one(db)
        .await?
        .ok_or(BidError::NotFound)?;
    let l = lot::Entity::find_by_id(b.lot_id.clone())
        .one(db)
        .await?
        .ok_or(BidError::NotFound)?;
    let events = bid_event::Entity::find()
        .filter(bid_event::Column::BidId.eq(&b.id))
        .order_by_asc(bid_event::Column::Id)
        .all(db)
        .await?;
    Ok((b, l, events))
}

fn check_window(spec: &LotSpec, now: DateTime<Utc>) -> Result<(), BidError> {
    if now >= spec.closes_at {
        return Err(BidError::Closed {
            closes_at: spec.closes_at,
        });
    }
    if now < spec.opens_at {
        return Err(BidError::NotOpenYet {
            opens_at: spec.opens_at,
        });
    }
    Ok(())
}

fn ensure_active(b: &bid::Model) -> Result<(), BidError> {
    match BidStatus::parse(&b.status) {
        Ok(BidStatus::Active) => Ok(()),
        Ok(status) => Err(BidError::NotActive { status }),
        Err(e) => Err(BidError::Db(DbErr::Custom(e))),
    }
}

fn parse_amount(spec: &LotSpec, amount: &str) -> Result<Money, BidError> {
    let money = Money::parse(amount, spec.currency)
        .map_err(|e| BidError::Invalid(FieldErrors::single("amount", e.to_string())))?;
    if money.minor() < spec.reserve.minor() || money.minor() > spec.maximum.minor() {
        return Err(BidError::OutOfRange {
            min: spec.reserve.to_string(),
            max: spec.maximum.to_string(),
            currency: spec.currency.code().to_owned(),
        });
    }
    Ok(money)
}

/// The lot, if this booking may bid on it and it is open; row-locked for the transaction.
async fn lock_open_lot(
    txn: &impl ConnectionTrait,
    booking: &booking::Model,
    lot_id: &str,
) -> Result<(lot::Model, LotSpec), BidError> {
    let eligible = booking_lot::Entity::find_by_id((booking.id.clone(), lot_id.to_owned()))
        .one(txn)
        .await?
        .is_some();
    if !eligible {
        return Err(BidError::NotFound);
    }
    let lot = lot::Entity::find_by_id(lot_id.to_owned())
        .filter(lot::Column::OperatorId.eq(&booking.operator_id))
        .lock_shared()
        .one(txn)
        .await?
        .ok_or(BidError::NotFound)?;
    let spec = store_lots::spec(&lot).map_err(corrupt)?;
    match store_lots::status(&lot) {
        LotStatus::Open => Ok((lot, spec)),
        LotStatus::Draft => Err(BidError::NotFound),
        LotStatus::Cancelled => Err(BidError::Unavailable(
            "The operator cancelled this upgrade.".into(),
        )),
        _ => Err(BidError::Closed {
            closes_at: spec.closes_at,
        }),
    }
}

async fn lock_own_bid(
    txn: &impl ConnectionTrait,
    booking: &booking::Model,
    bid_id: &str,
) -> Result<bid::Model, BidError> {
    bid::Entity::find_by_id(bid_id.to_owned())
        .filter(bid::Column::BookingId.eq(&booking.id))
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(BidError::NotFound)
}
