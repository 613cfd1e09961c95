//! `surclass reconcile`: what the database and the payment provider disagree on, and the
//! repair for each. Money must never be stuck: a hold on a finished bid, a capture without a
//! win, a refund owed and not sent, a payment call left pending by a crash.

use chrono::{Duration, Utc};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter};

use crate::domain::bid::BidStatus;
use crate::domain::lot::LotStatus;
use crate::jobs::{self, Job};
use crate::payments::{PaymentGateway, PaymentRef, PaymentStatus};
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

/// Lists every inconsistency; changes nothing.
pub async fn check(db: &Db, gateway: &dyn PaymentGateway) -> Result<Vec<Finding>, DbErr> {
    let mut findings = Vec::new();
    let bids = bid::Entity::find().all(db).await?;
    let lots = lot::Entity::find().all(db).await?;
    let charges = payment::Entity::find()
        .filter(payment::Column::Kind.eq("charge"))
        .all(db)
        .await?;
    let refunds = payment::Entity::find()
        .filter(payment::Column::Kind.eq("refund"))
        .all(db)
        .await?;
    let lot_status = |id: &str| {
        lots.iter()
            .find(|l| l.id == id)
            .map(|l| l.status.clone())
            .unwrap_or_default()
    };
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
        let charged: i64 = charges
            .iter()
            .filter(|p| p.bid_id == b.id && p.status == "succeeded")
            .map(|p| p.amount_minor)
            .sum();
        let refunded: i64 = refunds
            .iter()
            .filter(|p| p.bid_id == b.id && p.status == "succeeded")
            .map(|p| p.amount_minor)
            .sum();
        let owes = charged > refunded;
        let cancelled = lot_status(&b.lot_id) == LotStatus::Cancelled.as_str();
        if owes && b.status != BidStatus::Charged.as_str() {
            findings.push(Finding {
                bid_id: b.id.clone(),
                problem: format!(
                    "captured {charged} minor units without a win (bid is {})",
                    b.status
                ),
                repair: Job::Refund {
                    bid_id: b.id.clone(),
                    reason: "This charge was made in error.".into(),
                },
            });
        } else if owes && cancelled {
            findings.push(Finding {
                bid_id: b.id.clone(),
                problem: "charged on a cancelled lot and not refunded".into(),
                repair: Job::Refund {
                    bid_id: b.id.clone(),
                    reason: "The operator cancelled this upgrade.".into(),
                },
            });
        }
        // A charge left pending by a crash between the provider call and our bookkeeping:
        // running the charge again replays the provider's answer under the same key.
        let stale = Utc::now() - Duration::minutes(5);
        if charges
            .iter()
            .any(|p| p.bid_id == b.id && p.status == "pending" && p.updated_at < stale)
            && b.status == BidStatus::Won.as_str()
        {
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
    let holds = payment::Entity::find()
        .filter(payment::Column::Kind.eq("hold"))
        .all(db)
        .await?;
    let releases = payment::Entity::find()
        .filter(payment::Column::Kind.eq("release"))
        .filter(payment::Column::Status.eq("succeeded"))
        .all(db)
        .await?;
    let live = [
        BidStatus::Active,
        BidStatus::Won,
        BidStatus::Standby,
        BidStatus::PaymentFailed,
        BidStatus::Charged,
    ];
    for h in holds.iter().filter(|h| h.status == "succeeded") {
        let Some(reference) = &h.provider_ref else {
            continue;
        };
        let Some(b) = bids.iter().find(|b| b.id == h.bid_id) else {
            continue;
        };
        let is_live = b.payment_ref.as_deref() == Some(reference.as_str())
            && live.iter().any(|s| s.as_str() == b.status);
        let released = releases
            .iter()
            .any(|r| r.provider_ref.as_deref() == Some(reference.as_str()));
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
    Ok(findings)
}

/// Schedules the repair of each finding; the worker carries them out.
pub async fn repair(db: &Db, findings: &[Finding]) -> Result<(), DbErr> {
    for f in findings {
        jobs::enqueue(db, f.repair.clone(), Utc::now()).await?;
    }
    Ok(())
}
