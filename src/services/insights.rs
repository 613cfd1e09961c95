//! Read-only figures for the operator console: how full each lot is, and the dashboard
//! (revenue per day, bids per lot, acceptance rate, where bids fall between reserve and maximum).
//! Every query is scoped to one operator.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect};

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

/// The dashboard's figures, counted by the database: one grouped query over the operator's
/// bids and one over its charges and refunds, so the page costs the same with a million bids
/// as with ten.
pub async fn dashboard(db: &Db, operator_id: &str) -> Result<Dashboard, DbErr> {
    let lots = lot::Entity::find()
        .select_only()
        .column(lot::Column::Id)
        .column(lot::Column::Title)
        .column(lot::Column::Status)
        .filter(lot::Column::OperatorId.eq(operator_id))
        .order_by_desc(lot::Column::ClosesAt)
        .into_tuple::<(String, String, String)>()
        .all(db)
        .await?;
    let mut d = Dashboard::default();
    if lots.is_empty() {
        return Ok(d);
    }
    let decided: HashSet<&str> = lots
        .iter()
        .filter(|(_, _, status)| matches!(status.as_str(), "awarded" | "settled"))
        .map(|(id, _, _)| id.as_str())
        .collect();
    let mut counts: HashMap<String, i64> = HashMap::new();
    for (lot_id, status, at, n) in bid_groups(db, operator_id).await? {
        *counts.entry(lot_id.clone()).or_default() += n;
        // The CASE keeps every bucket in 0..=9; a row outside would be a query bug.
        debug_assert!((0..10).contains(&at), "bucket {at}");
        d.position[at.clamp(0, 9) as usize] += n;
        if decided.contains(lot_id.as_str()) {
            d.decided += n;
            if WON.iter().any(|s| s.as_str() == status) || status == BidStatus::Refunded.as_str() {
                d.accepted += n;
            }
        }
    }
    d.bids_per_lot = lots
        .iter()
        .take(12)
        .map(|(id, title, _)| (title.clone(), counts.get(id).copied().unwrap_or(0)))
        .collect();
    let mut revenue: BTreeMap<String, BTreeMap<NaiveDate, i64>> = BTreeMap::new();
    for (currency, kind, amount, at) in money_moved(db, operator_id).await? {
        let sign = if kind == "refund" { -1 } else { 1 };
        *revenue
            .entry(currency)
            .or_default()
            .entry(at.date_naive())
            .or_default() += sign * amount;
    }
    d.revenue_per_day = revenue
        .into_iter()
        .map(|(c, days)| (c, days.into_iter().collect()))
        .collect();
    Ok(d)
}

fn bids_on_lots() -> sea_orm::RelationDef {
    bid::Entity::belongs_to(lot::Entity)
        .from(bid::Column::LotId)
        .to(lot::Column::Id)
        .into()
}

/// The operator's bids (not withdrawn) counted by lot, status and position bucket: where the
/// amount lies between the lot's reserve (bucket 0) and maximum (bucket 9), in tenths.
async fn bid_groups(db: &Db, operator_id: &str) -> Result<Vec<(String, String, i64, i64)>, DbErr> {
    let amount = || Expr::col((bid::Entity, bid::Column::AmountMinor));
    let reserve = || Expr::col((lot::Entity, lot::Column::ReserveMinor));
    let maximum = || Expr::col((lot::Entity, lot::Column::MaximumMinor));
    let bucket: Expr = Expr::case(amount().lte(reserve()), 0)
        .case(amount().gte(maximum()), 9)
        .finally(
            amount()
                .sub(reserve())
                .mul(10)
                .div(maximum().sub(reserve())),
        )
        .into();
    bid::Entity::find()
        .select_only()
        .column(bid::Column::LotId)
        .column(bid::Column::Status)
        .column_as(bucket, "bucket")
        .column_as(bid::Column::Id.count(), "n")
        .join(JoinType::InnerJoin, bids_on_lots())
        .filter(lot::Column::OperatorId.eq(operator_id))
        .filter(bid::Column::Status.ne(BidStatus::Withdrawn.as_str()))
        .group_by(bid::Column::LotId)
        .group_by(bid::Column::Status)
        .group_by(Expr::cust("bucket"))
        .into_tuple()
        .all(db)
        .await
}

/// Succeeded charges and refunds of the operator's charged or refunded bids: (currency,
/// kind, amount, when). One row per winner at most twice, far fewer than bids.
async fn money_moved(
    db: &Db,
    operator_id: &str,
) -> Result<Vec<(String, String, i64, DateTime<Utc>)>, DbErr> {
    payment::Entity::find()
        .select_only()
        .column(payment::Column::Currency)
        .column(payment::Column::Kind)
        .column(payment::Column::AmountMinor)
        .column(payment::Column::UpdatedAt)
        .join(JoinType::InnerJoin, crate::store::payments::of_bids())
        .join(JoinType::InnerJoin, bids_on_lots())
        .filter(lot::Column::OperatorId.eq(operator_id))
        .filter(payment::Column::Status.eq("succeeded"))
        .filter(payment::Column::Kind.is_in(["charge", "refund"]))
        .filter(
            bid::Column::Status.is_in([BidStatus::Charged.as_str(), BidStatus::Refunded.as_str()]),
        )
        .into_tuple()
        .all(db)
        .await
}
