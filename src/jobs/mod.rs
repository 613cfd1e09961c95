//! Background work, durable in the database: closing lots at their deadline, charging
//! winners, releasing holds, moving the standby list up, refunds, settling.
//!
//! Every job re-reads the state it acts on and does nothing when the work is already done,
//! so running one twice (after a crash, or on two processes) is harmless; every payment call
//! carries an idempotency key derived from the bid, so the provider does it once too.

pub mod queue;
mod worker;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};
use serde::{Deserialize, Serialize};

use crate::notifications::why::Why;

pub use worker::Worker;

/// What a job does, stored as its JSON payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Close a lot at its deadline and award it.
    CloseLot { lot_id: String },
    /// Take the money of a winner (capture the hold, or charge the saved card).
    Charge { bid_id: String },
    /// Finish an "upgrade now" whose capture got no clear answer: charged as a winner is,
    /// and if the bank declines, the purchase is undone and the bid put back as it was.
    CaptureBoughtNow { bid_id: String, purchase: Purchase },
    /// Release a hold of a bid that did not win (or was withdrawn, or is no longer needed).
    /// The hold is named: after a re-bid the bid holds a newer one, which must stay.
    Release { bid_id: String, hold: String },
    /// Release a hold that no bid records (a crash came between a card call and its write;
    /// `reconcile` finds it). The job row is its record: there is no bid to write it on.
    /// `tell` names the traveller to tell, from the hold's metadata (holds taken before
    /// that metadata existed have none, and only the operator's reconcile report says so).
    ReleaseUnrecorded {
        hold: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tell: Option<UnrecordedBid>,
    },
    /// Release the holds of every losing bid of a lot that still has one, in batches.
    ReleaseLosers { lot_id: String },
    /// Release the active bids of an open lot whose party no longer fits the units left
    /// (sold by "upgrade now", capacity lowered, entitlements raised): they cannot win, and
    /// a traveller must not keep a hold for an upgrade that cannot be had.
    ReleaseWithoutRoom { lot_id: String },
    /// A winner's payment is still failing after the grace period: give the units to standby.
    Reassign { bid_id: String, attempt: u32 },
    /// Give back what was taken (lot cancelled or capacity cut after the award, a capture
    /// landing after the upgrade stopped standing, a charge reconcile finds in error).
    /// `reason` is `why` in English; jobs queued before `why` was kept have only `reason`.
    Refund {
        bid_id: String,
        reason: String,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "crate::notifications::why::read_leniently"
        )]
        why: Option<Why>,
    },
    /// Mark the lot settled once every payment is final.
    Settle { lot_id: String },
    /// Deliver one outbox message (email or webhook), retrying with backoff.
    Deliver { outbox_id: i64 },
    /// Deliver the messages one transaction wrote, each retried with its own backoff: a job
    /// row per message cost about 15% of SQLite's bid intake.
    DeliverMany { outbox_ids: Vec<i64> },
    /// Write the lot's reminders before bidding closes.
    Remind { lot_id: String },
    /// Erase personal data past each operator's retention period.
    PurgeExpired,
    /// Ask the provider for the holds no record names, and queue their release: a traveller
    /// whose offer a crash lost must not wait for an operator to run `surclass reconcile`.
    FindUnrecordedHolds,
}

/// The offer a hold was taken for whose bid was never stored: what the traveller is told
/// when the hold is released, so that they know to bid again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnrecordedBid {
    pub bid_id: String,
    pub lot_id: String,
    pub booking_id: String,
    pub units: u32,
    /// What was held: the offer's total.
    pub total_minor: i64,
    pub currency: String,
    /// When the provider took the hold: when the traveller made the offer. Not in jobs
    /// queued before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_at: Option<DateTime<Utc>>,
}

/// An "upgrade now" purchase whose capture is left to a job: the capture's idempotency key
/// (which purchase of the bid it is) and what the bid was before it, if it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchase {
    pub key: String,
    pub before: Option<BidBefore>,
}

/// What a bid was before an "upgrade now" replaced it: put back if the purchase's payment
/// fails while bidding is open, and its hold released once the purchase is paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidBefore {
    pub status: String,
    pub amount_minor: i64,
    pub units: i32,
    pub payment_ref: Option<String>,
    pub submitted_at: DateTime<Utc>,
}

/// How often the worker looks for holds that no record names. Each look lists what the
/// provider still holds from the last week (on Stripe, a page of 100 per call).
pub const FIND_UNRECORDED_EVERY: chrono::Duration = chrono::Duration::minutes(15);

/// Which due jobs are claimed first. In a deadline rush thousands of confirmations are
/// queued before the close; the close, the charges and the released holds must not wait for
/// them, nor must the news of the outcome. Stored as a number, lower first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Closing lots and moving money.
    Deadline = 0,
    /// Delivering the messages that tell a traveller what came of their bid: given by the
    /// outbox from the message's topic, not by the job's kind.
    Outcomes = 1,
    /// Other emails and webhooks, reminders and the retention purge.
    Messages = 2,
}

impl Job {
    pub fn priority(&self) -> Priority {
        match self {
            Job::Deliver { .. }
            | Job::DeliverMany { .. }
            | Job::Remind { .. }
            | Job::PurgeExpired
            | Job::FindUnrecordedHolds => Priority::Messages,
            _ => Priority::Deadline,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Job::CloseLot { .. } => "close_lot",
            Job::Charge { .. } => "charge",
            Job::CaptureBoughtNow { .. } => "capture_bought_now",
            Job::Release { .. } => "release",
            Job::ReleaseUnrecorded { .. } => "release_unrecorded",
            Job::ReleaseLosers { .. } => "release_losers",
            Job::ReleaseWithoutRoom { .. } => "release_without_room",
            Job::Reassign { .. } => "reassign",
            Job::Refund { .. } => "refund",
            Job::Settle { .. } => "settle",
            Job::Deliver { .. } => "deliver",
            Job::DeliverMany { .. } => "deliver_many",
            Job::Remind { .. } => "remind",
            Job::PurgeExpired => "purge_expired",
            Job::FindUnrecordedHolds => "find_unrecorded_holds",
        }
    }

    /// A refund of `bid_id`, telling the traveller `why`.
    pub fn refund(bid_id: &str, why: Why) -> Job {
        Job::Refund {
            bid_id: bid_id.to_owned(),
            reason: why.en(),
            why: Some(why),
        }
    }

    /// Closing is scheduled once per lot; other jobs may legitimately recur (a second
    /// hold to release after a re-bid), and each re-checks state, so they get a unique key.
    fn dedupe_key(&self) -> String {
        match self {
            Job::CloseLot { lot_id } => format!("close_lot:{lot_id}"),
            Job::Remind { lot_id } => format!("remind:{lot_id}"),
            // At most one purge an hour, whichever process schedules it.
            Job::PurgeExpired => format!("purge_expired:{}", Utc::now().format("%Y%m%d%H")),
            // One release per hold, however many looks find it before it has run.
            Job::ReleaseUnrecorded { hold, .. } => format!("release_unrecorded:{hold}"),
            // At most one look each FIND_UNRECORDED_EVERY, whichever process schedules it.
            Job::FindUnrecordedHolds => format!(
                "find_unrecorded_holds:{}",
                Utc::now().timestamp() / FIND_UNRECORDED_EVERY.num_seconds()
            ),
            // One per purchase: queued with it, brought forward or set aside by its request.
            Job::CaptureBoughtNow { purchase, .. } => {
                format!("capture_bought_now:{}", purchase.key)
            }
            other => format!("{}:{}", other.kind(), uuid::Uuid::new_v4().simple()),
        }
    }
}

/// Brings a queued job forward to `run_at` if it has not run yet. Only for a job with a key
/// of its own (a purchase's capture, a lot's reminder); any other is a new job each time.
pub async fn bring_forward(
    db: &impl ConnectionTrait,
    job: &Job,
    run_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    queue::reschedule(db, &job.dedupe_key(), run_at).await
}

/// Files a queued job as done without running it, as [`bring_forward`] finds it.
pub async fn set_aside(db: &impl ConnectionTrait, job: &Job) -> Result<(), DbErr> {
    queue::set_aside(db, &job.dedupe_key()).await
}

/// Schedules `jobs`, all to run at `run_at`, in the caller's transaction, in one statement.
pub async fn enqueue_many(
    db: &impl ConnectionTrait,
    jobs: impl IntoIterator<Item = Job>,
    run_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    enqueue_many_with(db, jobs, None, run_at).await
}

/// [`enqueue_many`] claimed at `priority` rather than at each job's own: the outbox knows
/// which deliveries carry the news of an outcome.
pub async fn enqueue_many_at(
    db: &impl ConnectionTrait,
    jobs: impl IntoIterator<Item = Job>,
    priority: Priority,
    run_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    enqueue_many_with(db, jobs, Some(priority), run_at).await
}

async fn enqueue_many_with(
    db: &impl ConnectionTrait,
    jobs: impl IntoIterator<Item = Job>,
    priority: Option<Priority>,
    run_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let rows: Vec<_> = jobs
        .into_iter()
        .map(|job| {
            let payload = serde_json::to_string(&job).expect("jobs serialise");
            let priority = priority.unwrap_or_else(|| job.priority());
            (job.kind(), priority, job.dedupe_key(), payload)
        })
        .collect();
    queue::enqueue_many(db, rows, run_at).await
}

/// Schedules `job` now; if the same job (by its key) was parked, it is tried again from its
/// first attempt: a repair asked for again is never refused because an earlier one gave up.
pub async fn enqueue_or_revive(db: &impl ConnectionTrait, job: Job) -> Result<(), DbErr> {
    let key = job.dedupe_key();
    enqueue(db, job, Utc::now()).await?;
    queue::revive(db, &key, chrono::Duration::zero()).await
}

/// Schedules `job` to run at `run_at`, in the caller's transaction.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    job: Job,
    run_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let payload = serde_json::to_string(&job).expect("jobs serialise");
    let (kind, priority) = (job.kind(), job.priority());
    queue::enqueue(db, kind, priority, &job.dedupe_key(), &payload, run_at).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_queued_before_travellers_were_told_still_reads() {
        let stored = r#"{"kind":"release_unrecorded","hold":"pi_1"}"#;
        let job: Job = serde_json::from_str(stored).unwrap();
        assert_eq!(
            job,
            Job::ReleaseUnrecorded {
                hold: "pi_1".into(),
                tell: None
            }
        );
        // And one with nobody to tell is stored as before, for a node of the earlier release.
        assert_eq!(serde_json::to_string(&job).unwrap(), stored);
    }

    #[test]
    fn a_refund_reads_whatever_release_queued_it() {
        // Queued before the cause was kept: the English reason alone.
        let before =
            r#"{"kind":"refund","bid_id":"bid_1","reason":"The operator cancelled this upgrade."}"#;
        let job: Job = serde_json::from_str(before).unwrap();
        assert_eq!(
            job,
            Job::Refund {
                bid_id: "bid_1".into(),
                reason: "The operator cancelled this upgrade.".into(),
                why: None
            }
        );
        // Queued by a later release with a cause this one does not know: refunded all the same.
        let later =
            r#"{"kind":"refund","bid_id":"bid_1","reason":"Gone.","why":{"kind":"meteor"}}"#;
        let job: Job = serde_json::from_str(later).unwrap();
        assert!(matches!(job, Job::Refund { why: None, .. }), "{job:?}");
        // And a cause round-trips.
        let job = Job::refund("bid_1", Why::ChargedInError);
        let stored = serde_json::to_string(&job).unwrap();
        assert_eq!(serde_json::from_str::<Job>(&stored).unwrap(), job);
    }
}
