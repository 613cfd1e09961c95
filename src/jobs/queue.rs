//! Durable jobs in the database: enqueued in the transaction that makes them due, claimed by
//! one process at a time with a lease, retried with backoff, never lost.
//!
//! Claiming: a worker takes as many due jobs as it has room for in one transaction, and
//! records how they ended in another, shared by every job that ended meanwhile. PostgreSQL
//! takes the rows `FOR UPDATE SKIP LOCKED`, so several processes share the queue without
//! waiting on each other; SQLite has one writer (`BEGIN IMMEDIATE`), which
//! serialises claims. A process that dies mid-job loses its lease: after `locked_until` the
//! job is claimable again, which is why every job is written to be safely re-run.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::Priority;
use crate::store::entities::job;
use crate::store::{Db, sqlite_write_turn, write_txn};

pub const PENDING: &str = "pending";
pub const RUNNING: &str = "running";
pub const DONE: &str = "done";
/// Failed too often: kept for an operator to see, not retried.
pub const PARKED: &str = "parked";

/// Attempts before a job is parked.
pub const MAX_ATTEMPTS: i32 = 12;

/// Schedules a job once: a second enqueue with the same `dedupe_key` changes nothing.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    kind: &str,
    priority: Priority,
    dedupe_key: &str,
    payload: &str,
    run_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    enqueue_many(
        db,
        vec![(kind, priority, dedupe_key.to_owned(), payload.to_owned())],
        run_at,
    )
    .await
}

/// Several `(kind, priority, dedupe key, payload)` jobs in one insert; a key already queued
/// is kept.
pub async fn enqueue_many(
    db: &impl ConnectionTrait,
    jobs: Vec<(&str, Priority, String, String)>,
    run_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    if jobs.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let rows: Vec<job::ActiveModel> = jobs
        .into_iter()
        .map(|(kind, priority, dedupe_key, payload)| job::ActiveModel {
            kind: Set(kind.to_owned()),
            priority: Set(priority as i16),
            dedupe_key: Set(dedupe_key),
            payload: Set(payload),
            status: Set(PENDING.to_owned()),
            run_at: Set(run_at),
            attempts: Set(0),
            locked_by: Set(None),
            locked_until: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .collect();
    for piece in crate::store::shape::pieces(rows) {
        job::Entity::insert_many(piece)
            .on_conflict_do_nothing_on([job::Column::DedupeKey])
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Moves a pending job to another time (a lot's close edited before it happened).
pub async fn reschedule(
    db: &impl ConnectionTrait,
    dedupe_key: &str,
    run_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    job::Entity::update_many()
        .col_expr(job::Column::RunAt, run_at.into())
        .col_expr(job::Column::UpdatedAt, Utc::now().into())
        .filter(job::Column::DedupeKey.eq(dedupe_key))
        .filter(job::Column::Status.eq(PENDING))
        .exec(db)
        .await?;
    Ok(())
}

/// Files a pending job as done without running it: what it was queued for was done by
/// other means.
pub async fn set_aside(db: &impl ConnectionTrait, dedupe_key: &str) -> Result<(), DbErr> {
    job::Entity::update_many()
        .col_expr(job::Column::Status, DONE.into())
        .col_expr(job::Column::UpdatedAt, Utc::now().into())
        .filter(job::Column::DedupeKey.eq(dedupe_key))
        .filter(job::Column::Status.eq(PENDING))
        .exec(db)
        .await?;
    Ok(())
}

/// Takes up to `limit` due jobs for `worker` for `lease`, in one transaction: pending ones
/// whose time has come, by [`Priority`] and then oldest first, then running ones whose
/// lease ran out.
pub async fn claim(
    db: &Db,
    worker: &str,
    lease: Duration,
    limit: u64,
) -> Result<Vec<job::Model>, DbErr> {
    let every = Room {
        levels: Priority::Deadline..=Priority::Messages,
        limit,
    };
    claim_into(db, worker, lease, &[every]).await
}

/// Room for jobs of some priority levels: a worker keeps the money's slots apart from the
/// messages', so that a slow provider does not hold up the news and a slow mail server not
/// the money.
#[derive(Debug, Clone)]
pub struct Room {
    pub levels: std::ops::RangeInclusive<Priority>,
    pub limit: u64,
}

/// [`claim`] into several rooms at once, in one transaction: up to each room's limit of jobs
/// of its levels.
pub async fn claim_into(
    db: &Db,
    worker: &str,
    lease: Duration,
    rooms: &[Room],
) -> Result<Vec<job::Model>, DbErr> {
    if rooms.iter().all(|r| r.limit == 0) {
        return Ok(Vec::new());
    }
    let now = Utc::now();
    let _turn = sqlite_write_turn(db).await;
    let txn = write_txn(db).await?;
    let mut due = Vec::new();
    for room in rooms.iter().filter(|r| r.limit > 0) {
        due.extend(due_in(&txn, room, now).await?);
    }
    if due.is_empty() {
        txn.commit().await?;
        return Ok(due);
    }
    let until = now + lease;
    job::Entity::update_many()
        .col_expr(job::Column::Status, RUNNING.into())
        .col_expr(job::Column::LockedBy, Some(worker.to_owned()).into())
        .col_expr(job::Column::LockedUntil, Some(until).into())
        .col_expr(
            job::Column::Attempts,
            // Called by path: importing ExprTrait would make `i64::min` below ambiguous.
            sea_orm::sea_query::ExprTrait::add(Expr::col(job::Column::Attempts), 1),
        )
        .col_expr(job::Column::UpdatedAt, now.into())
        .filter(job::Column::Id.is_in(crate::store::shape::padded(
            due.iter().map(|j| j.id).collect(),
        )))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(due
        .into_iter()
        .map(|j| job::Model {
            status: RUNNING.to_owned(),
            locked_by: Some(worker.to_owned()),
            locked_until: Some(until),
            attempts: j.attempts + 1,
            updated_at: now,
            ..j
        })
        .collect())
}

/// Due jobs of `room`'s levels, up to its limit, locked for the caller's transaction.
async fn due_in(
    txn: &impl ConnectionTrait,
    room: &Room,
    now: DateTime<Utc>,
) -> Result<Vec<job::Model>, DbErr> {
    let (low, high) = (*room.levels.start() as i16, *room.levels.end() as i16);
    let mut due: Vec<job::Model> = Vec::new();
    // One level at a time, each an equality on the (status, priority, run_at) index that is
    // read in claim order and stops at the limit: a range of levels made PostgreSQL sort
    // every pending job of the range on each claim.
    for level in low..=high {
        let left = room.limit - due.len() as u64;
        if left == 0 {
            break;
        }
        due.extend(
            job::Entity::find()
                .filter(job::Column::Status.eq(PENDING))
                .filter(job::Column::Priority.eq(level))
                .filter(job::Column::RunAt.lte(now))
                .order_by_asc(job::Column::RunAt)
                .order_by_asc(job::Column::Id)
                .limit(left)
                .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                .all(txn)
                .await?,
        );
    }
    if (due.len() as u64) < room.limit {
        let abandoned = job::Entity::find()
            .filter(job::Column::Status.eq(RUNNING))
            .filter(job::Column::Priority.between(low, high))
            .filter(job::Column::LockedUntil.lt(now))
            .order_by_asc(job::Column::RunAt)
            .limit(room.limit - due.len() as u64)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .all(txn)
            .await?;
        due.extend(abandoned);
    }
    Ok(due)
}

/// Puts a parked job back in the queue once it has rested for `rest`: used for closing
/// lots, which must happen eventually whatever failed before (holds wait on it).
pub async fn revive(
    db: &impl ConnectionTrait,
    dedupe_key: &str,
    rest: Duration,
) -> Result<(), DbErr> {
    let now = Utc::now();
    job::Entity::update_many()
        .col_expr(job::Column::Status, PENDING.into())
        .col_expr(job::Column::Attempts, 0.into())
        .col_expr(job::Column::RunAt, now.into())
        .col_expr(job::Column::UpdatedAt, now.into())
        .filter(job::Column::DedupeKey.eq(dedupe_key))
        .filter(job::Column::Status.eq(PARKED))
        .filter(job::Column::UpdatedAt.lt(now - rest))
        .exec(db)
        .await?;
    Ok(())
}

/// Extends the lease of a job this worker is running.
pub async fn renew(
    db: &impl ConnectionTrait,
    id: i64,
    worker: &str,
    lease: Duration,
) -> Result<(), DbErr> {
    job::Entity::update_many()
        .col_expr(job::Column::LockedUntil, Some(Utc::now() + lease).into())
        .filter(job::Column::Id.eq(id))
        .filter(job::Column::LockedBy.eq(worker))
        .filter(job::Column::Status.eq(RUNNING))
        .exec(db)
        .await?;
    Ok(())
}

/// How a run of a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It ran to the end.
    Done,
    /// Not due after all (a grace period still running): run it again at this time.
    NotYet(DateTime<Utc>),
    /// It failed: it runs again after a backoff that doubles per attempt (capped at an hour),
    /// or is parked after [`MAX_ATTEMPTS`].
    Failed(String),
    /// It cannot run at all (an unreadable payload): parked at once, for an operator to see.
    Unrunnable(String),
}

/// Records how `ended` jobs ended, in one transaction (a busy worker ends many at once).
pub async fn finish(db: &Db, ended: &[(job::Model, Outcome)]) -> Result<(), DbErr> {
    if ended.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let _turn = sqlite_write_turn(db).await;
    let txn = write_txn(db).await?;
    // In id order: two processes' batches hold different claims, but should they ever
    // overlap (an expired lease), rows locked in one order cannot deadlock on PostgreSQL.
    let mut ended: Vec<&(job::Model, Outcome)> = ended.iter().collect();
    ended.sort_by_key(|(job, _)| job.id);
    for (job, outcome) in ended {
        let (status, error, run_at) = match outcome {
            Outcome::Done => (DONE, None, job.run_at),
            Outcome::NotYet(at) => (PENDING, None, *at),
            Outcome::Unrunnable(error) => (PARKED, Some(error.as_str()), job.run_at),
            Outcome::Failed(error) => {
                let status = if job.attempts >= MAX_ATTEMPTS {
                    PARKED
                } else {
                    PENDING
                };
                let backoff = Duration::seconds((1i64 << job.attempts.clamp(0, 12)).min(3600));
                (status, Some(error.as_str()), now + backoff)
            }
        };
        // Only this claim may finish it: a job whose lease expired and was claimed again (by
        // another process, or by this one: the worker id is the same) belongs to that claim,
        // which counted one more attempt.
        job::Entity::update_many()
            .col_expr(job::Column::Status, status.into())
            .col_expr(job::Column::RunAt, run_at.into())
            .col_expr(job::Column::LockedBy, Option::<String>::None.into())
            .col_expr(
                job::Column::LockedUntil,
                Option::<DateTime<Utc>>::None.into(),
            )
            .col_expr(job::Column::LastError, error.map(str::to_owned).into())
            .col_expr(job::Column::UpdatedAt, now.into())
            .filter(job::Column::Id.eq(job.id))
            .filter(job::Column::LockedBy.eq(job.locked_by.clone()))
            .filter(job::Column::Attempts.eq(job.attempts))
            .exec(&txn)
            .await?;
    }
    txn.commit().await
}

/// Jobs not finished yet (pending or running), for tests and the operator's view.
pub async fn unfinished(db: &impl ConnectionTrait) -> Result<Vec<job::Model>, DbErr> {
    job::Entity::find()
        .filter(job::Column::Status.is_in([PENDING, RUNNING]))
        .order_by_asc(job::Column::RunAt)
        .all(db)
        .await
}
