//! Bids that can no longer win before bidding closes. When "upgrade now" sales, a lower
//! capacity or more entitlements leave fewer units than a party needs, its bid is released
//! at once (the hold released, the traveller told why) rather than held on the card until it
//! loses at the close. Should units come back, the traveller may place it again
//! (`bid::Model::placeable_again`).

use std::collections::BTreeMap;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::domain::bid::{BidEventKind, BidStatus};
use crate::domain::lot::LotStatus;
use crate::domain::outcome::OutcomeReason;
use crate::jobs::{self, Job};
use crate::notifications::Topic;
use crate::notifications::outbox;
use crate::notifications::why::Why;
use crate::services::events;
use crate::store::entities::{bid, lot};
use crate::store::lots as store_lots;
use crate::store::{Db, write_txn};

/// Releases the active bids of open lot `lot_id` that the units left cannot take; returns
/// how many. Only units paid for count as gone: a purchase whose payment is still asked for
/// may be undone and give its units back (its payment queues this again once it is paid).
pub async fn release_without_room(db: &Db, lot_id: &str) -> Result<usize, DbErr> {
    let txn = write_txn(db).await?;
    // The lot, then its bids: the order every path that takes both takes them in.
    let Some(l) = lot::Entity::find_by_id(lot_id.to_owned())
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Ok(0);
    };
    let spec =
        store_lots::spec(&l).map_err(|e| DbErr::Custom(format!("stored lot unreadable: {e}")))?;
    let now = Utc::now();
    // Closed, or past its close (the close job weighs what is left). A chained lot may gain
    // the units freed by the class above at the award: its bids are left to it.
    if store_lots::status(&l) != LotStatus::Open || spec.closes_at <= now || spec.chained_capacity {
        return Ok(0);
    }
    // Before the close, a won bid is an "upgrade now" whose payment is not answered yet.
    let unpaid: Vec<(i32, Option<i32>)> = bid::Entity::find()
        .select_only()
        .column(bid::Column::Units)
        .column(bid::Column::AwardUnits)
        .filter(bid::Column::LotId.eq(&l.id))
        .filter(bid::Column::Status.eq(BidStatus::Won.as_str()))
        .into_tuple()
        .all(&txn)
        .await?;
    let unpaid: u32 = unpaid
        .into_iter()
        .map(|(units, awarded)| awarded.unwrap_or(units).max(0) as u32)
        .sum();
    let paid = (l.units_sold_now.max(0) as u32).saturating_sub(unpaid);
    let left = spec.biddable_units().saturating_sub(paid);
    // Only the bids let go are locked: intake waits on the lot's lock meanwhile.
    let mut no_room = Condition::all().add(bid::Column::Units.gt(left as i32));
    if left > 0 {
        no_room = no_room.add(bid::Column::PartialOk.eq(false));
    }
    let bids = bid::Entity::find()
        .filter(bid::Column::LotId.eq(&l.id))
        .filter(bid::Column::Status.eq(BidStatus::Active.as_str()))
        .filter(no_room)
        .order_by_asc(bid::Column::Id)
        .lock_exclusive()
        .all(&txn)
        .await?;
    if bids.is_empty() {
        return Ok(0);
    }
    // A few statements for them all, not several per bid: the lot stays locked meanwhile.
    let reason = OutcomeReason::NoRoomLeft;
    let timeline = bids
        .iter()
        .map(|b| {
            debug_assert!(!room_for(b, left), "{} is let go with room for it", b.id);
            let card = if b.card_only_saved() {
                "Your saved card will not be used; nothing is charged."
            } else {
                "The hold on your card is released; nothing is charged."
            };
            let detail = format!("{} {card}", reason.en(b.units));
            (b.id.clone(), BidEventKind::NoRoomLeft, None, Some(detail))
        })
        .collect();
    events::record_many(&txn, timeline, now).await?;
    let releases = bids.iter().filter_map(|b| {
        b.payment_ref.clone().map(|hold| Job::Release {
            bid_id: b.id.clone(),
            hold,
        })
    });
    jobs::enqueue_many(&txn, releases, now).await?;
    // As after the award: lost while its hold is on the card, released once it is off.
    let let_go: Vec<bid::Model> = bids
        .into_iter()
        .map(|b| bid::Model {
            status: if b.payment_ref.is_some() {
                BidStatus::Lost
            } else {
                BidStatus::Released
            }
            .as_str()
            .to_owned(),
            outcome_reason: Some(reason.as_str().to_owned()),
            award_units: None,
            award_price_minor: None,
            standby_rank: None,
            updated_at: now,
            version: b.version + 1,
            ..b
        })
        .collect();
    for status in [BidStatus::Lost, BidStatus::Released] {
        let ids: Vec<String> = let_go
            .iter()
            .filter(|b| b.status == status.as_str())
            .map(|b| b.id.clone())
            .collect();
        for ids in ids.chunks(500) {
            let done = bid::Entity::update_many()
                .col_expr(bid::Column::Status, Expr::value(status.as_str()))
                .col_expr(bid::Column::OutcomeReason, Expr::value(reason.as_str()))
                .col_expr(bid::Column::AwardUnits, Expr::value(Option::<i32>::None))
                .col_expr(
                    bid::Column::AwardPriceMinor,
                    Expr::value(Option::<i64>::None),
                )
                .col_expr(bid::Column::StandbyRank, Expr::value(Option::<i32>::None))
                .col_expr(bid::Column::UpdatedAt, Expr::value(now))
                // Called by path: importing ExprTrait would make `i32::max` ambiguous.
                .col_expr(
                    bid::Column::Version,
                    sea_orm::sea_query::ExprTrait::add(Expr::col(bid::Column::Version), 1),
                )
                .filter(bid::Column::Id.is_in(ids.iter().cloned()))
                .exec(&txn)
                .await?;
            // Read under lock in this transaction: every one is still there.
            debug_assert_eq!(done.rows_affected, ids.len() as u64);
        }
    }
    // Told in one message insert per party size (the reason names the party).
    let endpoints = outbox::endpoints_of(&txn, &l.operator_id).await?;
    let mut by_party: BTreeMap<i32, Vec<(&bid::Model, &lot::Model)>> = BTreeMap::new();
    for b in &let_go {
        by_party.entry(b.units).or_default().push((b, &l));
    }
    for (party, told) in by_party {
        let why = Why::outcome(reason, party);
        outbox::enqueue_many(
            &txn,
            &told,
            &endpoints,
            Topic::NotSuccessful,
            Some(&why),
            now,
        )
        .await?;
    }
    txn.commit().await?;
    let released = let_go.len();
    tracing::info!(lot = %lot_id, released, "bids released: too few units left for their party");
    Ok(released)
}

/// Whether the bid can still win `left` units: its whole party, or part of it if the
/// traveller said a partial upgrade is fine.
fn room_for(b: &bid::Model, left: u32) -> bool {
    let party = b.units.max(1) as u32;
    party <= left || (b.partial_ok && left > 0)
}
