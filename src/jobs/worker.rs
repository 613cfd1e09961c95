//! The worker: finds lots whose deadline has passed, claims due jobs and runs them, a few
//! at a time (bounded, so charging a big lot stays inside the provider's rate limit).

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use futures_util::FutureExt;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};
use tokio::sync::{Semaphore, watch};

use super::{Job, queue};
use crate::domain::lot::LotStatus;
use crate::notifications::dispatch::Notifier;
use crate::notifications::reminders;
use crate::payments::PaymentGateway;
use crate::services::award::{self, CloseOutcome};
use crate::services::data_rights;
use crate::services::settlement;
use crate::store::Db;
use crate::store::entities::{job, lot};

/// How long a claimed job is ours before another process may take it over. Kept short so a
/// killed process's jobs are picked up within seconds; a live one renews it while it works.
const LEASE_SECONDS: i64 = 10;

#[derive(Clone)]
pub struct Worker {
    db: Db,
    gateway: Arc<dyn PaymentGateway>,
    id: String,
    concurrency: usize,
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
            notifier: None,
        }
    }

    /// This worker also delivers messages, writes reminders and purges expired data.
    pub fn with_notifier(mut self, notifier: Arc<Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Runs until `stop` turns true; in-flight jobs finish first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.concurrency));
        loop {
            if *stop.borrow() {
                break;
            }
            if let Err(e) = self.schedule_due_lots().await {
                tracing::warn!(error = %e, "could not schedule due lots");
            }
            if let Err(e) = self.schedule_notifications().await {
                tracing::warn!(error = %e, "could not schedule reminders");
            }
            let mut ran = false;
            while let Ok(permit) = permits.clone().try_acquire_owned() {
                match queue::claim(&self.db, &self.id, Duration::seconds(LEASE_SECONDS)).await {
                    Ok(Some(job)) => {
                        ran = true;
                        let worker = self.clone();
                        tokio::spawn(async move {
                            worker.execute(job).await;
                            drop(permit);
                        });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not claim a job");
                        break;
                    }
                }
            }
            let pause = if ran {
                StdDuration::from_millis(20)
            } else {
                StdDuration::from_millis(250)
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => {}
            }
        }
        // Let running jobs finish: take every permit back.
        let _ = permits.acquire_many(self.concurrency as u32).await;
    }

    /// Runs every job that is due now, one after another, until none is left; returns how
    /// many ran. For tests and the command line, where each step should be deterministic.
    pub async fn run_until_idle(&self) -> Result<usize, DbErr> {
        let mut count = 0;
        loop {
            self.schedule_due_lots().await?;
            self.schedule_notifications().await?;
            match queue::claim(&self.db, &self.id, Duration::seconds(LEASE_SECONDS)).await? {
                Some(job) => {
                    self.execute(job).await;
                    count += 1;
                }
                None => return Ok(count),
            }
        }
    }

    /// Every open lot past its deadline gets its close job (once: the key is per lot).
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
        for lot_id in due {
            let close = Job::CloseLot { lot_id };
            let key = close.dedupe_key();
            super::enqueue(&self.db, close, now).await?;
            // A close that kept failing is tried again every 10 minutes, never abandoned.
            queue::revive(&self.db, &key, Duration::minutes(10)).await?;
        }
        Ok(())
    }

    /// Reminders for lots closing within the lead time, and the hourly retention purge.
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

    async fn execute(&self, row: job::Model) {
        let job: Job = match serde_json::from_str(&row.payload) {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(job = row.id, error = %e, "unreadable job parked");
                let _ = queue::retry_later(
                    &self.db,
                    &job::Model {
                        attempts: queue::MAX_ATTEMPTS,
                        ..row
                    },
                    &e.to_string(),
                )
                .await;
                return;
            }
        };
        // Renew the lease while the job runs (a slow provider call must not let another
        // process start the same job).
        let heartbeat = {
            let db = self.db.clone();
            let (id, worker) = (row.id, self.id.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(StdDuration::from_secs((LEASE_SECONDS / 3) as u64)).await;
                    // A failed renewal is retried at the next beat; the lease has room for it.
                    if let Err(e) =
                        queue::renew(&db, id, &worker, Duration::seconds(LEASE_SECONDS)).await
                    {
                        tracing::warn!(job = id, error = %e, "lease not renewed");
                    }
                }
            })
        };
        // A panic in a job must not leave it "running" with a lease renewed forever.
        let result = match std::panic::AssertUnwindSafe(self.perform(&job))
            .catch_unwind()
            .await
        {
            Ok(result) => result,
            Err(_) => Err("the job panicked".to_owned()),
        };
        heartbeat.abort();
        let outcome = match result {
            Ok(Some(later)) => queue::defer(&self.db, &row, later).await,
            Ok(None) => queue::complete(&self.db, &row).await,
            Err(e) => {
                tracing::warn!(job = row.id, kind = job.kind(), attempt = row.attempts, error = %e, "job failed, will retry");
                queue::retry_later(&self.db, &row, &e).await
            }
        };
        if let Err(e) = outcome {
            // The lease runs out and the job is run again: every job is safe to repeat.
            tracing::error!(job = row.id, error = %e, "job outcome not recorded");
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
            Job::Charge { bid_id } => settlement::charge(&self.db, gateway, bid_id)
                .await
                .map(|_| None)
                .map_err(|e| e.to_string()),
            Job::ReleaseLosers { lot_id } => settlement::release_losers(&self.db, gateway, lot_id)
                .await
                .map(|_| None)
                .map_err(|e| e.to_string()),
            Job::Release { bid_id, hold } => settlement::release(&self.db, gateway, bid_id, hold)
                .await
                .map(|_| None)
                .map_err(|e| e.to_string()),
            Job::Reassign { bid_id, attempt } => settlement::reassign(&self.db, bid_id, *attempt)
                .await
                .map(|_| None)
                .map_err(|e| e.to_string()),
            Job::Refund { bid_id, reason } => settlement::refund(&self.db, gateway, bid_id, reason)
                .await
                .map(|_| None)
                .map_err(|e| e.to_string()),
            Job::Settle { lot_id } => settlement::settle(&self.db, lot_id)
                .await
                .map(|_| None)
                .map_err(|e| e.to_string()),
            Job::Deliver { outbox_id } => match &self.notifier {
                Some(notifier) => notifier
                    .deliver(*outbox_id)
                    .await
                    .map_err(|e| e.to_string()),
                // Not this process's work: a serving process with a notifier takes it.
                None => Ok(Some(Utc::now() + Duration::minutes(1))),
            },
            Job::Remind { lot_id } => reminders::remind(&self.db, lot_id)
                .await
                .map(|_| None)
                .map_err(|e| e.to_string()),
            Job::PurgeExpired => data_rights::purge_expired(&self.db, Utc::now())
                .await
                .map(|purged| {
                    if purged > 0 {
                        tracing::info!(purged, "personal data past retention erased");
                    }
                    None
                })
                .map_err(|e| e.to_string()),
        }
    }
}
