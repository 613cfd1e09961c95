//! Undoing an "upgrade now" whose payment the bank declined, whether it answered at once
//! (the traveller is still on the page) or later, to a job (they are told by email). Either
//! way nobody pays for an upgrade they do not get, and no hold outlives the purchase.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QuerySelect, Set,
};

use crate::domain::bid::{BidEventKind, BidStatus};
use crate::domain::lot::LotStatus;
use crate::domain::outcome::OutcomeReason;
use crate::jobs::{self, Job, Purchase};
use crate::notifications::why::{AfterPurchase, Refusal, Why};
use crate::payments::IdempotencyKey;
use crate::services::events;
use crate::store::entities::{bid, lot, payment};
use crate::store::lots as store_lots;

/// Undoes the purchase `bid_id` if it still stands (won, not yet paid): gives its units
/// back and puts the bid back as it was before while bidding is open, or withdraws it when
/// there was none or what it was cannot be had again (its hold released meanwhile, or not
/// known: `purchase` is `None` when the charge that finished it did not carry it).
/// Once the lot has closed, the bid did not take part and is lost. The purchase's hold is
/// released, and so is the earlier bid's unless that bid is put back. Records the failure on
/// the timeline and returns why, for the traveller's message; `None` if the purchase no longer
/// stands (cancelled meanwhile, or undone by another run).
///
/// Takes the lot, then the bid, for update: the order `reserve_now` takes them in.
pub(crate) async fn undo(
    txn: &impl ConnectionTrait,
    bid_id: &str,
    purchase: Option<&Purchase>,
    refusal: Refusal,
    now: DateTime<Utc>,
) -> Result<Option<Why>, DbErr> {
    let Some(lot_id) = bid::Entity::find_by_id(bid_id.to_owned())
        .select_only()
        .column(bid::Column::LotId)
        .into_tuple::<String>()
        .one(txn)
        .await?
    else {
        return Ok(None);
    };
    let Some(l) = lot::Entity::find_by_id(lot_id)
        .lock_exclusive()
        .one(txn)
        .await?
    else {
        return Ok(None);
    };
    let Some(bought) = bid::Entity::find_by_id(bid_id.to_owned())
        .lock_exclusive()
        .one(txn)
        .await?
        .filter(|b| b.status == BidStatus::Won.as_str())
    else {
        return Ok(None);
    };
    let units = bought.award_units.unwrap_or(bought.units);
    let open = store_lots::status(&l) == LotStatus::Open;
    let sold = l.units_sold_now;
    let mut am = l.into_active_model();
    am.units_sold_now = Set((sold - units).max(0));
    am.update(txn).await?;

    let purchase_hold = bought.payment_ref.clone();
    let earlier = earlier_holds(txn, &bought, purchase).await?;
    let before = purchase.and_then(|p| p.before.as_ref());
    // Put back only with the hold it stood on: reconcile may have released that hold while
    // the capture was pending, since the purchase's hold was the bid's then. A bid released
    // for want of units is not put back as lost (its reason is gone): it is withdrawn, and
    // may be placed again.
    let restore = before.filter(|b| {
        open && [BidStatus::Active.as_str(), BidStatus::Withdrawn.as_str()]
            .contains(&b.status.as_str())
            && b.payment_ref.iter().all(|h| earlier.contains(h))
    });
    let version = bought.version;
    let mut am = bought.into_active_model();
    let (then, released) = match restore {
        Some(b) => {
            am.status = Set(b.status.clone());
            am.amount_minor = Set(b.amount_minor);
            am.units = Set(b.units);
            am.payment_ref = Set(b.payment_ref.clone());
            am.submitted_at = Set(b.submitted_at);
            let then = if b.status == BidStatus::Active.as_str() {
                AfterPurchase::BidStands
            } else {
                AfterPurchase::BidAgain
            };
            (then, Vec::new())
        }
        None if open => {
            am.status = Set(BidStatus::Withdrawn.as_str().to_owned());
            am.payment_ref = Set(None);
            let then = match purchase.map(|p| p.before.as_ref()) {
                Some(Some(b)) if b.status != BidStatus::Active.as_str() => AfterPurchase::BidAgain,
                Some(None) => AfterPurchase::BidAgain,
                None if earlier.is_empty() => AfterPurchase::AnyEarlierWithdrawn,
                _ => AfterPurchase::EarlierWithdrawn,
            };
            (then, earlier)
        }
        None => {
            // The release job below marks it released once the hold is off the card.
            am.status = Set(BidStatus::Lost.as_str().to_owned());
            am.outcome_reason = Set(Some(OutcomeReason::UpgradeNowDeclined.as_str().to_owned()));
            (AfterPurchase::BiddingClosed, earlier)
        }
    };
    am.award_units = Set(None);
    am.award_price_minor = Set(None);
    am.updated_at = Set(now);
    am.version = Set(version + 1);
    am.update(txn).await?;
    let why = Why::PurchaseDeclined { refusal, then };
    events::record(
        txn,
        bid_id,
        BidEventKind::PaymentFailed,
        None,
        Some(why.en()),
        now,
    )
    .await?;
    release(txn, bid_id, purchase_hold.into_iter().chain(released), now).await?;
    Ok(Some(why))
}

/// Releases the hold of the bid the purchase replaced: once the purchase is paid, or once it
/// no longer stands (cancelled while the bank answered).
pub(crate) async fn release_earlier(
    txn: &impl ConnectionTrait,
    bought: &bid::Model,
    purchase: Option<&Purchase>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let earlier = earlier_holds(txn, bought, purchase).await?;
    release(txn, &bought.id, earlier, now).await
}

/// The holds of the bid before the purchase still on the card, as recorded: that bid's, or
/// when it is not known (the capture finished by a charge that does not carry it, such as
/// reconcile's), every hold recorded on the bid and not released, but the purchase's.
async fn earlier_holds(
    txn: &impl ConnectionTrait,
    bought: &bid::Model,
    purchase: Option<&Purchase>,
) -> Result<Vec<String>, DbErr> {
    let rows = payment::Entity::find()
        .filter(payment::Column::BidId.eq(&bought.id))
        .filter(payment::Column::Kind.is_in(["hold", "release"]))
        .all(txn)
        .await?;
    // A release row in any state counts: one still pending is a release on its way (its
    // key names the hold; the reference is written only once the bank has answered).
    let released: HashSet<&str> = rows
        .iter()
        .filter_map(|p| match p.kind.as_str() {
            "release" => IdempotencyKey::released_hold(&p.idempotency_key),
            "hold" if p.status == "released" => p.provider_ref.as_deref(),
            _ => None,
        })
        .collect();
    let held = |h: &str| Some(h) != bought.payment_ref.as_deref() && !released.contains(h);
    let mut holds: Vec<String> = match purchase {
        Some(p) => p
            .before
            .iter()
            .filter_map(|b| b.payment_ref.clone())
            .filter(|h| held(h))
            .collect(),
        None => rows
            .iter()
            .filter(|p| p.kind == "hold" && p.status == "succeeded")
            .filter_map(|p| p.provider_ref.clone())
            .filter(|h| held(h))
            .collect(),
    };
    holds.sort();
    holds.dedup();
    Ok(holds)
}

async fn release(
    txn: &impl ConnectionTrait,
    bid_id: &str,
    holds: impl IntoIterator<Item = String>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    for hold in holds {
        let release = Job::Release {
            bid_id: bid_id.to_owned(),
            hold,
        };
        jobs::enqueue(txn, release, now).await?;
    }
    Ok(())
}
