//! `surclass reconcile`: what the database and the payment provider disagree on, and the
//! repair for each. Money must never be stuck: a hold on a finished bid, a capture without a
//! win, a refund owed and not sent, a payment call left pending by a crash, a hold that no
//! bid records.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

use crate::domain::bid::BidStatus;
use crate::domain::lot::LotStatus;
use crate::domain::outcome::OutcomeReason;
use crate::jobs::{self, Job, UnrecordedBid};
use crate::money::Money;
use crate::notifications::why::Why;
use crate::payments::{
    BID_METADATA, BOOKING_METADATA, HOLD_MAX_DAYS, LOT_METADATA, OpenHold, PaymentError,
    PaymentGateway, PaymentRef, PaymentStatus, UNITS_METADATA,
};
use crate::store::Db;
use crate::store::entities::{bid, lot, payment};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub bid_id: String,
    pub problem: String,
    /// The job that repairs it.
    pub repair: Job,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} (repair: {})",
            self.bid_id,
            self.problem,
            self.repair.kind()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] DbErr),
    /// The provider could not list its holds: nothing can be said about them.
    #[error("payment provider: {0}")]
    Provider(#[from] PaymentError),
}

/// How long a money step may take between its card call and its write: a hold younger than
/// this that no bid records may still be written, so it is not reported.
pub const IN_FLIGHT: Duration = Duration::minutes(5);

/// Lists every inconsistency; changes nothing.
pub async fn check(db: &Db, gateway: &dyn PaymentGateway) -> Result<Vec<Finding>, ReconcileError> {
    check_as_of(db, gateway, Utc::now()).await
}

/// [`check`] as it would see things at `now` (tests use a later `now` rather than waiting
/// out [`IN_FLIGHT`]).
pub async fn check_as_of(
    db: &Db,
    gateway: &dyn PaymentGateway,
    now: DateTime<Utc>,
) -> Result<Vec<Finding>, ReconcileError> {
    let mut findings = Vec::new();
    let bids = bid::Entity::find().all(db).await?;
    let lots: HashMap<String, String> = lot::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|l| (l.id, l.status))
        .collect();
    // Every money movement once, by bid: a big lot has tens of thousands.
    let payments = payment::Entity::find().all(db).await?;
    let mut payments_of: HashMap<&str, Vec<&payment::Model>> = HashMap::new();
    for p in &payments {
        payments_of.entry(p.bid_id.as_str()).or_default().push(p);
    }
    let lot_status = |id: &str| lots.get(id).cloned().unwrap_or_default();
    let finished = [
        BidStatus::Lost,
        BidStatus::Withdrawn,
        BidStatus::Released,
        BidStatus::Refunded,
    ];

    for b in &bids {
        // A hold that outlived its bid: ask the provider whether money is still held.
        if let Some(hold) = &b.payment_ref
            && finished.iter().any(|s| s.as_str() == b.status)
        {
            let held = match gateway.payment_status(&PaymentRef::new(hold.clone())).await {
                Ok(state) => matches!(
                    state.status,
                    PaymentStatus::Authorized { .. } | PaymentStatus::RequiresAction { .. }
                ),
                Err(e) => {
                    tracing::warn!(bid = %b.id, error = %e, "hold state unknown");
                    true
                }
            };
            if held {
                findings.push(Finding {
                    bid_id: b.id.clone(),
                    problem: format!(
                        "hold {hold} still on the card of a {} bid (lot {})",
                        b.status,
                        lot_status(&b.lot_id)
                    ),
                    repair: Job::Release {
                        bid_id: b.id.clone(),
                        hold: hold.clone(),
                    },
                });
            }
        }
        let of_bid = payments_of
            .get(b.id.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let succeeded = |kind: &str| -> i64 {
            of_bid
                .iter()
                .filter(|p| p.kind == kind && p.status == "succeeded")
                .map(|p| p.amount_minor)
                .sum()
        };
        let (charged, refunded) = (succeeded("charge"), succeeded("refund"));
        let owes = charged > refunded;
        let cancelled = lot_status(&b.lot_id) == LotStatus::Cancelled.as_str();
        if owes && b.status != BidStatus::Charged.as_str() {
            findings.push(Finding {
                bid_id: b.id.clone(),
                problem: format!(
                    "captured {charged} minor units without a win (bid is {})",
                    b.status
                ),
                repair: Job::refund(&b.id, Why::ChargedInError),
            });
        } else if owes && cancelled {
            findings.push(Finding {
                bid_id: b.id.clone(),
                problem: "charged on a cancelled lot and not refunded".into(),
                repair: Job::refund(&b.id, Why::outcome(OutcomeReason::LotCancelled, b.units)),
            });
        }
        // A charge left pending by a crash between the provider call and our bookkeeping:
        // running the charge again replays the provider's answer under the same key. It is
        // finished whatever became of its bid since: the money may have been taken (the
        // charge then asks the bank about the hold, and gives back what was taken).
        let stale = now - IN_FLIGHT;
        let pending = of_bid
            .iter()
            .any(|p| p.kind == "charge" && p.status == "pending" && p.updated_at < stale);
        if pending {
            findings.push(Finding {
                bid_id: b.id.clone(),
                problem: "charge pending for more than 5 minutes".into(),
                repair: Job::Charge {
                    bid_id: b.id.clone(),
                },
            });
        }
    }
    // Holds the bookkeeping replaced or unwound: recorded, not the bid's live hold, and not
    // recorded as released. The provider says whether money is still held.
    let released: HashSet<&str> = payments
        .iter()
        .filter(|p| p.kind == "release" && p.status == "succeeded")
        .filter_map(|p| p.provider_ref.as_deref())
        .collect();
    let bid_by_id: HashMap<&str, &bid::Model> = bids.iter().map(|b| (b.id.as_str(), b)).collect();
    let holds = payments
        .iter()
        .filter(|p| p.kind == "hold" && p.status == "succeeded");
    for h in holds {
        let Some(reference) = &h.provider_ref else {
            continue;
        };
        let Some(b) = bid_by_id.get(h.bid_id.as_str()) else {
            continue;
        };
        let is_live = b.payment_ref.as_deref() == Some(reference.as_str())
            && BidStatus::TAKING_PART
                .iter()
                .any(|s| s.as_str() == b.status);
        let released = released.contains(reference.as_str());
        let reported = findings
            .iter()
            .any(|f| matches!(&f.repair, Job::Release { hold, .. } if hold == reference));
        if is_live || released || reported {
            continue;
        }
        if let Ok(state) = gateway
            .payment_status(&PaymentRef::new(reference.clone()))
            .await
            && matches!(state.status, PaymentStatus::Authorized { .. })
        {
            findings.push(Finding {
                bid_id: b.id.clone(),
                problem: format!("replaced hold {reference} still on the card"),
                repair: Job::Release {
                    bid_id: b.id.clone(),
                    hold: reference.clone(),
                },
            });
        }
    }
    findings.extend(unrecorded_holds(db, gateway, now).await?);
    Ok(findings)
}

/// Holds on a card that no bid and no payment record names: a crash between a money step's
/// card call and its write. Only ours (they carry the bid id), and only those older than
/// [`IN_FLIGHT`]; holds expire at the provider after about a week, so older ones are gone.
async fn unrecorded_holds(
    db: &Db,
    gateway: &dyn PaymentGateway,
    now: DateTime<Utc>,
) -> Result<Vec<Finding>, ReconcileError> {
    let open: Vec<_> = gateway
        .open_holds(now - Duration::days(HOLD_MAX_DAYS + 1))
        .await?
        .into_iter()
        .filter(|h| h.created_at <= now - IN_FLIGHT)
        .filter(|h| h.state.metadata.contains_key(BID_METADATA))
        .collect();
    // Only the bids the holds name, and their payments: a hold is recorded on its own bid.
    let named: BTreeSet<String> = open
        .iter()
        .filter_map(|h| h.state.metadata.get(BID_METADATA).cloned())
        .collect();
    let named: Vec<String> = named.into_iter().collect();
    let (mut stored, mut known) = (HashSet::new(), HashSet::new());
    for ids in named.chunks(500) {
        let bids = bid::Entity::find()
            .filter(bid::Column::Id.is_in(ids.iter().cloned()))
            .all(db)
            .await?;
        let payments = payment::Entity::find()
            .filter(payment::Column::BidId.is_in(ids.iter().cloned()))
            .all(db)
            .await?;
        for b in bids {
            known.extend(b.payment_ref);
            stored.insert(b.id);
        }
        known.extend(payments.into_iter().filter_map(|p| p.provider_ref));
    }
    // A hold is recorded on the bid it names, but for one case: the losing copy of an
    // "upgrade now" sent twice whose release failed is recorded on the winning copy's bid.
    // Those left (rarely any) are looked for on every bid and payment.
    let left: Vec<String> = open
        .iter()
        .map(|h| h.state.reference.to_string())
        .filter(|r| !known.contains(r))
        .collect();
    for refs in left.chunks(500) {
        let on_bids: Vec<Option<String>> = bid::Entity::find()
            .select_only()
            .column(bid::Column::PaymentRef)
            .filter(bid::Column::PaymentRef.is_in(refs.iter().cloned()))
            .into_tuple()
            .all(db)
            .await?;
        let on_payments: Vec<Option<String>> = payment::Entity::find()
            .select_only()
            .column(payment::Column::ProviderRef)
            .filter(payment::Column::ProviderRef.is_in(refs.iter().cloned()))
            .into_tuple()
            .all(db)
            .await?;
        known.extend(on_bids.into_iter().chain(on_payments).flatten());
    }
    Ok(open
        .into_iter()
        .filter(|h| !known.contains(h.state.reference.as_str()))
        .filter_map(|h| {
            let bid_id = h.state.metadata.get(BID_METADATA)?.clone();
            let hold = h.state.reference.to_string();
            let amount = match Money::from_minor(h.state.amount_minor, h.state.currency) {
                Ok(money) => format!("{money} {}", h.state.currency),
                Err(_) => format!("{} minor units", h.state.amount_minor),
            };
            Some(if stored.contains(bid_id.as_str()) {
                Finding {
                    problem: format!("hold {hold} of {amount} on the card, recorded nowhere"),
                    repair: Job::Release {
                        bid_id: bid_id.clone(),
                        hold,
                    },
                    bid_id,
                }
            } else {
                let tell = unrecorded_bid(&h, &bid_id);
                let told = if tell.is_some() {
                    "the traveller is told"
                } else {
                    "the hold names no booking to tell"
                };
                Finding {
                    problem: format!(
                        "hold {hold} of {amount} on the card for a bid that was never stored ({told})"
                    ),
                    repair: Job::ReleaseUnrecorded { hold, tell },
                    bid_id,
                }
            })
        })
        .collect())
}

/// The offer a hold was for, from the metadata every card call sends; `None` when any of it
/// is missing or unreadable.
fn unrecorded_bid(hold: &OpenHold, bid_id: &str) -> Option<UnrecordedBid> {
    let state = &hold.state;
    let meta = |key: &str| state.metadata.get(key).filter(|v| !v.is_empty()).cloned();
    Some(UnrecordedBid {
        bid_id: bid_id.to_owned(),
        lot_id: meta(LOT_METADATA)?,
        booking_id: meta(BOOKING_METADATA)?,
        units: meta(UNITS_METADATA)?.parse().ok().filter(|&u| u > 0)?,
        total_minor: state.amount_minor,
        currency: state.currency.to_string(),
        // A provider's unreadable time reads as 1970: better no time than that one.
        offered_at: Some(hold.created_at).filter(|at| at.timestamp() > 0),
    })
}

/// The worker's regular look ([`Job::FindUnrecordedHolds`]): every hold that no record
/// names is released and its traveller told, without waiting for an operator to run
/// `surclass reconcile --repair`. Returns how many were found.
pub async fn release_unrecorded_holds(
    db: &Db,
    gateway: &dyn PaymentGateway,
    now: DateTime<Utc>,
) -> Result<usize, ReconcileError> {
    let findings = unrecorded_holds(db, gateway, now).await?;
    for f in &findings {
        tracing::warn!(finding = %f, "releasing a hold no record names");
    }
    repair(db, &findings).await?;
    Ok(findings.len())
}

/// Schedules the repair of each finding; the worker carries them out. A release of a hold
/// no bid records that is already queued is not queued twice, and one that was parked (the
/// provider kept refusing) is tried again.
pub async fn repair(db: &Db, findings: &[Finding]) -> Result<(), DbErr> {
    for f in findings {
        jobs::enqueue_or_revive(db, f.repair.clone()).await?;
    }
    Ok(())
}
