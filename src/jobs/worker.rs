//! The worker: finds lots whose deadline has passed, claims due jobs and runs them, a few
//! at a time (bounded, so charging a big lot stays inside the provider's rate limit), with
//! slots of their own for messages, so that neither waits on the other's slow receiver.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use futures_util::FutureExt;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};
use tokio::sync::{Semaphore, mpsc, watch};

use super::{Job, Priority, queue};
use crate::domain::lot::LotStatus;
use crate::notifications::dispatch::Notifier;
use crate::notifications::reminders;
use crate::payments::PaymentGateway;
use crate::services::award::{self, CloseOutcome};
use crate::services::data_rights;
use crate::services::reconcile;
use crate::services::room;
use crate::services::settlement;
use crate::store::Db;
use crate::store::entities::{job, lot};

/// How long a claimed job is ours before another process may take it over. Kept short so a
/// killed process's jobs are picked up within seconds; a live one renews it while it works.
const LEASE_SECONDS: i64 = 10;

/// How many jobs `run_until_idle` claims and records at a time.
const IDLE_BATCH: u64 = 32;

/// How long a close that kept failing stays parked before it is tried again.
const REVIVE_CLOSE_AFTER: Duration = Duration::minutes(10);

/// How often the loop looks for lots past their deadline and reminders to write, and how
/// long it waits for work when nothing is running.
const SCHEDULE_EVERY: StdDuration = StdDuration::from_millis(250);

/// Renews the leases of claimed jobs until dropped, however the run ends: a cancelled caller
/// must not keep jobs claimed that nobody runs.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Clone)]
pub struct Worker {
    db: Db,
    gateway: Arc<dyn PaymentGateway>,
    id: String,
    /// Slots for the deadline's work: closing, charging, releasing, refunding.
    concurrency: usize,
    /// Slots for messages, reminders and the purge.
    delivery_concurrency: usize,
    /// Sends messages; a process without one leaves `deliver` jobs to one that has it.
    notifier: Option<Arc<Notifier>>,
}

impl Worker {
    pub fn new(db: Db, gateway: Arc<dyn PaymentGateway>, concurrency: usize) -> Self {
        let id = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        Self {
            db,
            gateway,
            id,
            concurrency: concurrency.max(1),
            delivery_concurrency: concurrency.max(1),
            notifier: None,
        }
    }

    /// Messages get this many slots of their own (by default as many as the money).
    pub fn with_delivery_slots(mut self, slots: usize) -> Self {
        self.delivery_concurrency = slots.max(1);
        self
    }

    /// This worker also delivers messages, writes reminders and purges expired data.
    pub fn with_notifier(mut self, notifier: Arc<Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Runs until `stop` turns true; in-flight jobs finish first.
    ///
    /// The loop wakes as soon as a job ends, records every job that ended since its last
    /// turn in one transaction and claims as many due jobs as there is room for in another:
    /// short jobs (a message to deliver) then cost a fraction of a transaction each instead
    /// of waiting for a timer.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let money = Arc::new(Semaphore::new(self.concurrency));
        let messages = Arc::new(Semaphore::new(self.delivery_concurrency));
        let (ended_tx, mut ended_rx) = mpsc::unbounded_channel();
        let mut ended = Vec::new();
        let mut next_schedule = Instant::now();
        let mut looked_for_holds = None;
        loop {
            while let Ok(one) = ended_rx.try_recv() {
                ended.push(one);
            }
            self.record(&mut ended).await;
            if *stop.borrow() {
                break;
            }
            if Instant::now() >= next_schedule {
                if let Err(e) = self.schedule_due_lots().await {
                    tracing::warn!(error = %e, "could not schedule due lots");
                }
                if let Err(e) = self.schedule_notifications().await {
                    tracing::warn!(error = %e, "could not schedule reminders");
                }
                // Once a period per process; the key makes it once across processes.
                let period = Utc::now().timestamp() / super::FIND_UNRECORDED_EVERY.num_seconds();
                if looked_for_holds != Some(period) {
                    match super::enqueue(&self.db, Job::FindUnrecordedHolds, Utc::now()).await {
                        Ok(()) => looked_for_holds = Some(period),
                        Err(e) => {
                            tracing::warn!(error = %e, "could not schedule the look for unrecorded holds")
                        }
                    }
                }
                next_schedule = Instant::now() + SCHEDULE_EVERY;
            }
            let rooms = [
                queue::Room {
                    levels: Priority::Deadline..=Priority::Deadline,
                    limit: money.available_permits() as u64,
                },
                queue::Room {
                    levels: Priority::Outcomes..=Priority::Messages,
                    limit: messages.available_permits() as u64,
                },
            ];
            let lease = Duration::seconds(LEASE_SECONDS);
            match queue::claim_into(&self.db, &self.id, lease, &rooms).await {
                Ok(jobs) => {
                    for job in jobs {
                        let slots = if job.priority == Priority::Deadline as i16 {
                            &money
                        } else {
                            &messages
                        };
                        let permit = slots
                            .clone()
                            .try_acquire_owned()
                            .expect("claimed no more jobs than free permits");
                        let (worker, ended_tx) = (self.clone(), ended_tx.clone());
                        tokio::spawn(async move {
                            let outcome = worker.execute(job).await;
                            // Room first, then the wake-up: the loop claims into it at once.
                            drop(permit);
                            let _ = ended_tx.send(outcome);
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not claim jobs"),
            }
            tokio::select! {
                Some(one) = ended_rx.recv() => ended.push(one),
                _ = tokio::time::sleep(SCHEDULE_EVERY) => {}
                _ = stop.changed() => {}
            }
        }
        // Let running jobs finish, recording each as it ends (a long one must not keep the
        // short ones' leases running out): the channel closes when the last has reported.
        drop(ended_tx);
        while let Some(one) = ended_rx.recv().await {
            ended.push(one);
            while let Ok(more) = ended_rx.try_recv() {
                ended.push(more);
            }
            self.record(&mut ended).await;
        }
    }

    /// Runs every job that is due now, one after another, until none is left; returns how
    /// many ran. For tests and the command line, where each step should be deterministic.
    ///
    /// Jobs are claimed and recorded a batch at a time, and due lots and reminders are looked
    /// for when the queue runs dry: after a big close, tens of thousands of jobs would
    /// otherwise pay for three transactions and three look-ups each.
    pub async fn run_until_idle(&self) -> Result<usize, DbErr> {
        let lease = Duration::seconds(LEASE_SECONDS);
        let mut count = 0;
        loop {
            let mut batch = queue::claim(&self.db, &self.id, lease, IDLE_BATCH).await?;
            if batch.is_empty() {
                self.schedule_due_lots().await?;
                self.schedule_notifications().await?;
                batch = queue::claim(&self.db, &self.id, lease, IDLE_BATCH).await?;
                if batch.is_empty() {
                    return Ok(count);
                }
            }
            // The jobs waiting their turn keep their claim while a slow one runs.
            let heartbeat = self.keep_claimed(batch.iter().map(|j| j.id).collect());
            let mut ended = Vec::with_capacity(batch.len());
            for job in batch {
                ended.push(self.execute(job).await);
            }
            drop(heartbeat);
            queue::finish(&self.db, &ended).await?;
            count += ended.len();
        }
    }

    /// Writes how jobs ended and empties `ended`. Should that fail, they stay in `ended` for
    /// the next turn; should the process stop first, their leases run out and they run
    /// again: every job is safe to repeat.
    async fn record(&self, ended: &mut Vec<(job::Model, queue::Outcome)>) {
        match queue::finish(&self.db, ended).await {
            Ok(()) => ended.clear(),
            Err(e) => {
                tracing::error!(jobs = ended.len(), error = %e, "job outcomes not recorded yet")
            }
        }
    }

    /// Every open lot past its deadline gets its close job (once: the key is per lot).
    ///
    /// A lot stays due until its close has run, which may wait behind other lots' closes and
    /// charges: read which closes are queued rather than writing for every due lot on every
    /// turn.
    async fn schedule_due_lots(&self) -> Result<(), DbErr> {
        let now = Utc::now();
        let due: Vec<String> = lot::Entity::find()
            .select_only()
            .column(lot::Column::Id)
            .filter(lot::Column::Status.eq(LotStatus::Open.as_str()))
            .filter(lot::Column::ClosesAt.lte(now))
            .limit(500)
            .into_tuple()
            .all(&self.db)
            .await?;
        if due.is_empty() {
            return Ok(());
        }
        let closes: Vec<Job> = due
            .into_iter()
            .map(|lot_id| Job::CloseLot { lot_id })
            .collect();
        let queued: HashMap<String, (String, DateTime<Utc>)> = job::Entity::find()
            .select_only()
            .columns([
                job::Column::DedupeKey,
                job::Column::Status,
                job::Column::UpdatedAt,
            ])
            .filter(job::Column::DedupeKey.is_in(closes.iter().map(Job::dedupe_key)))
            .into_tuple::<(String, String, DateTime<Utc>)>()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|(key, status, updated)| (key, (status, updated)))
            .collect();
        let mut missing = Vec::new();
        for close in closes {
            let key = close.dedupe_key();
            match queued.get(&key) {
                None => missing.push(close),
                // A close that kept failing is tried again every 10 minutes, never abandoned.
                Some((status, parked_at))
                    if status == queue::PARKED && *parked_at < now - REVIVE_CLOSE_AFTER =>
                {
                    queue::revive(&self.db, &key, REVIVE_CLOSE_AFTER).await?
                }
                // Pending or running: it will run. Done: it ran (the key is per lot).
                Some(_) => {}
            }
        }
        super::enqueue_many(&self.db, missing, now).await
    }

    /// Reminders for lots closing within the lead time, and the hourly purge (retention, and
    /// idempotency answers past a day).
    async fn schedule_notifications(&self) -> Result<(), DbErr> {
        let Some(notifier) = &self.notifier else {
            return Ok(());
        };
        reminders::schedule(&self.db, notifier.settings().reminder_lead).await?;
        let purge = Job::PurgeExpired;
        // Once an hour (the key names the hour): look before writing, as for reminders.
        let scheduled = job::Entity::find()
            .filter(job::Column::DedupeKey.eq(purge.dedupe_key()))
            .one(&self.db)
            .await?
            .is_some();
        if scheduled {
            return Ok(());
        }
        super::enqueue(&self.db, purge, Utc::now()).await
    }

    /// Renews the lease of these claimed jobs until the returned heartbeat is dropped.
    fn keep_claimed(&self, ids: Vec<i64>) -> Heartbeat {
        let (db, worker) = (self.db.clone(), self.id.clone());
        Heartbeat(tokio::spawn(async move {
            loop {
                tokio::time::sleep(StdDuration::from_secs((LEASE_SECONDS / 3) as u64)).await;
                for &id in &ids {
                    // A failed renewal is retried at the next beat; the lease has room for it.
                    if let Err(e) =
                        queue::renew(&db, id, &worker, Duration::seconds(LEASE_SECONDS)).await
                    {
                        tracing::warn!(job = id, error = %e, "lease not renewed");
                    }
                }
            }
        }))
    }

    async fn execute(&self, row: job::Model) -> (job::Model, queue::Outcome) {
        let job: Job = match serde_json::from_str(&row.payload) {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(job = row.id, error = %e, "unreadable job parked");
                return (row, queue::Outcome::Unrunnable(e.to_string()));
            }
        };
        // A slow provider call must not let another process start the same job.
        let heartbeat = self.keep_claimed(vec![row.id]);
        // A panic in a job must not leave it "running" with a lease renewed forever.
        let result = match std::panic::AssertUnwindSafe(self.perform(&job))
            .catch_unwind()
            .await
        {
            Ok(result) => result,
            Err(_) => Err("the job panicked".to_owned()),
        };
        drop(heartbeat);
        let outcome = match result {
            Ok(Some(later)) => queue::Outcome::NotYet(later),
            Ok(None) => queue::Outcome::Done,
            Err(e) => {
                tracing::warn!(job = row.id, kind = job.kind(), attempt = row.attempts, error = %e, "job failed, will retry");
                queue::Outcome::Failed(e)
            }
        };
        (row, outcome)
    }

    /// `Ok(Some(t))`: some are still pending, run again at `t`.
    async fn deliver(&self, outbox_ids: &[i64]) -> Result<Option<chrono::DateTime<Utc>>, String> {
        match &self.notifier {
            Some(notifier) => notifier
                .deliver(outbox_ids)
                .await
                .map_err(|e| e.to_string()),
            // Not this process's work: a serving process with a notifier takes it.
            None => Ok(Some(Utc::now() + Duration::minutes(1))),
        }
    }

    /// `Ok(Some(t))`: not due yet, run again at `t`.
    async fn perform(&self, job: &Job) -> Result<Option<chrono::DateTime<Utc>>, String> {
        let gateway = self.gateway.as_ref();
        match job {
            Job::CloseLot { lot_id } => match award::close_and_award(&self.db, lot_id).await {
                Ok(CloseOutcome::NotDue(at)) => Ok(Some(at)),
                Ok(outcome) => {
                    tracing::info!(lot = %lot_id, ?outcome, "lot closed");
                    Ok(None)
                }
                Err(e) => Err(e.to_string()),
            },
            Job::Charge { bid_id } => settlement::charge(&self.db, gateway, bid_id, None)
                .await
                .map(|_| None)
                .map_err(|e| e.to_string()),
            Job::CaptureBoughtNow { bid_id, purchase } => {
                settlement::charge(&self.db, gateway, bid_id, Some(purchase))
                    .await
                    .map(|_| None)
                    .map_err(|e| e.to_string())
            }
            Job::ReleaseLosers { lot_id } => settlement::release_losers(&self.db, gateway, lot_id)
                .await
                .map(|_| None)
                .map_err(|e| e.to_string()),
            Job::ReleaseWithoutRoom { lot_id } => room::release_without_room(&self.db, lot_id)
                .await
                .map(|_| None)
                .map_err(|e| e.to_string()),
            Job::Release { bid_id, hold } => settlement::release(&self.db, gateway, bid_id, hold)
                .await
                .map(|_| None)
                .map_err(|e| e.to_string()),
            Job::ReleaseUnrecorded { hold, tell } => {
                settlement::release_unrecorded(&self.db, gateway, hold, tell.as_ref())
                    .await
                    .map(|_| None)
                    .map_err(|e| e.to_string())
            }
            Job::Reassign { bid_id, attempt } => settlement::reassign(&self.db, bid_id, *attempt)
                .await
                .map(|_| None)
                .map_err(|e| e.to_string()),
            Job::Refund {
                bid_id,
                reason,
                why,
            } => settlement::refund(&self.db, gateway, bid_id, reason, why.as_ref())
                .await
                .map(|_| None)
                .map_err(|e| e.to_string()),
            Job::Settle { lot_id } => settlement::settle(&self.db, lot_id)
                .await
                .map(|_| None)
                .map_err(|e| e.to_string()),
            Job::Deliver { outbox_id } => self.deliver(&[*outbox_id]).await,
            Job::DeliverMany { outbox_ids } => self.deliver(outbox_ids).await,
            Job::Remind { lot_id } => {
                // A process without notifications (a CLI run) takes the default lead time.
                let lead = self.notifier.as_ref().map_or_else(
                    || crate::notifications::dispatch::NotifySettings::default().reminder_lead,
                    |n| n.settings().reminder_lead,
                );
                match reminders::remind(&self.db, lot_id, lead).await {
                    Ok(reminders::Reminded::NotYet(at)) => Ok(Some(at)),
                    Ok(reminders::Reminded::Written(_)) => Ok(None),
                    Err(e) => Err(e.to_string()),
                }
            }
            // Each purge runs whatever became of the other.
            Job::PurgeExpired => {
                let now = Utc::now();
                let purged = data_rights::purge_expired(&self.db, now).await;
                let forgotten = crate::store::idempotency::forget_old(&self.db, now).await;
                if let Ok(purged @ 1..) = purged {
                    tracing::info!(purged, "personal data past retention erased");
                }
                match &forgotten {
                    Ok(forgotten) => {
                        tracing::debug!(forgotten, "idempotency answers older than a day forgotten")
                    }
                    Err(e) => tracing::warn!(error = %e, "idempotency answers not forgotten"),
                }
                purged
                    .and(forgotten)
                    .map(|_| None)
                    .map_err(|e| e.to_string())
            }
            // Not retried: a provider that cannot list its holds now is asked again at the
            // next period, rather than by retries piling up beside the new looks.
            Job::FindUnrecordedHolds => {
                if let Err(e) =
                    reconcile::release_unrecorded_holds(&self.db, gateway, Utc::now()).await
                {
                    tracing::warn!(error = %e, "could not look for holds no record names");
                }
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

    use super::*;
    use crate::jobs::Priority;
    use crate::payments::simulated::SimulatedGateway;
    use crate::payments::{
        Capture, ChargeOutcome, ChargeRequest, HoldOutcome, HoldRequest, IdempotencyKey, OpenHold,
        PaymentError, PaymentEvent, PaymentRef, PaymentState, Refund, SetupOutcome, SetupRef,
        SetupRequest, WebhookError,
    };

    async fn count(db: &Db, status: &str, kind: &str) -> u64 {
        job::Entity::find()
            .filter(job::Column::Status.eq(status))
            .filter(job::Column::Kind.eq(kind))
            .count(db)
            .await
            .unwrap()
    }

    async fn status_of(db: &Db, id: i64) -> String {
        job::Entity::find_by_id(id)
            .one(db)
            .await
            .unwrap()
            .unwrap()
            .status
    }

    /// A migrated SQLite store in a directory removed when the test drops it.
    async fn fresh_db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let db = crate::store::connect(&url, 4).await.unwrap();
        crate::store::migrate(&db).await.unwrap();
        (dir, db)
    }

    /// Many short jobs at once, as after a big lot closes: the loop runs them a few at a
    /// time, and every one ends recorded as it ended: done, due again later, or parked.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_loop_runs_a_burst_of_jobs_and_records_how_each_ended() {
        let (_dir, db) = fresh_db().await;
        let now = Utc::now();
        // Settling a lot that is not there: nothing to do, done.
        let settles = (0..30).map(|i| Job::Settle {
            lot_id: format!("lot_gone_{i}"),
        });
        // A message for a process without a notifier: left for one that has it, a minute on.
        let deliveries = (0..10).map(|i| Job::Deliver { outbox_id: i });
        crate::jobs::enqueue_many(&db, settles.chain(deliveries), now)
            .await
            .unwrap();
        queue::enqueue(
            &db,
            "settle",
            Priority::Deadline,
            "broken",
            "{not json",
            now,
        )
        .await
        .unwrap();

        let gateway: Arc<dyn PaymentGateway> = Arc::new(SimulatedGateway::new(db.clone()));
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(Worker::new(db.clone(), gateway, 4).run(stopped));
        let give_up = Instant::now() + StdDuration::from_secs(60);
        while count(&db, queue::DONE, "settle").await < 30
            || count(&db, queue::PARKED, "settle").await < 1
            || job::Entity::find()
                .filter(job::Column::Kind.eq("deliver"))
                .filter(job::Column::Attempts.eq(1))
                .filter(job::Column::Status.eq(queue::PENDING))
                .count(&db)
                .await
                .unwrap()
                < 10
        {
            assert!(Instant::now() < give_up, "the burst did not drain");
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
        stop.send(true).unwrap();
        running.await.unwrap();

        let all = job::Entity::find().all(&db).await.unwrap();
        // The burst, and the loop's own look for holds that no record names (two, should
        // the test straddle the look's period).
        let looks = all
            .iter()
            .filter(|j| j.kind == "find_unrecorded_holds")
            .count();
        assert!((1..=2).contains(&looks), "{looks} looks");
        assert_eq!(all.len(), 41 + looks);
        assert!(
            all.iter()
                .all(|j| j.locked_by.is_none() && j.status != queue::RUNNING)
        );
        for j in all.iter().filter(|j| j.kind == "deliver") {
            assert!(j.run_at > now + Duration::seconds(50), "{j:?}");
        }
        let broken = all.iter().find(|j| j.dedupe_key == "broken").unwrap();
        assert_eq!(broken.status, queue::PARKED);
        assert!(broken.last_error.is_some());
        assert!(
            all.iter()
                .filter(|j| j.kind == "settle" && j.dedupe_key != "broken")
                .all(|j| j.status == queue::DONE && j.attempts == 1)
        );
    }

    /// A run outlived its lease and the job was claimed again (by the same worker): the first
    /// run's late outcome must not end the second run's claim.
    #[tokio::test]
    async fn a_late_outcome_does_not_end_a_newer_claim_of_the_same_job() {
        let (_dir, db) = fresh_db().await;
        let lease = Duration::seconds(10);
        let settle = Job::Settle {
            lot_id: "lot_gone".into(),
        };
        crate::jobs::enqueue(&db, settle, Utc::now()).await.unwrap();
        let first = queue::claim(&db, "w1", lease, 1)
            .await
            .unwrap()
            .pop()
            .unwrap();
        job::Entity::update_many()
            .col_expr(
                job::Column::LockedUntil,
                Some(Utc::now() - Duration::seconds(1)).into(),
            )
            .exec(&db)
            .await
            .unwrap();
        let second = queue::claim(&db, "w1", lease, 1)
            .await
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(
            (first.id, first.attempts, second.attempts),
            (second.id, 1, 2)
        );

        queue::finish(&db, &[(first, queue::Outcome::Done)])
            .await
            .unwrap();
        let id = second.id;
        assert_eq!(
            status_of(&db, id).await,
            queue::RUNNING,
            "the second run holds it"
        );

        queue::finish(&db, &[(second, queue::Outcome::Done)])
            .await
            .unwrap();
        assert_eq!(status_of(&db, id).await, queue::DONE);
    }

    /// A deadline rush leaves thousands of confirmations queued before the lot's close: the
    /// close and the money are claimed first, then the messages, each oldest first.
    #[tokio::test]
    async fn the_deadline_s_work_is_claimed_before_messages_queued_earlier() {
        let (_dir, db) = fresh_db().await;
        let earlier = Utc::now() - Duration::minutes(5);
        let confirmations = (0..50).map(|i| Job::DeliverMany {
            outbox_ids: vec![i],
        });
        crate::jobs::enqueue_many(&db, confirmations, earlier)
            .await
            .unwrap();
        let remind = Job::Remind {
            lot_id: "lot_a".into(),
        };
        crate::jobs::enqueue(&db, remind, earlier).await.unwrap();
        let now = Utc::now();
        let close = Job::CloseLot {
            lot_id: "lot_a".into(),
        };
        crate::jobs::enqueue(&db, close, now).await.unwrap();
        let charge = Job::Charge {
            bid_id: "bid_a".into(),
        };
        crate::jobs::enqueue(&db, charge, now).await.unwrap();
        let later = Job::Settle {
            lot_id: "lot_a".into(),
        };
        crate::jobs::enqueue(&db, later, now + Duration::hours(1))
            .await
            .unwrap();

        let lease = Duration::seconds(LEASE_SECONDS);
        let first = queue::claim(&db, "w", lease, 3).await.unwrap();
        let kinds: Vec<&str> = first.iter().map(|j| j.kind.as_str()).collect();
        assert_eq!(kinds, ["close_lot", "charge", "deliver_many"]);
        let rest = queue::claim(&db, "w", lease, 100).await.unwrap();
        assert_eq!(rest.len(), 50, "every message, and nothing not due yet");
        assert!(rest.iter().all(|j| j.priority == Priority::Messages as i16));
        assert!(
            rest.windows(2)
                .all(|w| (w[0].run_at, w[0].id) <= (w[1].run_at, w[1].id))
        );
    }

    /// Jobs queued before priorities existed: the messages among them are put behind the
    /// deadline's work like new ones.
    #[tokio::test]
    async fn messages_queued_before_the_upgrade_wait_behind_the_deadline_s_work() {
        use migration::MigratorTrait;
        use sea_orm::{ConnectionTrait, Statement};
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let db = crate::store::connect(&url, 1).await.unwrap();
        migration::Migrator::up(&db, Some(4)).await.unwrap();
        db.execute_unprepared(
            "INSERT INTO jobs (kind, dedupe_key, payload, status, run_at, attempts, created_at, updated_at) VALUES \
             ('deliver_many', 'a', '{}', 'pending', '2026-12-01', 0, '2026-12-01', '2026-12-01'), \
             ('remind', 'b', '{}', 'pending', '2026-12-01', 0, '2026-12-01', '2026-12-01'), \
             ('close_lot', 'c', '{}', 'pending', '2026-12-01', 0, '2026-12-01', '2026-12-01')",
        )
        .await
        .unwrap();
        crate::store::migrate(&db).await.unwrap();
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT kind, priority FROM jobs ORDER BY dedupe_key",
            ))
            .await
            .unwrap();
        let priorities: Vec<(String, i16)> = rows
            .iter()
            .map(|r| {
                (
                    r.try_get("", "kind").unwrap(),
                    r.try_get("", "priority").unwrap(),
                )
            })
            .collect();
        assert_eq!(
            priorities,
            [
                ("deliver_many".to_owned(), Priority::Messages as i16),
                ("remind".to_owned(), Priority::Messages as i16),
                ("close_lot".to_owned(), Priority::Deadline as i16),
            ]
        );
        // And back to before it, should the release be rolled back, and forward again.
        let since_5 = migration::Migrator::migrations().len() - 4;
        migration::Migrator::down(&db, Some(since_5 as u32))
            .await
            .unwrap();
        let columns = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT name FROM pragma_table_info('jobs') WHERE name = 'priority'",
            ))
            .await
            .unwrap();
        assert!(columns.is_empty(), "the priority column is gone");
        migration::Migrator::up(&db, None).await.unwrap();
    }

    /// The simulated gateway, except that releasing a hold takes longer than a lease.
    struct SlowReleases(SimulatedGateway);

    #[async_trait::async_trait]
    impl PaymentGateway for SlowReleases {
        fn provider(&self) -> &'static str {
            self.0.provider()
        }
        fn reuses_payment_methods(&self) -> bool {
            self.0.reuses_payment_methods()
        }
        async fn authorize_hold(&self, r: HoldRequest) -> Result<HoldOutcome, PaymentError> {
            self.0.authorize_hold(r).await
        }
        async fn capture(
            &self,
            p: &PaymentRef,
            amount: i64,
            k: &IdempotencyKey,
        ) -> Result<Capture, PaymentError> {
            self.0.capture(p, amount, k).await
        }
        async fn release(&self, p: &PaymentRef, k: &IdempotencyKey) -> Result<(), PaymentError> {
            tokio::time::sleep(StdDuration::from_secs(LEASE_SECONDS as u64 + 3)).await;
            self.0.release(p, k).await
        }
        async fn save_card_for_later(&self, r: SetupRequest) -> Result<SetupOutcome, PaymentError> {
            self.0.save_card_for_later(r).await
        }
        async fn charge_saved_card(&self, r: ChargeRequest) -> Result<ChargeOutcome, PaymentError> {
            self.0.charge_saved_card(r).await
        }
        async fn refund(
            &self,
            p: &PaymentRef,
            amount: i64,
            k: &IdempotencyKey,
        ) -> Result<Refund, PaymentError> {
            self.0.refund(p, amount, k).await
        }
        async fn payment_status(&self, p: &PaymentRef) -> Result<PaymentState, PaymentError> {
            self.0.payment_status(p).await
        }
        async fn open_holds(&self, since: DateTime<Utc>) -> Result<Vec<OpenHold>, PaymentError> {
            self.0.open_holds(since).await
        }
        async fn setup_status(&self, r: &SetupRef) -> Result<SetupOutcome, PaymentError> {
            self.0.setup_status(r).await
        }
        fn parse_webhook(&self, payload: &str, sig: &str) -> Result<PaymentEvent, WebhookError> {
            self.0.parse_webhook(payload, sig)
        }
    }

    /// A provider slow to answer fills the money's slots, not the messages': reminders queued
    /// behind a release that waits on it still run, and the release is not given up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn messages_run_while_the_money_waits_on_a_slow_provider() {
        let (_dir, db) = fresh_db().await;
        let now = Utc::now();
        let release = Job::ReleaseUnrecorded {
            hold: "pi_slow".into(),
            tell: None,
        };
        crate::jobs::enqueue(&db, release, now).await.unwrap();
        let reminders = (0..3).map(|i| Job::Remind {
            lot_id: format!("lot_gone_{i}"),
        });
        crate::jobs::enqueue_many(&db, reminders, now)
            .await
            .unwrap();

        let slow: Arc<dyn PaymentGateway> =
            Arc::new(SlowReleases(SimulatedGateway::new(db.clone())));
        let worker = Worker::new(db.clone(), slow, 1).with_delivery_slots(1);
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(worker.run(stopped));
        // Sooner than the release can end (a lease and more).
        let give_up = Instant::now() + StdDuration::from_secs(LEASE_SECONDS as u64);
        while count(&db, queue::DONE, "remind").await < 3 {
            assert!(
                Instant::now() < give_up,
                "the reminders waited for the provider"
            );
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
        assert_eq!(count(&db, queue::RUNNING, "release_unrecorded").await, 1);
        stop.send(true).unwrap();
        running.await.unwrap();
        assert_eq!(count(&db, queue::RUNNING, "release_unrecorded").await, 0);
    }

    /// `run_until_idle` claims jobs a batch at a time and runs them one after another: while
    /// the first waits on the provider for longer than a lease, the others keep their claim,
    /// so another process cannot start them too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_waiting_behind_a_slow_one_keep_their_claim() {
        let (_dir, db) = fresh_db().await;
        let releases = (0..3).map(|i| Job::ReleaseUnrecorded {
            hold: format!("pi_lost_{i}"),
            tell: None,
        });
        crate::jobs::enqueue_many(&db, releases, Utc::now())
            .await
            .unwrap();
        let slow: Arc<dyn PaymentGateway> =
            Arc::new(SlowReleases(SimulatedGateway::new(db.clone())));
        let worker = Worker::new(db.clone(), slow, 1);
        let running = tokio::spawn(async move { worker.run_until_idle().await });

        // Past the claim's lease, with the first release still waiting on the provider.
        tokio::time::sleep(StdDuration::from_secs(LEASE_SECONDS as u64 + 1)).await;
        let lease = Duration::seconds(LEASE_SECONDS);
        let taken = queue::claim(&db, "another-process", lease, 10)
            .await
            .unwrap();
        assert!(taken.is_empty(), "claimed twice: {taken:?}");
        let claimed = job::Entity::find()
            .filter(job::Column::LockedBy.is_not_null())
            .count(&db)
            .await
            .unwrap();
        assert_eq!(claimed, 3, "the batch is still the first worker's");

        // A run that is given up (its caller cancelled) stops renewing: the jobs it claimed
        // go to another process once the lease runs out.
        running.abort();
        let _ = running.await;
        tokio::time::sleep(StdDuration::from_secs(LEASE_SECONDS as u64 + 1)).await;
        let taken = queue::claim(&db, "another-process", lease, 10)
            .await
            .unwrap();
        assert_eq!(taken.len(), 3, "{taken:?}");
    }
}
