//! From award to money: charge winners, release holds, move the standby list up after a
//! failed payment's grace period, refund, and settle the lot when every payment is final.
//!
//! Each step records a `payments` row under the idempotency key it sends the provider
//! *before* calling it, so a crash between the call and the bookkeeping is repaired by
//! running the job again: same key, same answer, no second charge.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use futures_util::StreamExt;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::award::{self as award_service, AwardError, PlanRecord, record};
use super::bids::bought_now;
use super::events;
use crate::domain::award::AwardStatus;
use crate::domain::bid::{BidEventKind, BidStatus};
use crate::domain::lot::{LotSpec, LotStatus, PaymentMode};
use crate::domain::outcome::OutcomeReason;
use crate::jobs::{self, Job, Purchase, UnrecordedBid};
use crate::matching;
use crate::money::Money;
use crate::notifications::why::{Refusal, Why};
use crate::notifications::{Topic, outbox};
use crate::payments::{
    BID_METADATA, ChargeOutcome, ChargeRequest, IdempotencyKey, LOT_METADATA, PaymentError,
    PaymentGateway, PaymentRef, PaymentStatus, PaymentStep, SavedCard,
};
use crate::store::entities::{award, bid, lot, payment};
use crate::store::payments::{self as store_payments, NewPayment};
use crate::store::{Db, lots as store_lots, write_txn};

#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    /// Worth retrying later (provider down, database busy).
    #[error("payment provider: {0}")]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Award(#[from] AwardError),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error("stored data unreadable: {0}")]
    Corrupt(String),
}

/// What a job found and did, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Done,
    NothingToDo,
}

fn money(minor: i64, spec: &LotSpec) -> String {
    Money::from_minor(minor, spec.currency)
        .map(|m| format!("{m} {}", spec.currency))
        .unwrap_or_default()
}

async fn load(
    db: &impl ConnectionTrait,
    bid_id: &str,
) -> Result<Option<(bid::Model, lot::Model, LotSpec)>, SettleError> {
    let Some(b) = bid::Entity::find_by_id(bid_id.to_owned()).one(db).await? else {
        return Ok(None);
    };
    let l = lot::Entity::find_by_id(b.lot_id.clone())
        .one(db)
        .await?
        .ok_or_else(|| SettleError::Corrupt(format!("bid {} has no lot", b.id)))?;
    let spec = store_lots::spec(&l).map_err(SettleError::Corrupt)?;
    Ok(Some((b, l, spec)))
}

/// Records (or finds, on a re-run) the payment row for one provider call.
async fn payment_row(
    db: &impl ConnectionTrait,
    b: &bid::Model,
    kind: &str,
    amount_minor: i64,
    key: &IdempotencyKey,
    attempt: u32,
    provider: &str,
) -> Result<payment::Model, DbErr> {
    if let Some(existing) = payment::Entity::find()
        .filter(payment::Column::IdempotencyKey.eq(key.as_str()))
        .one(db)
        .await?
    {
        return Ok(existing);
    }
    store_payments::insert(
        db,
        NewPayment {
            bid_id: &b.id,
            kind,
            amount_minor,
            currency: &b.currency,
            status: "pending",
            provider,
            provider_ref: None,
            idempotency_key: key.as_str().to_owned(),
            attempt,
        },
    )
    .await
}

async fn finish_payment(
    db: &impl ConnectionTrait,
    row: payment::Model,
    status: &str,
    provider_ref: Option<String>,
    error: Option<String>,
) -> Result<(), DbErr> {
    store_payments::finish(db, row, status, provider_ref, error).await
}

fn metadata(b: &bid::Model) -> BTreeMap<String, String> {
    BTreeMap::from([
        (BID_METADATA.to_owned(), b.id.clone()),
        (LOT_METADATA.to_owned(), b.lot_id.clone()),
    ])
}

/// Takes a winner's money: exactly the total the award says, never more than the bid. Also
/// finishes an "upgrade now" whose capture was left unanswered: the one `purchase` names when
/// a job carries it, else (reconcile's repair) whichever is pending.
pub async fn charge(
    db: &Db,
    gateway: &dyn PaymentGateway,
    bid_id: &str,
    purchase: Option<&Purchase>,
) -> Result<Step, SettleError> {
    let Some((b, l, spec)) = load(db, bid_id).await? else {
        return Ok(Step::NothingToDo);
    };
    // A charge already asked for and left unanswered (a crash, an unclear answer) is finished
    // under its own key, so the provider does it at most once.
    let pending = payment::Entity::find()
        .filter(payment::Column::BidId.eq(&b.id))
        .filter(payment::Column::Kind.eq("charge"))
        .filter(payment::Column::Status.eq("pending"))
        .one(db)
        .await?;
    let bought_now = pending
        .as_ref()
        .filter(|p| store_payments::is_upgrade_now_key(&p.idempotency_key));
    if let Some(job) = purchase
        && bought_now.is_none_or(|p| p.idempotency_key != job.key)
    {
        // That purchase was finished by other means; a later one is its own job's.
        return Ok(Step::NothingToDo);
    }
    let upgrade_now = bought_now.is_some();
    let cancelled = store_lots::status(&l) == LotStatus::Cancelled;
    if b.status != BidStatus::Won.as_str() || cancelled {
        // No longer an upgrade to pay for: only a charge already asked for is finished, since
        // the bank may have taken the money.
        let Some(row) = pending.clone() else {
            return Ok(Step::NothingToDo);
        };
        match taking(&b, &row) {
            Taking::Hold(hold) => {
                if upgrade_now && hold.is_none() {
                    return Err(SettleError::Corrupt(format!(
                        "purchase of bid {} names no hold",
                        b.id
                    )));
                }
                return stood_down(db, gateway, &b, row, hold, purchase).await;
            }
            // Nothing to ask about but the charge itself: it is asked again under its key
            // below (the bank's first answer, or a charge now), and what it took goes back.
            Taking::SavedCard => {}
        }
    }
    let units = i64::from(b.award_units.unwrap_or(b.units));
    let price = b.award_price_minor.unwrap_or(b.amount_minor);
    let amount = price * units;
    // The core never prices above the bid; this is the last line of defence for that promise.
    debug_assert!(price <= b.amount_minor && units <= i64::from(b.units));
    if price > b.amount_minor || units > i64::from(b.units) {
        return Err(SettleError::Corrupt(format!(
            "bid {} would be charged above its offer",
            b.id
        )));
    }
    let (key, attempt) = match &pending {
        Some(p) => (
            IdempotencyKey::parse(&p.idempotency_key)?,
            p.attempt.max(1) as u32,
        ),
        None => {
            let failed_before = payment::Entity::find()
                .filter(payment::Column::BidId.eq(&b.id))
                .filter(payment::Column::Kind.eq("charge"))
                .filter(payment::Column::Status.eq("failed"))
                .count(db)
                .await? as u32;
            let step = if b.payment_ref.is_some() {
                PaymentStep::Capture
            } else {
                PaymentStep::Charge
            };
            (
                IdempotencyKey::derive(&b.id, step, failed_before + 1),
                failed_before + 1,
            )
        }
    };
    let row = match pending {
        Some(p) => p,
        None => {
            // Written only while the upgrade still stands, under the lot's lock that a cancel
            // or a cut takes too: either that sees this row (and tells the traveller the money
            // may be taken), or it came first and the bank is not asked.
            let txn = write_txn(db).await?;
            if !upgrade_stands(&txn, &b.id, &l.id).await? {
                return Ok(Step::NothingToDo);
            }
            let provider = gateway.provider();
            let row = payment_row(&txn, &b, "charge", amount, &key, attempt, provider).await?;
            txn.commit().await?;
            row
        }
    };
    // Asked for what the row recorded before the bank was first asked (the same key with
    // another amount is refused, and a bid that no longer stands has lost its award price).
    // A purchase's row names its hold; an award's capture is of the bid's hold.
    let amount = row.amount_minor;
    let hold = if upgrade_now {
        Some(row.provider_ref.clone().ok_or_else(|| {
            SettleError::Corrupt(format!("purchase of bid {} names no hold", b.id))
        })?)
    } else {
        b.payment_ref.clone()
    };

    // A bid secured by a hold is captured (also an "upgrade now" on a charge-on-award lot);
    // one secured by a saved card is charged.
    let mode = if hold.is_some() {
        PaymentMode::Hold
    } else {
        PaymentMode::ChargeOnAward
    };
    let outcome: Result<String, Refusal> = match mode {
        PaymentMode::Hold => {
            let Some(hold) = hold else {
                return Err(SettleError::Corrupt(format!(
                    "won bid {} has no hold to capture",
                    b.id
                )));
            };
            match gateway.capture(&PaymentRef::new(hold), amount, &key).await {
                Ok(c) => Ok(c.reference.to_string()),
                Err(PaymentError::Declined(d)) => Err(Refusal::Declined { reason: d.reason }),
                Err(PaymentError::Invalid(words)) => Err(Refusal::Unusable { words }),
                Err(e) => return Err(e.into()),
            }
        }
        PaymentMode::ChargeOnAward => {
            let card: SavedCard = b
                .saved_card
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok())
                .ok_or_else(|| {
                    SettleError::Corrupt(format!("won bid {} has no saved card", b.id))
                })?;
            let request = ChargeRequest {
                idempotency_key: key.clone(),
                amount_minor: amount,
                currency: spec.currency,
                card,
                description: format!(
                    "Upgrade {} {} {}",
                    spec.resource, spec.service_date, spec.to_class
                ),
                metadata: metadata(&b),
            };
            match gateway.charge_saved_card(request).await? {
                ChargeOutcome::Charged(c) => Ok(c.reference.to_string()),
                ChargeOutcome::Declined(d) => Err(Refusal::Declined { reason: d.reason }),
                ChargeOutcome::RequiresAction(_) => Err(Refusal::ConfirmationAsked),
            }
        }
    };

    let now = Utc::now();
    let txn = write_txn(db).await?;
    // Re-read under the locks: the lot may have been cancelled while the provider answered.
    // The lot first, then the bid: the order a cancel, a cut, the award and a reassignment
    // take them in (the other way round, a cancel meeting this write was a deadlock). An
    // "upgrade now" may be undone, which gives its units back, so its lot is taken for update.
    let lot_now = lot::Entity::find_by_id(l.id.clone());
    let lot_now = if upgrade_now {
        lot_now.lock_exclusive()
    } else {
        lot_now.lock_shared()
    }
    .one(&txn)
    .await?
    .unwrap_or(l.clone());
    let current = bid::Entity::find_by_id(b.id.clone())
        .lock_exclusive()
        .one(&txn)
        .await?
        .unwrap_or(b.clone());
    let still_won = current.status == BidStatus::Won.as_str()
        && store_lots::status(&lot_now) != LotStatus::Cancelled;
    // Another run of this charge (a second worker, a release handing the capture over) may
    // have recorded the bank's answer meanwhile: it is recorded, and acted on, once.
    let Some(row) = locked_if(&txn, row.id, "pending").await? else {
        return Ok(Step::NothingToDo);
    };
    match outcome {
        Ok(reference) if !still_won => {
            // Cancelled (or cut) while the bank answered: the money goes straight back.
            finish_payment(&txn, row, "succeeded", Some(reference), None).await?;
            jobs::enqueue(&txn, Job::refund(&b.id, no_longer_stands(&current)), now).await?;
            if upgrade_now {
                bought_now::release_earlier(&txn, &current, purchase, now).await?;
            }
        }
        Err(refusal) if !still_won => {
            finish_payment(&txn, row, "failed", None, Some(refusal.en())).await?;
            if upgrade_now {
                bought_now::release_earlier(&txn, &current, purchase, now).await?;
            }
        }
        Ok(reference) => {
            finish_payment(&txn, row, "succeeded", Some(reference.clone()), None).await?;
            if upgrade_now {
                // Paid: the bid it replaced needs its hold no more.
                bought_now::release_earlier(&txn, &current, purchase, now).await?;
            }
            let mut am = current.into_active_model();
            am.status = Set(BidStatus::Charged.as_str().to_owned());
            am.payment_ref = Set(Some(reference));
            am.updated_at = Set(now);
            am.update(&txn).await?;
            let detail = format!(
                "Your card was charged {}. Enjoy your upgrade!",
                money(amount, &spec)
            );
            outbox::enqueue(&txn, &b.id, Topic::UpgradeConfirmed, None, now).await?;
            events::record(
                &txn,
                &b.id,
                BidEventKind::Charged,
                Some(price),
                Some(detail),
                now,
            )
            .await?;
            if upgrade_now {
                // Paid: bids whose party the units left cannot take are let go.
                let room = Job::ReleaseWithoutRoom {
                    lot_id: l.id.clone(),
                };
                jobs::enqueue(&txn, room, now).await?;
            }
            jobs::enqueue(
                &txn,
                Job::Settle {
                    lot_id: l.id.clone(),
                },
                now,
            )
            .await?;
        }
        Err(refusal) if upgrade_now => {
            // Not a winner waiting for another card: a purchase the bank refused is undone.
            finish_payment(&txn, row, "failed", None, Some(refusal.en())).await?;
            if let Some(why) = bought_now::undo(&txn, &b.id, purchase, refusal, now).await? {
                outbox::enqueue(&txn, &b.id, Topic::PaymentFailed, Some(&why), now).await?;
            }
            jobs::enqueue(
                &txn,
                Job::Settle {
                    lot_id: l.id.clone(),
                },
                now,
            )
            .await?;
        }
        Err(refusal) => {
            finish_payment(&txn, row, "failed", None, Some(refusal.en())).await?;
            let mut am = current.into_active_model();
            am.status = Set(BidStatus::PaymentFailed.as_str().to_owned());
            am.updated_at = Set(now);
            am.update(&txn).await?;
            let grace = Duration::seconds(i64::from(spec.payment_grace_seconds));
            let why = Why::PaymentDeclined {
                refusal,
                kept_until: (grace.num_seconds() > 0).then(|| now + grace),
            };
            outbox::enqueue(&txn, &b.id, Topic::PaymentFailed, Some(&why), now).await?;
            events::record(
                &txn,
                &b.id,
                BidEventKind::PaymentFailed,
                Some(price),
                Some(why.en_in(spec.time_zone)),
                now,
            )
            .await?;
            jobs::enqueue(
                &txn,
                Job::Reassign {
                    bid_id: b.id.clone(),
                    attempt,
                },
                now + grace,
            )
            .await?;
        }
    }
    txn.commit().await?;
    Ok(Step::Done)
}

/// What an unanswered charge was taking the money from.
enum Taking {
    /// A hold, captured: a purchase's names it, an award's is the bid's. `None` when the bid
    /// no longer names it: the bid's hold is cleared only once the bank has released it (and
    /// nothing changes the hold of a bid while its capture is pending), so the capture cannot
    /// have taken anything.
    Hold(Option<String>),
    /// A saved card, charged with no hold before.
    SavedCard,
}

fn taking(b: &bid::Model, row: &payment::Model) -> Taking {
    if store_payments::is_upgrade_now_key(&row.idempotency_key) {
        return Taking::Hold(row.provider_ref.clone());
    }
    match IdempotencyKey::step_of(&row.idempotency_key) {
        Some(PaymentStep::Charge) => Taking::SavedCard,
        _ => Taking::Hold(b.payment_ref.clone()),
    }
}

/// Why the money of an upgrade that no longer stands goes back, in the traveller's words
/// (the lot cancelled, fewer upgrades than planned, ...).
fn no_longer_stands(b: &bid::Model) -> Why {
    Why::Outcome {
        reason: b
            .outcome_reason
            .clone()
            .unwrap_or_else(|| OutcomeReason::LotCancelled.as_str().to_owned()),
        party: b.units,
    }
}

/// Finishes a capture left unanswered whose upgrade no longer stands (its lot cancelled or
/// cut meanwhile): the bank is asked what became of the hold, not to capture it. Money taken
/// by the lost capture goes back; a hold still there is released at once. For an "upgrade
/// now", the hold of the bid the purchase replaced is released too.
async fn stood_down(
    db: &Db,
    gateway: &dyn PaymentGateway,
    b: &bid::Model,
    row: payment::Model,
    hold: Option<String>,
    purchase: Option<&Purchase>,
) -> Result<Step, SettleError> {
    let taken = match &hold {
        None => false,
        Some(hold) => match status_of(gateway, hold).await? {
            PaymentStatus::Succeeded { .. } => true,
            PaymentStatus::Authorized { .. } => {
                // Released here, not by a later job: the lost capture may still land, and the
                // bank alone says which came first. Same key as every release of this hold.
                let key = IdempotencyKey::release_of(hold)?;
                match gateway.release(&PaymentRef::new(hold.clone()), &key).await {
                    Ok(()) => false,
                    Err(e) => match status_of(gateway, hold).await? {
                        PaymentStatus::Succeeded { .. } => true,
                        _ => return Err(e.into()),
                    },
                }
            }
            PaymentStatus::Canceled | PaymentStatus::Failed { .. } => false,
            PaymentStatus::Processing | PaymentStatus::RequiresAction { .. } => {
                return Err(PaymentError::Transient(format!("{hold} is not settled yet")).into());
            }
        },
    };
    let upgrade_now = store_payments::is_upgrade_now_key(&row.idempotency_key);
    let now = Utc::now();
    let txn = write_txn(db).await?;
    // Only if still pending: another run of this charge may have recorded the answer.
    if let Some(row) = locked_if(&txn, row.id, "pending").await? {
        if taken {
            finish_payment(&txn, row, "succeeded", hold, None).await?;
            jobs::enqueue(&txn, Job::refund(&b.id, no_longer_stands(b)), now).await?;
        } else {
            let why = if upgrade_now {
                "The purchase was cancelled before it was paid."
            } else {
                "The upgrade was cancelled before it was paid."
            };
            finish_payment(&txn, row, "failed", None, Some(why.to_owned())).await?;
            if let Some(hold) = hold {
                // Records the release on the bid (the same key replays the bank's answer).
                let release = Job::Release {
                    bid_id: b.id.clone(),
                    hold,
                };
                jobs::enqueue(&txn, release, now).await?;
            }
        }
    }
    if upgrade_now {
        bought_now::release_earlier(&txn, b, purchase, now).await?;
    }
    txn.commit().await?;
    Ok(Step::Done)
}

/// Whether the bid still has an upgrade to pay for: won, on a lot not cancelled, read under
/// the lot's shared lock (a cancel or a capacity cut takes it for update).
async fn upgrade_stands(
    txn: &impl ConnectionTrait,
    bid_id: &str,
    lot_id: &str,
) -> Result<bool, DbErr> {
    let Some(l) = lot::Entity::find_by_id(lot_id.to_owned())
        .lock_shared()
        .one(txn)
        .await?
    else {
        return Ok(false);
    };
    let b = bid::Entity::find_by_id(bid_id.to_owned()).one(txn).await?;
    Ok(store_lots::status(&l) != LotStatus::Cancelled
        && b.is_some_and(|b| b.status == BidStatus::Won.as_str()))
}

/// The payment row, locked, if it is still in `status`.
async fn locked_if(
    txn: &impl ConnectionTrait,
    id: String,
    status: &str,
) -> Result<Option<payment::Model>, DbErr> {
    Ok(payment::Entity::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await?
        .filter(|r| r.status == status))
}

async fn status_of(gateway: &dyn PaymentGateway, hold: &str) -> Result<PaymentStatus, SettleError> {
    Ok(gateway
        .payment_status(&PaymentRef::new(hold.to_owned()))
        .await?
        .status)
}

/// Releases one hold of a bid; the bid keeps its outcome, the traveller sees the release.
pub async fn release(
    db: &Db,
    gateway: &dyn PaymentGateway,
    bid_id: &str,
    hold: &str,
) -> Result<Step, SettleError> {
    let Some((b, l, _)) = load(db, bid_id).await? else {
        return Ok(Step::NothingToDo);
    };
    if hold.is_empty() {
        return Ok(Step::NothingToDo);
    }
    let still_needed = b.payment_ref.as_deref() == Some(hold)
        && [BidStatus::Active, BidStatus::Won, BidStatus::Charged]
            .iter()
            .any(|s| s.as_str() == b.status);
    if still_needed {
        // Re-bid or promoted since: that hold secures a live bid now.
        return Ok(Step::NothingToDo);
    }
    let stands =
        b.status == BidStatus::Won.as_str() && store_lots::status(&l) != LotStatus::Cancelled;
    if !stands && capture_unanswered(db, &b, hold).await? {
        // The charge finds out what became of that capture: it releases the hold, or gives
        // back what the capture took. A release alone would be refused for the latter.
        return charge(db, gateway, bid_id, None).await;
    }
    let key = IdempotencyKey::release_of(hold)?;
    let provider = gateway.provider();
    let row = payment_row(db, &b, "release", 0, &key, 1, provider).await?;
    if row.status == "succeeded" {
        return Ok(Step::NothingToDo);
    }
    if let Err(e) = gateway
        .release(&PaymentRef::new(hold.to_owned()), &key)
        .await
    {
        // Captured, and recorded so (a capture whose answer is lost is the charge's, above;
        // one recorded nowhere keeps this job failing, so that someone looks): nothing is
        // held any more, and asking again would be refused every time.
        if matches!(e, PaymentError::Invalid(_))
            && capture_recorded(db, &b.id, hold).await?
            && matches!(
                status_of(gateway, hold).await?,
                PaymentStatus::Succeeded { .. }
            )
        {
            tracing::warn!(bid = %b.id, hold, "not released: the hold was captured");
            let why = "The hold had been captured before it could be released.".to_owned();
            finish_payment(db, row, "failed", None, Some(why)).await?;
            return Ok(Step::NothingToDo);
        }
        return Err(e.into());
    }
    let now = Utc::now();
    let txn = write_txn(db).await?;
    // Another run of this release may have recorded it meanwhile: told once.
    let Some(row) = locked_if(&txn, row.id, "pending").await? else {
        return Ok(Step::NothingToDo);
    };
    finish_payment(&txn, row, "succeeded", Some(hold.to_owned()), None).await?;
    // Locked: a bid placed again meanwhile (active, on a new hold) must not be written back
    // from an older read as released with no hold, its new hold left on the card.
    let current = bid::Entity::find_by_id(b.id.clone())
        .lock_exclusive()
        .one(&txn)
        .await?
        .unwrap_or(b.clone());
    let holds_another = current.payment_ref.as_deref().is_some_and(|h| h != hold);
    if current.payment_ref.as_deref() == Some(hold) {
        let mut am = current.clone().into_active_model();
        am.payment_ref = Set(None);
        if current.status == BidStatus::Lost.as_str() {
            am.status = Set(BidStatus::Released.as_str().to_owned());
        }
        am.updated_at = Set(now);
        am.update(&txn).await?;
    }
    let detail = if holds_another {
        // Placed again or raised since, on another hold: this one is the earlier.
        EARLIER_HOLD_RELEASED
    } else {
        "The hold on your card is released; nothing was charged. Depending on your bank it can take a few days to disappear from your statement."
    };
    events::record(
        &txn,
        &b.id,
        BidEventKind::HoldReleased,
        None,
        Some(detail.to_owned()),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(Step::Done)
}

/// The timeline's words for a hold released while the bid holds a newer one.
pub const EARLIER_HOLD_RELEASED: &str = "An earlier hold on your card is released; nothing was charged for it. Depending on your bank it can take a few days to disappear from your statement.";

/// Whether a capture of `hold` was asked for on the bid and not answered.
async fn capture_unanswered(db: &Db, b: &bid::Model, hold: &str) -> Result<bool, DbErr> {
    let pending = payment::Entity::find()
        .filter(payment::Column::BidId.eq(&b.id))
        .filter(payment::Column::Kind.eq("charge"))
        .filter(payment::Column::Status.eq("pending"))
        .all(db)
        .await?;
    Ok(pending
        .iter()
        .any(|row| matches!(taking(b, row), Taking::Hold(Some(h)) if h == hold)))
}

/// Whether the bid's money taken on `hold` is recorded (a succeeded charge naming it).
async fn capture_recorded(db: &Db, bid_id: &str, hold: &str) -> Result<bool, DbErr> {
    Ok(payment::Entity::find()
        .filter(payment::Column::BidId.eq(bid_id))
        .filter(payment::Column::Kind.eq("charge"))
        .filter(payment::Column::Status.eq("succeeded"))
        .filter(payment::Column::ProviderRef.eq(hold))
        .one(db)
        .await?
        .is_some())
}

/// Releases a hold that no bid records: a crash came between a new bid's card call and its
/// write, so there is no bid or timeline to write on (reconcile finds it). If a record names
/// the hold by now, its bid's own jobs deal with it. Same key as every release of this hold.
/// The traveller named by `tell` is told the offer was lost and its hold released.
pub async fn release_unrecorded(
    db: &Db,
    gateway: &dyn PaymentGateway,
    hold: &str,
    tell: Option<&UnrecordedBid>,
) -> Result<Step, SettleError> {
    let on_a_bid = bid::Entity::find()
        .filter(bid::Column::PaymentRef.eq(hold))
        .one(db)
        .await?
        .is_some();
    let in_payments = payment::Entity::find()
        .filter(payment::Column::ProviderRef.eq(hold))
        .one(db)
        .await?
        .is_some();
    if hold.is_empty() || on_a_bid || in_payments {
        return Ok(Step::NothingToDo);
    }
    let key = IdempotencyKey::release_of(hold)?;
    gateway
        .release(&PaymentRef::new(hold.to_owned()), &key)
        .await?;
    tracing::info!(hold, "hold that no bid recorded released");
    // Released first, told after: a run that stops in between releases again (the same
    // key) and then tells; a run after the telling finds the message and sends no other.
    if let Some(bid) = tell {
        super::lost_offers::tell(db, hold, bid, Utc::now()).await?;
    }
    Ok(Step::Done)
}

/// Releases the holds of a lot's losing bids: the bank calls a few at a time, the
/// bookkeeping one transaction per batch. Each hold uses the same key as a single release,
/// so a batch re-run after a crash releases nothing twice.
pub async fn release_losers(
    db: &Db,
    gateway: &dyn PaymentGateway,
    lot_id: &str,
) -> Result<Step, SettleError> {
    const BATCH: u64 = 200;
    let mut after = String::new();
    loop {
        let batch = bid::Entity::find()
            .filter(bid::Column::LotId.eq(lot_id))
            .filter(bid::Column::Status.eq(BidStatus::Lost.as_str()))
            .filter(bid::Column::PaymentRef.is_not_null())
            .filter(bid::Column::Id.gt(after.clone()))
            .order_by_asc(bid::Column::Id)
            .limit(BATCH)
            .all(db)
            .await?;
        let Some(last) = batch.last() else {
            return Ok(Step::Done);
        };
        after = last.id.clone();
        let released: Vec<(bid::Model, String)> = futures_util::stream::iter(batch)
            .map(|b| async move {
                let hold = b.payment_ref.clone().unwrap_or_default();
                let key = IdempotencyKey::release_of(&hold).ok()?;
                match gateway.release(&PaymentRef::new(hold.clone()), &key).await {
                    Ok(()) => Some((b, hold)),
                    Err(e) => {
                        // Left with its hold: reconcile (or the next run of this job) retries it.
                        tracing::warn!(bid = %b.id, error = %e, "hold not released");
                        None
                    }
                }
            })
            .buffer_unordered(8)
            .filter_map(|r| async move { r })
            .collect()
            .await;
        let now = Utc::now();
        let txn = write_txn(db).await?;
        let detail = "The hold on your card is released; nothing was charged. Depending on your bank it can take a few days to disappear from your statement.";
        for (b, hold) in released {
            let key = IdempotencyKey::release_of(&hold)?;
            let provider = gateway.provider();
            let row = payment_row(&txn, &b, "release", 0, &key, 1, provider).await?;
            // Another release of this hold may have recorded it meanwhile: told once.
            let Some(row) = locked_if(&txn, row.id, "pending").await? else {
                continue;
            };
            finish_payment(&txn, row, "succeeded", Some(hold.clone()), None).await?;
            let current = bid::Entity::find_by_id(b.id.clone())
                .one(&txn)
                .await?
                .unwrap_or(b.clone());
            if current.payment_ref.as_deref() == Some(hold.as_str()) {
                let mut am = current.clone().into_active_model();
                am.payment_ref = Set(None);
                if current.status == BidStatus::Lost.as_str() {
                    am.status = Set(BidStatus::Released.as_str().to_owned());
                }
                am.updated_at = Set(now);
                am.update(&txn).await?;
            }
            events::record(
                &txn,
                &b.id,
                BidEventKind::HoldReleased,
                None,
                Some(detail.to_owned()),
                now,
            )
            .await?;
        }
        txn.commit().await?;
    }
}

/// After the grace period: a winner whose payment still fails loses the upgrade, which goes
/// to the first standby bids that fit.
pub async fn reassign(db: &Db, bid_id: &str, attempt: u32) -> Result<Step, SettleError> {
    let txn = write_txn(db).await?;
    let Some(lot_id) = bid::Entity::find_by_id(bid_id.to_owned())
        .select_only()
        .column(bid::Column::LotId)
        .into_tuple::<String>()
        .one(&txn)
        .await?
    else {
        return Ok(Step::NothingToDo);
    };
    // The lot, then the bid: the order a charge and a cancel take them in.
    lot::Entity::find_by_id(lot_id)
        .lock_exclusive()
        .one(&txn)
        .await?;
    let Some(b) = bid::Entity::find_by_id(bid_id.to_owned())
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Ok(Step::NothingToDo);
    };
    let failed_charges = payment::Entity::find()
        .filter(payment::Column::BidId.eq(&b.id))
        .filter(payment::Column::Kind.eq("charge"))
        .filter(payment::Column::Status.eq("failed"))
        .count(&txn)
        .await? as u32;
    // Fixed meanwhile (charged, or a new card is being tried: a later attempt owns it now).
    if b.status != BidStatus::PaymentFailed.as_str() || failed_charges != attempt {
        return Ok(Step::NothingToDo);
    }
    let why = Why::outcome(OutcomeReason::PaymentFailed, b.units);
    drop_winner(&txn, &b, OutcomeReason::PaymentFailed, &why, true).await?;
    txn.commit().await?;
    Ok(Step::Done)
}

/// Takes a winner out of the award (payment failed, or rejected by the operator in review):
/// its units go to the first standby bids that fit, charged at once when `charge_promoted`.
pub async fn drop_winner(
    txn: &impl ConnectionTrait,
    b: &bid::Model,
    reason: OutcomeReason,
    why: &Why,
    charge_promoted: bool,
) -> Result<(), SettleError> {
    let l = lot::Entity::find_by_id(b.lot_id.clone())
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(DbErr::RecordNotFound(b.lot_id.clone()))?;
    if store_lots::status(&l) != LotStatus::Awarded {
        // Cancelled or settled meanwhile: nobody is promoted any more.
        return Ok(());
    }
    let spec = store_lots::spec(&l).map_err(SettleError::Corrupt)?;
    let stored = award::Entity::find_by_id(l.id.clone())
        .one(txn)
        .await?
        .ok_or(DbErr::RecordNotFound(l.id.clone()))?;
    let plan_record: PlanRecord =
        serde_json::from_str(&stored.plan).map_err(|e| SettleError::Corrupt(e.to_string()))?;
    let mut plan = award_service::plan_from_record(&plan_record)?;
    // A booking upgraded on another lot of the same resource is not promoted here too.
    let siblings: Vec<String> = lot::Entity::find()
        .filter(lot::Column::OperatorId.eq(&l.operator_id))
        .filter(lot::Column::Resource.eq(&l.resource))
        .filter(lot::Column::ServiceDate.eq(l.service_date))
        .filter(lot::Column::Id.ne(&l.id))
        .all(txn)
        .await?
        .into_iter()
        .map(|x| x.id)
        .collect();
    let upgraded_elsewhere: Vec<String> = bid::Entity::find()
        .filter(bid::Column::LotId.is_in(siblings))
        .filter(bid::Column::Status.is_in([BidStatus::Won.as_str(), BidStatus::Charged.as_str()]))
        .filter(
            bid::Column::BookingId.is_in(
                bid::Entity::find()
                    .filter(bid::Column::Id.is_in(plan.standby.clone()))
                    .all(txn)
                    .await?
                    .into_iter()
                    .map(|b| b.booking_id),
            ),
        )
        .all(txn)
        .await?
        .into_iter()
        .map(|b| b.booking_id)
        .collect();
    let all = bid::Entity::find()
        .filter(bid::Column::LotId.eq(&l.id))
        .order_by_asc(bid::Column::Id)
        .all(txn)
        .await?;
    plan.standby.retain(|id| {
        all.iter()
            .find(|x| &x.id == id)
            .is_none_or(|x| !upgraded_elsewhere.contains(&x.booking_id))
    });
    let mut rules = award_service::rules(&l, &spec);
    rules.capacity += plan_record.chained_units;
    let next = matching::reassign(&rules, &plan, &award_service::inputs(&all), &b.id)
        .map_err(AwardError::from)?;
    let now = Utc::now();

    let lost = Some(reason.as_str());
    award_service::set_outcome(txn, b, BidStatus::Lost, None, lost, None, now).await?;
    if reason == OutcomeReason::PaymentFailed && outbox::told_upgrade_goes_on(txn, b).await? {
        // The payment-failed email written with the failure said the upgrade goes on: one
        // email, not two.
        outbox::enqueue_for_partners(txn, &b.id, Topic::NotSuccessful, Some(why), now).await?;
    } else {
        outbox::enqueue(txn, &b.id, Topic::NotSuccessful, Some(why), now).await?;
    }
    events::record(txn, &b.id, BidEventKind::Lost, None, Some(why.en()), now).await?;
    if let Some(hold) = &b.payment_ref {
        jobs::enqueue(
            txn,
            Job::Release {
                bid_id: b.id.clone(),
                hold: hold.clone(),
            },
            now,
        )
        .await?;
    }
    for w in next
        .winners
        .iter()
        .filter(|w| !plan.winners.iter().any(|old| old.id == w.id))
    {
        let promoted = all
            .iter()
            .find(|x| x.id == w.id)
            .ok_or(DbErr::RecordNotFound(w.id.clone()))?;
        award_service::set_outcome(
            txn,
            promoted,
            BidStatus::Won,
            Some((w.units, w.price_per_unit_minor)),
            None,
            None,
            now,
        )
        .await?;
        let then = if charge_promoted {
            "your card is now charged"
        } else {
            "once the operator confirms it, your card is charged"
        };
        let detail = format!(
            "Good news: an upgrade freed up and is yours, for {} of your party; {then} {}.",
            w.units,
            money(w.total_minor, &spec)
        );
        events::record(
            txn,
            &w.id,
            BidEventKind::Won,
            Some(w.price_per_unit_minor),
            Some(detail),
            now,
        )
        .await?;
        if charge_promoted {
            jobs::enqueue(
                txn,
                Job::Charge {
                    bid_id: w.id.clone(),
                },
                now,
            )
            .await?;
        }
    }
    let mut record = record(&next, &spec);
    record.chained_units = plan_record.chained_units;
    for kept in &plan_record.losers {
        if let Some(l) = record.losers.iter_mut().find(|l| l.id == kept.id) {
            l.reason = kept.reason.clone();
        }
    }
    // The dropped winner is a loser now, with its reason.
    if let Some(l) = record.losers.iter_mut().find(|l| l.id == b.id) {
        l.reason = reason.as_str().to_owned();
    } else {
        record.losers.push(super::award::LoserRecord {
            id: b.id.clone(),
            reason: reason.as_str().to_owned(),
        });
    }
    let mut am = stored.into_active_model();
    am.plan = Set(serde_json::to_string(&record).expect("plans serialise"));
    am.revenue_minor = Set(next.revenue_minor);
    am.update(txn).await?;
    jobs::enqueue(
        txn,
        Job::Settle {
            lot_id: l.id.clone(),
        },
        now,
    )
    .await?;
    Ok(())
}

/// Gives back what a winner paid, with the reason on their timeline.
pub async fn refund(
    db: &Db,
    gateway: &dyn PaymentGateway,
    bid_id: &str,
    reason: &str,
    why: Option<&Why>,
) -> Result<Step, SettleError> {
    let Some((b, _, spec)) = load(db, bid_id).await? else {
        return Ok(Step::NothingToDo);
    };
    // Owed when money was taken and not given back, whatever the bid says (reconcile
    // repairs captures that have no win this way).
    let refunded = payment::Entity::find()
        .filter(payment::Column::BidId.eq(&b.id))
        .filter(payment::Column::Kind.eq("refund"))
        .filter(payment::Column::Status.eq("succeeded"))
        .count(db)
        .await?;
    if refunded > 0 {
        return Ok(Step::NothingToDo);
    }
    let charge = payment::Entity::find()
        .filter(payment::Column::BidId.eq(&b.id))
        .filter(payment::Column::Kind.eq("charge"))
        .filter(payment::Column::Status.eq("succeeded"))
        .order_by_desc(payment::Column::CreatedAt)
        .one(db)
        .await?;
    let Some(charge) = charge else {
        return Ok(Step::NothingToDo);
    };
    let reference = charge
        .provider_ref
        .clone()
        .ok_or_else(|| SettleError::Corrupt(format!("charge {} has no reference", charge.id)))?;
    let key = IdempotencyKey::derive(&b.id, PaymentStep::Refund, 1);
    let row = payment_row(
        db,
        &b,
        "refund",
        charge.amount_minor,
        &key,
        1,
        gateway.provider(),
    )
    .await?;
    let refund = gateway
        .refund(&PaymentRef::new(reference), charge.amount_minor, &key)
        .await?;
    let now = Utc::now();
    let txn = write_txn(db).await?;
    // Another run of this refund may have recorded it meanwhile: told once.
    let Some(row) = locked_if(&txn, row.id, "pending").await? else {
        return Ok(Step::NothingToDo);
    };
    finish_payment(
        &txn,
        row,
        "succeeded",
        Some(refund.reference.to_string()),
        None,
    )
    .await?;
    let mut am = b.clone().into_active_model();
    am.status = Set(BidStatus::Refunded.as_str().to_owned());
    am.updated_at = Set(now);
    am.update(&txn).await?;
    // The reason may end without a full stop (an old job's operator's words).
    let detail = format!(
        "{} {} is refunded to your card.",
        crate::notifications::why::closed(reason),
        money(charge.amount_minor, &spec)
    );
    outbox::enqueue_refunded(&txn, &b.id, charge.amount_minor, detail.clone(), why, now).await?;
    events::record(
        &txn,
        &b.id,
        BidEventKind::Refunded,
        b.award_price_minor,
        Some(detail),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(Step::Done)
}

/// Marks the lot settled when no payment is pending; standby bids no longer needed are told
/// and their holds released.
pub async fn settle(db: &Db, lot_id: &str) -> Result<Step, SettleError> {
    let txn = write_txn(db).await?;
    let Some(l) = lot::Entity::find_by_id(lot_id.to_owned())
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Ok(Step::NothingToDo);
    };
    if store_lots::status(&l) != LotStatus::Awarded {
        return Ok(Step::NothingToDo);
    }
    let approved = award::Entity::find_by_id(l.id.clone())
        .one(&txn)
        .await?
        .is_some_and(|a| a.status == AwardStatus::Approved.as_str());
    let pending = bid::Entity::find()
        .filter(bid::Column::LotId.eq(&l.id))
        .filter(
            bid::Column::Status.is_in([BidStatus::Won.as_str(), BidStatus::PaymentFailed.as_str()]),
        )
        .count(&txn)
        .await?;
    if !approved || pending > 0 {
        return Ok(Step::NothingToDo);
    }
    let now = Utc::now();
    let standby = bid::Entity::find()
        .filter(bid::Column::LotId.eq(&l.id))
        .filter(bid::Column::Status.eq(BidStatus::Standby.as_str()))
        .all(&txn)
        .await?;
    for b in &standby {
        let reason = b
            .outcome_reason
            .clone()
            .unwrap_or_else(|| OutcomeReason::Outbid.as_str().to_owned());
        award_service::set_outcome(&txn, b, BidStatus::Lost, None, Some(&reason), None, now)
            .await?;
        let why = Why::StandbyEnded {
            reason,
            party: b.units,
        };
        outbox::enqueue(&txn, &b.id, Topic::NotSuccessful, Some(&why), now).await?;
        events::record(&txn, &b.id, BidEventKind::Lost, None, Some(why.en()), now).await?;
        if b.payment_ref.is_some() {
            jobs::enqueue(
                &txn,
                Job::Release {
                    bid_id: b.id.clone(),
                    hold: b.payment_ref.clone().unwrap_or_default(),
                },
                now,
            )
            .await?;
        }
    }
    let mut am = l.into_active_model();
    am.status = Set(LotStatus::Settled.as_str().to_owned());
    am.updated_at = Set(now);
    am.version = Set(am.version.as_ref() + 1);
    am.update(&txn).await?;
    txn.commit().await?;
    Ok(Step::Done)
}
