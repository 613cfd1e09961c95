//! Reminders before bidding closes: the worker schedules one `remind` job per lot once its
//! close is within the lead time; the job writes a reminder for every active bid whose
//! traveller has not unsubscribed, in one transaction.

use chrono::{DateTime, Duration, Utc};
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

/// What a reminder job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reminded {
    /// Reminders written for this many bids (none once bidding has closed).
    Written(usize),
    /// The close moved further than `lead` away since the job was queued: due again then.
    NotYet(DateTime<Utc>),
}

/// Writes the lot's reminders, once its close is within `lead` (each says the close as it is
/// when delivered; a close moved back in reach brings the job forward).
pub async fn remind(db: &Db, lot_id: &str, lead: Duration) -> Result<Reminded, DbErr> {
    let txn = write_txn(db).await?;
    let now = Utc::now();
    let lot = lot::Entity::find_by_id(lot_id.to_owned())
        .one(&txn)
        .await?
        .filter(|l| l.status == LotStatus::Open.as_str() && l.closes_at > now);
    let Some(lot) = lot else {
        txn.commit().await?;
        return Ok(Reminded::Written(0));
    };
    if lot.closes_at - lead > now {
        txn.commit().await?;
        return Ok(Reminded::NotYet(lot.closes_at - lead));
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
    Ok(Reminded::Written(written))
}
