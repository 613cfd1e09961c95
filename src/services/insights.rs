//! Read-only figures for the operator console: how full each lot is, and the dashboard
//! (revenue per day, bids per lot, acceptance rate, where bids fall between reserve and maximum).
//! Every query is scoped to one operator.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::domain::bid::BidStatus;
use crate::store::Db;
use crate::store::entities::{bid, lot, payment};

/// Units asked for by live bids and units won, per lot.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    pub units_bid: i64,
    pub units_won: i64,
}

/// Bid statuses that hold or held an upgrade after the award.
const WON: [BidStatus; 3] = [BidStatus::Won, BidStatus::Charged, BidStatus::PaymentFailed];

pub async fn fill(db: &Db, lot_ids: &[String]) -> Result<HashMap<String, Fill>, DbErr> {
    let mut out: HashMap<String, Fill> = HashMap::new();
    if lot_ids.is_empty() {
        return Ok(out);
    }
    let rows: Vec<(String, String, i32, Option<i32>)> = bid::Entity::find()
        .select_only()
        .column(bid::Column::LotId)
        .column(bid::Column::Status)
        .column(bid::Column::Units)
        .column(bid::Column::AwardUnits)
        .filter(bid::Column::LotId.is_in(lot_ids.iter().cloned()))
        .into_tuple()
        .all(db)
        .await?;
    for (lot_id, status, units, award_units) in rows {
        let f = out.entry(lot_id).or_default();
        if status == BidStatus::Active.as_str() {
            f.units_bid += i64::from(units);
        }
        if WON.iter().any(|s| s.as_str() == status) {
            f.units_won += i64::from(award_units.unwrap_or(units));
        }
    }
    Ok(out)
}

#[derive(Debug, Default, Clone)]
pub struct Dashboard {
    /// Per currency: (day, charged less refunded, minor units), oldest first.
    pub revenue_per_day: BTreeMap<String, Vec<(NaiveDate, i64)>>,
    /// (lot title, bids placed and not withdrawn), most recent lots first, at most 12.
    pub bids_per_lot: Vec<(String, i64)>,
    /// Bids on awarded lots that won, and all bids on awarded lots (not withdrawn).
    pub accepted: i64,
    pub decided: i64,
    /// Bids by where their amount lies between the lot's reserve (0 %) and maximum (100 %),
    /// in ten buckets of 10 %.
    pub position: [i64; 10],
}

pub async fn dashboard(db: &Db, operator_id: &str) -> Result<Dashboard, DbErr> {
    let lots = lot::Entity::find()
        .filter(lot::Column::OperatorId.eq(operator_id))
        .order_by_desc(lot::Column::ClosesAt)
        .all(db)
        .await?;
    let mut d = Dashboard::default();
    if lots.is_empty() {
        return Ok(d);
    }
    let by_id: HashMap<&str, &lot::Model> = lots.iter().map(|l| (l.id.as_str(), l)).collect();
    let mut counts: HashMap<String, i64> = HashMap::new();
    let mut money_bids = Vec::new();
    for chunk in lots.chunks(500) {
        let rows: Vec<(String, String, String, i64)> = bid::Entity::find()
            .select_only()
            .column(bid::Column::Id)
            .column(bid::Column::LotId)
            .column(bid::Column::Status)
            .column(bid::Column::AmountMinor)
            .filter(bid::Column::LotId.is_in(chunk.iter().map(|l| l.id.clone())))
            .into_tuple()
            .all(db)
            .await?;
        for (id, lot_id, status, amount) in rows {
            if status == BidStatus::Withdrawn.as_str() {
                continue;
            }
            let Some(l) = by_id.get(lot_id.as_str()) else {
                continue;
            };
            *counts.entry(lot_id.clone()).or_default() += 1;
            let span = (l.maximum_minor - l.reserve_minor).max(1);
            let at = ((amount - l.reserve_minor).clamp(0, span) * 10 / span).min(9);
            d.position[at as usize] += 1;
            if matches!(l.status.as_str(), "awarded" | "settled") {
                d.decided += 1;
                let won = WON.iter().any(|s| s.as_str() == status)
                    || status == BidStatus::Refunded.as_str();
                if won {
                    d.accepted += 1;
                }
            }
            if status == BidStatus::Charged.as_str() || status == BidStatus::Refunded.as_str() {
                money_bids.push(id);
            }
        }
    }
    d.bids_per_lot = lots
        .iter()
        .take(12)
        .map(|l| (l.title.clone(), counts.get(&l.id).copied().unwrap_or(0)))
        .collect();
    let mut revenue: BTreeMap<String, BTreeMap<NaiveDate, i64>> = BTreeMap::new();
    for chunk in money_bids.chunks(500) {
        let payments = payment::Entity::find()
            .filter(payment::Column::BidId.is_in(chunk.iter().cloned()))
            .filter(payment::Column::Status.eq("succeeded"))
            .filter(payment::Column::Kind.is_in(["charge", "refund"]))
            .all(db)
            .await?;
        for p in payments {
            let sign = if p.kind == "refund" { -1 } else { 1 };
            *revenue
                .entry(p.currency.clone())
                .or_default()
                .entry(p.updated_at.date_naive())
                .or_default() += sign * p.amount_minor;
        }
    }
    d.revenue_per_day = revenue
        .into_iter()
        .map(|(c, days)| (c, days.into_iter().collect()))
        .collect();
    Ok(d)
}
