//! Reminders before bidding closes: the worker schedules one `remind` job per lot once its
//! close is within the lead time; the job writes a reminder for every active bid whose
//! traveller has not unsubscribed, in one transaction.

use chrono::{Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Topic, outbox, unsubscribe};
use crate::domain::bid::BidStatus;
use crate::domain::lot::LotStatus;
use crate::jobs::{self, Job};
use crate::store::entities::{bid, job, lot};
use crate::store::{Db, write_txn};

/// Open lots closing within `lead` get their reminder job (once per lot: the key is the lot).
pub async fn schedule(db: &Db, lead: Duration) -> Result<(), DbErr> {
    let now = Utc::now();
    let due: Vec<String> = lot::Entity::find()
        .select_only()
        .column(lot::Column::Id)
        .filter(lot::Column::Status.eq(LotStatus::Open.as_str()))
        .filter(lot::Column::ClosesAt.gt(now))
        .filter(lot::Column::ClosesAt.lte(now + lead))
        // Lots already given their job left out here, not after the limit: with more than a
        // batch in the window, the same first batch would come back every time and later lots
        // would never be reminded. Earliest close first.
        .filter(Expr::cust(
            "NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.dedupe_key = 'remind:' || lots.id)",
        ))
        .order_by_asc(lot::Column::ClosesAt)
        .limit(500)
        .into_tuple()
        .all(db)
        .await?;
    if due.is_empty() {
        return Ok(());
    }
    // Lots stay in the window for hours and the worker looks every few hundred milliseconds:
    // read which already have their job rather than writing (and locking) each time.
    let keys: Vec<String> = due.iter().map(|id| format!("remind:{id}")).collect();
    let scheduled: std::collections::HashSet<String> = job::Entity::find()
        .select_only()
        .column(job::Column::DedupeKey)
        .filter(job::Column::DedupeKey.is_in(keys))
        .into_tuple::<String>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    for lot_id in due {
        if !scheduled.contains(&format!("remind:{lot_id}")) {
            jobs::enqueue(db, Job::Remind { lot_id }, now).await?;
        }
    }
    Ok(())
}

/// Writes the lot's reminders (nothing once bidding has closed).
pub async fn remind(db: &Db, lot_id: &str) -> Result<usize, DbErr> {
    let txn = write_txn(db).await?;
    let now = Utc::now();
    let open = lot::Entity::find_by_id(lot_id.to_owned())
        .one(&txn)
        .await?
        .is_some_and(|l| l.status == LotStatus::Open.as_str() && l.closes_at > now);
    if !open {
        txn.commit().await?;
        return Ok(0);
    }
    let bids: Vec<(String, String)> = bid::Entity::find()
        .select_only()
        .column(bid::Column::Id)
        .column(bid::Column::BookingId)
        .filter(bid::Column::LotId.eq(lot_id))
        .filter(bid::Column::Status.eq(BidStatus::Active.as_str()))
        .into_tuple()
        .all(&txn)
        .await?;
    let mut written = 0;
    for (bid_id, booking_id) in bids {
        if unsubscribe::is_unsubscribed(&txn, &booking_id).await? {
            continue;
        }
        outbox::enqueue(&txn, &bid_id, Topic::Reminder, None, now).await?;
        written += 1;
    }
    txn.commit().await?;
    Ok(written)
}
