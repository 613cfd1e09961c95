//! Undoing an "upgrade now" whose payment the bank declined, whether it answered at once
//! (the traveller is still on the page) or later, to a job (they are told by email). Either
//! way nobody pays for an upgrade they do not get, and no hold outlives the purchase.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QuerySelect, Set,
};

use crate::domain::bid::{BidEventKind, BidStatus};
use crate::domain::lot::LotStatus;
use crate::jobs::{self, BidBefore, Job};
use crate::services::events;
use crate::store::entities::{bid, lot};
use crate::store::lots as store_lots;

/// Gives the purchase's units back and puts the bid back as `before` while bidding is open
/// (withdrawn if there was no bid before, or if what it was is unknown: a crash lost it).
/// Once the lot has closed, the bid did not take part and is lost. The purchase's hold is
/// released, and so is the earlier bid's when that bid is not put back. Records the failure
/// on the timeline and returns what the traveller is told.
pub(crate) async fn undo(
    txn: &impl ConnectionTrait,
    bought: bid::Model,
    before: Option<&BidBefore>,
    declined: &str,
    now: DateTime<Utc>,
) -> Result<String, DbErr> {
    let units = bought.award_units.unwrap_or(bought.units);
    let open = match lot::Entity::find_by_id(bought.lot_id.clone())
        .lock_exclusive()
        .one(txn)
        .await?
    {
        Some(l) => {
            let open = store_lots::status(&l) == LotStatus::Open;
            let sold = l.units_sold_now;
            let mut am = l.into_active_model();
            am.units_sold_now = Set((sold - units).max(0));
            am.update(txn).await?;
            open
        }
        None => false,
    };
    let purchase_hold = bought.payment_ref.clone();
    let earlier_hold = before
        .and_then(|b| b.payment_ref.clone())
        .filter(|h| Some(h) != purchase_hold.as_ref());
    let bid_id = bought.id.clone();
    let version = bought.version;
    let mut am = bought.into_active_model();
    let (kept, release_earlier) = match (open, before) {
        (true, Some(b)) => {
            am.status = Set(b.status.clone());
            am.amount_minor = Set(b.amount_minor);
            am.units = Set(b.units);
            am.payment_ref = Set(b.payment_ref.clone());
            am.submitted_at = Set(b.submitted_at);
            let kept = if b.status == BidStatus::Active.as_str() {
                " Your bid stays as it was."
            } else {
                ""
            };
            (kept, false)
        }
        (true, None) => {
            am.status = Set(BidStatus::Withdrawn.as_str().to_owned());
            am.payment_ref = Set(None);
            (" You can still bid until bidding closes.", true)
        }
        (false, _) => {
            // The release job below marks it released once the hold is off the card.
            am.status = Set(BidStatus::Lost.as_str().to_owned());
            am.outcome_reason = Set(Some("payment_failed".to_owned()));
            (
                " Bidding has closed meanwhile, so no bid of yours took part.",
                true,
            )
        }
    };
    am.award_units = Set(None);
    am.award_price_minor = Set(None);
    am.updated_at = Set(now);
    am.version = Set(version + 1);
    am.update(txn).await?;
    let detail = format!("{declined} Nothing was charged.{kept}");
    events::record(
        txn,
        &bid_id,
        BidEventKind::PaymentFailed,
        None,
        Some(detail.clone()),
        now,
    )
    .await?;
    let earlier = earlier_hold.filter(|_| release_earlier);
    for hold in purchase_hold.into_iter().chain(earlier) {
        let release = Job::Release {
            bid_id: bid_id.clone(),
            hold,
        };
        jobs::enqueue(txn, release, now).await?;
    }
    Ok(detail)
}
