//! Closing a lot and awarding it: the bids are read in one query, the pure matching core
//! computes the plan, and the plan, every bid's outcome and the jobs that move the money are
//! written in one transaction. Run twice, it does nothing the second time: the lot is no
//! longer open.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};

use super::events;
use crate::domain::award::AwardStatus;
use crate::domain::bid::{BidEventKind, BidStatus};
use crate::domain::lot::{AwardPolicy, LotSpec, LotStatus, PaymentMode};
use crate::domain::outcome::OutcomeReason;
use crate::jobs::{self, Job};
use crate::matching::{self, AwardPlan, BidInput, LoseReason, Loser, LotRules, Policy, Winner};
use crate::money::Money;
use crate::notifications::why::Why;
use crate::notifications::{Topic, outbox};
use crate::store::entities::{award, bid, lot};
use crate::store::{Db, lots as store_lots, write_txn};

#[derive(Debug, thiserror::Error)]
pub enum AwardError {
    #[error("lot {0} not found")]
    NotFound(String),
    #[error("the matching core refused the lot: {0}")]
    Matching(#[from] matching::AwardError),
    #[error("stored data unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

#[derive(Debug, PartialEq, Eq)]
pub enum CloseOutcome {
    /// The close time moved: run again then.
    NotDue(DateTime<Utc>),
    /// Closed and awarded earlier (or cancelled): nothing to do.
    AlreadyDone,
    Awarded {
        winners: usize,
        standby: usize,
        losers: usize,
        revenue_minor: i64,
    },
}

/// The plan as stored in `awards.plan`: minor units for the machines, decimal strings for
/// people reading it in the API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanRecord {
    pub policy: String,
    pub available_units: u32,
    /// Units added by chaining (winners of a higher lot of the same resource freed them).
    #[serde(default)]
    pub chained_units: u32,
    pub winners: Vec<WinnerRecord>,
    pub standby: Vec<String>,
    pub losers: Vec<LoserRecord>,
    pub revenue_minor: i64,
    pub revenue: String,
    pub clearing_price_minor: Option<i64>,
    pub clearing_price: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WinnerRecord {
    pub id: String,
    pub booking: String,
    pub units: u8,
    pub party: u8,
    pub price_per_unit_minor: i64,
    pub price_per_unit: String,
    pub total_minor: i64,
    pub total: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoserRecord {
    pub id: String,
    pub reason: String,
}

pub fn rules(l: &lot::Model, spec: &LotSpec) -> LotRules {
    LotRules {
        capacity: spec.capacity,
        // "Upgrade now" sales clear before the auction, like status upgrades.
        entitled_units: spec.entitlement_units + l.units_sold_now.max(0) as u32,
        reserve_minor: spec.reserve.minor(),
        maximum_minor: spec.maximum.minor(),
        policy: match spec.award_policy {
            AwardPolicy::Priority => Policy::Priority,
            AwardPolicy::MaxRevenue => Policy::MaxRevenue,
            AwardPolicy::UniformPrice => Policy::UniformPrice,
        },
        tier_weight_percent: spec.tier_weight_pct,
    }
}

/// The bids as the core sees them. Withdrawn bids take part (to get their reason); bids
/// already settled one way or another by an earlier award do not exist at close.
pub fn inputs(bids: &[bid::Model]) -> Vec<BidInput<String>> {
    bids.iter()
        .map(|b| BidInput {
            id: b.id.clone(),
            booking: b.booking_id.clone(),
            amount_minor: b.amount_minor,
            units: b.units.clamp(1, 9) as u8,
            partial_ok: b.partial_ok,
            submitted_at: b.submitted_at.timestamp_millis(),
            tier: b.tier.clamp(0, 255) as u8,
            withdrawn: b.status == BidStatus::Withdrawn.as_str(),
        })
        .collect()
}

pub fn record(plan: &AwardPlan<String>, spec: &LotSpec) -> PlanRecord {
    let money = |minor: i64| {
        Money::from_minor(minor, spec.currency)
            .map(|m| m.to_string())
            .unwrap_or_default()
    };
    PlanRecord {
        policy: plan.policy.as_str().to_owned(),
        available_units: plan.available_units,
        chained_units: 0,
        winners: plan
            .winners
            .iter()
            .map(|w| WinnerRecord {
                id: w.id.clone(),
                booking: w.booking.clone(),
                units: w.units,
                party: w.party,
                price_per_unit_minor: w.price_per_unit_minor,
                price_per_unit: money(w.price_per_unit_minor),
                total_minor: w.total_minor,
                total: money(w.total_minor),
            })
            .collect(),
        standby: plan.standby.clone(),
        losers: plan
            .losers
            .iter()
            .map(|l| LoserRecord {
                id: l.id.clone(),
                reason: l.reason.as_str().to_owned(),
            })
            .collect(),
        revenue_minor: plan.revenue_minor,
        revenue: money(plan.revenue_minor),
        clearing_price_minor: plan.clearing_price_minor,
        clearing_price: plan.clearing_price_minor.map(money),
    }
}

/// Reads a stored plan back for `reassign`.
pub fn plan_from_record(r: &PlanRecord) -> Result<AwardPlan<String>, AwardError> {
    let reason = |s: &str| {
        // Reasons the service adds after the award (rejected in review, capacity cut) mean
        // nothing to the core: to it those bids simply did not win.
        LoseReason::parse(s).unwrap_or(LoseReason::Outbid)
    };
    Ok(AwardPlan {
        algorithm_version: matching::ALGORITHM_VERSION,
        policy: Policy::parse(&r.policy)
            .ok_or_else(|| AwardError::Corrupt(format!("unknown policy {}", r.policy)))?,
        available_units: r.available_units,
        winners: r
            .winners
            .iter()
            .map(|w| Winner {
                id: w.id.clone(),
                booking: w.booking.clone(),
                units: w.units,
                party: w.party,
                price_per_unit_minor: w.price_per_unit_minor,
                total_minor: w.total_minor,
            })
            .collect(),
        standby: r.standby.clone(),
        losers: r
            .losers
            .iter()
            .map(|l| Loser {
                id: l.id.clone(),
                reason: reason(&l.reason),
            })
            .collect(),
        revenue_minor: r.revenue_minor,
        clearing_price_minor: r.clearing_price_minor,
    })
}

/// How winners were chosen, shown to every bidder after the award.
pub fn rule_text(policy: &str) -> &'static str {
    match policy {
        "max_revenue" => {
            "The combination of offers bringing the most in total won; each winner pays their own offer."
        }
        "uniform_price" => {
            "The highest offers per person won; every winner pays the same price per person, the highest offer that did not win (or the minimum), never more than their own offer."
        }
        _ => {
            "The highest offers per person won, whole parties only, in order (loyalty tier, then the earlier offer, broke ties); each winner pays their own offer."
        }
    }
}

/// Closes the lot if its time has come and awards it, all in one transaction. Lots of the
/// same resource (flight and date, property and night, branch and day) that are due too are
/// awarded with it as one ladder, top class first, so a booking wins at most one of them.
pub async fn close_and_award(db: &Db, lot_id: &str) -> Result<CloseOutcome, AwardError> {
    let txn = write_txn(db).await?;
    // FOR UPDATE: bid changes take the lot FOR SHARE, so they either committed before this
    // point or wait and then see the lot closed. On SQLite, BEGIN IMMEDIATE does the same.
    let l = lot::Entity::find_by_id(lot_id.to_owned())
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| AwardError::NotFound(lot_id.to_owned()))?;
    if store_lots::status(&l) != LotStatus::Open {
        return Ok(CloseOutcome::AlreadyDone);
    }
    let now = Utc::now();
    if l.closes_at > now {
        return Ok(CloseOutcome::NotDue(l.closes_at));
    }
    let siblings = lot::Entity::find()
        .filter(lot::Column::OperatorId.eq(&l.operator_id))
        .filter(lot::Column::Resource.eq(&l.resource))
        .filter(lot::Column::ServiceDate.eq(l.service_date))
        .filter(lot::Column::Status.eq(LotStatus::Open.as_str()))
        .filter(lot::Column::ClosesAt.lte(now))
        .order_by_asc(lot::Column::Id)
        .lock_exclusive()
        .all(&txn)
        .await?;
    let ids: Vec<String> = siblings.iter().map(|s| s.id.clone()).collect();
    let all_bids = bid::Entity::find()
        .filter(bid::Column::LotId.is_in(ids))
        .filter(
            bid::Column::Status.is_in([BidStatus::Active.as_str(), BidStatus::Withdrawn.as_str()]),
        )
        .order_by_asc(bid::Column::Id)
        .all(&txn)
        .await?;
    let mut lots = Vec::new();
    for s in &siblings {
        let spec = store_lots::spec(s).map_err(AwardError::Corrupt)?;
        let bids: Vec<bid::Model> = all_bids
            .iter()
            .filter(|b| b.lot_id == s.id)
            .cloned()
            .collect();
        let inputs = inputs(&bids);
        lots.push((s, spec, bids, inputs));
    }
    // Class ranks: the lot's target class has its rank; its origin class is the rank of the
    // sibling that upgrades into it, or the bottom of the ladder.
    let rank_of = |class: &str| {
        lots.iter()
            .find(|(_, spec, ..)| spec.to_class == class)
            .map_or(0, |(_, spec, ..)| spec.class_rank.min(250) as u8)
    };
    let ladder: Vec<matching::LadderLot<'_, String>> = lots
        .iter()
        .map(|(s, spec, _, inputs)| matching::LadderLot {
            lot: s.id.clone(),
            from_class: rank_of(&spec.from_class),
            to_class: spec.class_rank.min(250) as u8 + 1,
            chained_capacity: spec.chained_capacity,
            rules: rules(s, spec),
            bids: inputs,
        })
        .collect();
    let awarded = matching::award_ladder(&ladder)?;

    let mut outcome = CloseOutcome::AlreadyDone;
    for lot_award in awarded.lots {
        let (s, spec, bids, inputs) = lots
            .iter()
            .find(|(s, ..)| s.id == lot_award.lot)
            .expect("the ladder names given lots");
        let mut lot_rules = rules(s, spec);
        lot_rules.capacity += lot_award.chained_units;
        let counts = apply_plan(
            &txn,
            s,
            spec,
            bids,
            inputs,
            &lot_rules,
            &lot_award.plan,
            lot_award.chained_units,
            now,
        )
        .await?;
        if s.id == lot_id {
            outcome = counts;
        }
    }
    txn.commit().await?;
    Ok(outcome)
}

/// Writes one lot's plan: the award row, every bid's outcome and timeline, the money jobs.
#[allow(clippy::too_many_arguments)]
async fn apply_plan(
    txn: &impl ConnectionTrait,
    l: &lot::Model,
    spec: &LotSpec,
    bids: &[bid::Model],
    inputs: &[BidInput<String>],
    rules: &LotRules,
    plan: &AwardPlan<String>,
    chained_units: u32,
    now: DateTime<Utc>,
) -> Result<CloseOutcome, AwardError> {
    let fingerprint = matching::fingerprint(rules, inputs, plan);
    let mut record = record(plan, spec);
    record.chained_units = chained_units;
    let lot_id = l.id.as_str();
    let review = spec.review_required;
    award::ActiveModel {
        lot_id: Set(l.id.clone()),
        algorithm_version: Set(matching::ALGORITHM_VERSION.to_owned()),
        fingerprint: Set(fingerprint.clone()),
        plan: Set(serde_json::to_string(&record).expect("plans serialise")),
        revenue_minor: Set(plan.revenue_minor),
        currency: Set(spec.currency.code().to_owned()),
        status: Set(if review {
            AwardStatus::PendingReview
        } else {
            AwardStatus::Approved
        }
        .as_str()
        .to_owned()),
        created_at: Set(now),
        approved_at: Set(if review { None } else { Some(now) }),
    }
    .insert(txn)
    .await?;

    let by_id = |id: &str| {
        bids.iter()
            .find(|b| b.id == id)
            .expect("the plan names only given bids")
    };
    for b in bids
        .iter()
        .filter(|b| b.status == BidStatus::Active.as_str())
    {
        events::record(txn, &b.id, BidEventKind::LotClosed, None, None, now).await?;
    }
    for w in &plan.winners {
        let b = by_id(&w.id);
        let total = Money::from_minor(w.total_minor, spec.currency)
            .map(|m| m.to_string())
            .unwrap_or_default();
        let detail = if review {
            format!(
                "Your upgrade is provisionally confirmed for {} of your party; the operator confirms it shortly, then your card is charged {total} {}.",
                w.units, spec.currency
            )
        } else {
            format!(
                "Your upgrade is confirmed for {} of your party; your card is now charged {total} {}.",
                w.units, spec.currency
            )
        };
        set_outcome(
            txn,
            b,
            BidStatus::Won,
            Some((w.units, w.price_per_unit_minor)),
            None,
            None,
            now,
        )
        .await?;
        events::record(
            txn,
            &b.id,
            BidEventKind::Won,
            Some(w.price_per_unit_minor),
            Some(detail),
            now,
        )
        .await?;
        if !review {
            jobs::enqueue(
                txn,
                Job::Charge {
                    bid_id: b.id.clone(),
                },
                now,
            )
            .await?;
        }
    }
    let free_after = plan.available_units.saturating_sub(plan.units_awarded());
    let lowest_winning = plan
        .winners
        .iter()
        .map(|w| w.price_per_unit_minor)
        .min()
        .unwrap_or(i64::MAX);
    for (rank, id) in plan.standby.iter().enumerate() {
        let b = by_id(id);
        // Why it is not a winner: its party did not fit what was left, or others offered more.
        let why = if b.units as u32 > free_after && b.amount_minor >= lowest_winning {
            OutcomeReason::PartyDoesNotFit
        } else {
            OutcomeReason::Outbid
        };
        let held = spec.payment_mode == PaymentMode::Hold;
        let detail = format!(
            "Not successful for now: you are number {} on the standby list. If a confirmed traveller's payment fails, your upgrade is confirmed and charged; {}",
            rank + 1,
            if held {
                "otherwise the hold on your card is released as soon as every upgrade is paid."
            } else {
                "otherwise nothing is charged."
            }
        );
        set_outcome(
            txn,
            b,
            BidStatus::Standby,
            None,
            Some(why.as_str()),
            Some(rank as i32 + 1),
            now,
        )
        .await?;
        events::record(txn, &b.id, BidEventKind::Standby, None, Some(detail), now).await?;
    }
    // Every losing hold is released at once by one job for the lot, in batches; queued before
    // the losers' messages, so the money moves first when many lots close together.
    if plan.losers.iter().any(|loser| {
        bids.iter()
            .any(|b| b.id == loser.id && b.payment_ref.is_some())
    }) {
        jobs::enqueue(
            txn,
            Job::ReleaseLosers {
                lot_id: l.id.clone(),
            },
            now,
        )
        .await?;
    }
    let endpoints = outbox::endpoints_of(txn, &l.operator_id).await?;
    for loser in &plan.losers {
        let b = by_id(&loser.id);
        if b.status == BidStatus::Withdrawn.as_str() {
            continue;
        }
        let reason = OutcomeReason::from(loser.reason);
        set_outcome(
            txn,
            b,
            BidStatus::Lost,
            None,
            Some(reason.as_str()),
            None,
            now,
        )
        .await?;
        let why = Why::outcome(reason, b.units);
        let lost = bid::Model {
            status: BidStatus::Lost.as_str().to_owned(),
            ..b.clone()
        };
        outbox::enqueue_loaded(
            txn,
            &lost,
            l,
            &endpoints,
            Topic::NotSuccessful,
            Some(&why),
            now,
        )
        .await?;
        events::record(txn, &b.id, BidEventKind::Lost, None, Some(why.en()), now).await?;
    }
    let mut am = l.clone().into_active_model();
    am.status = Set(LotStatus::Awarded.as_str().to_owned());
    am.updated_at = Set(now);
    am.version = Set(am.version.as_ref() + 1);
    am.update(txn).await?;
    jobs::enqueue(
        txn,
        Job::Settle {
            lot_id: lot_id.to_owned(),
        },
        now,
    )
    .await?;
    Ok(CloseOutcome::Awarded {
        winners: plan.winners.len(),
        standby: plan.standby.len(),
        losers: plan.losers.len(),
        revenue_minor: plan.revenue_minor,
    })
}

pub async fn set_outcome(
    db: &impl ConnectionTrait,
    b: &bid::Model,
    status: BidStatus,
    award: Option<(u8, i64)>,
    reason: Option<&str>,
    standby_rank: Option<i32>,
    now: DateTime<Utc>,
) -> Result<bid::Model, DbErr> {
    let mut am = b.clone().into_active_model();
    am.status = Set(status.as_str().to_owned());
    am.award_units = Set(award.map(|(u, _)| i32::from(u)));
    am.award_price_minor = Set(award.map(|(_, p)| p));
    am.outcome_reason = Set(reason.map(str::to_owned));
    am.standby_rank = Set(standby_rank);
    am.updated_at = Set(now);
    am.version = Set(b.version + 1);
    am.update(db).await
}
