//! Holds, batched: the holds asked for together are authorised in one transaction of the
//! gateway's store (one lookup of their keys, one insert of the payments, one of the stored
//! answers, one commit) instead of one transaction each. A deadline rush is mostly holds,
//! and on SQLite every separate transaction would queue for the one write lock.
//!
//! Each request is answered exactly as [`keyed!`](super) would answer it alone: a replay for
//! a known key, a refusal for a key reused with other parameters, nothing stored for a
//! transient failure. If the batch cannot commit, every request in it gets a transient error
//! and nothing of it is kept, so a retry with the same key is a first attempt.

use std::collections::HashMap;

use sea_orm::{DbBackend, SqlErr};

use super::{SimPayment, SimulatedGateway, Stored, replay, store};
use crate::payments::{HoldOutcome, HoldRequest, PaymentError, fingerprint};
use crate::store::batch::Batcher;

pub(super) type HoldBatcher = Batcher<HoldRequest, Result<HoldOutcome, PaymentError>>;

const OPERATION: &str = "authorize_hold";
const MAX_HOLDS_PER_COMMIT: usize = 128;

pub(super) fn start(gateway: SimulatedGateway) -> HoldBatcher {
    // SQLite has one writer at a time. On PostgreSQL batches commit side by side: with two
    // workers the holds were the busiest stage of a deadline rush (busy 88% of the run);
    // four gave 12-32% more bids/s (README, "Bid intake under load").
    let workers = match gateway.db.get_database_backend() {
        DbBackend::Sqlite => 1,
        _ => 4,
    };
    Batcher::start(
        "simulated hold",
        MAX_HOLDS_PER_COMMIT,
        workers,
        move |batch| {
            let gateway = gateway.clone();
            async move { gateway.authorize_batch(batch).await }
        },
    )
}

pub(super) fn request_fingerprint(request: &HoldRequest) -> String {
    fingerprint(&format!(
        "{}|{}|{}|{:?}|{}|{:?}",
        request.amount_minor,
        request.currency,
        request.card.redacted(),
        request.customer_ref,
        request.description,
        request.metadata
    ))
}

/// How often a batch runs again after another batch stored one of its keys first.
const ROUNDS: usize = 3;

/// Another batch stored one of this batch's keys while it ran.
struct KeyTaken;

impl SimulatedGateway {
    /// On PostgreSQL batches commit side by side, so the same request sent twice at once (a
    /// double tap) can land in two of them; the one that commits second finds the key taken.
    /// Nothing of it is kept, and it runs again: the copy then gets the stored answer, as a
    /// replay, and the other holds of the batch are not refused for it.
    async fn authorize_batch(
        &self,
        requests: Vec<HoldRequest>,
    ) -> Vec<Result<HoldOutcome, PaymentError>> {
        for _ in 0..ROUNDS {
            if let Ok(answers) = self.authorize_batch_once(&requests).await {
                return answers;
            }
        }
        let taken = PaymentError::InProgress(
            "a concurrent request with the same idempotency key is in progress".into(),
        );
        requests.iter().map(|_| Err(taken.clone())).collect()
    }

    async fn authorize_batch_once(
        &self,
        requests: &[HoldRequest],
    ) -> Result<Vec<Result<HoldOutcome, PaymentError>>, KeyTaken> {
        let all_failed = |e: PaymentError| Ok(requests.iter().map(|_| Err(e.clone())).collect());
        let _turn = crate::store::sqlite_write_turn(&self.db).await;
        let txn = match self.begin().await {
            Ok(txn) => txn,
            Err(e) => return all_failed(e),
        };
        let keys = requests
            .iter()
            .map(|r| r.idempotency_key.as_str().to_owned())
            .collect();
        // Answers by key: stored before, or given earlier in this batch (a double submit).
        let mut known: HashMap<String, (String, String, String)> =
            match store::find_requests(&txn, keys).await {
                Ok(rows) => rows
                    .into_iter()
                    .map(|r| (r.idempotency_key, (r.operation, r.fingerprint, r.response)))
                    .collect(),
                Err(e) => return all_failed(e),
            };
        let mut answers = Vec::with_capacity(requests.len());
        let mut payments: Vec<(String, SimPayment)> = Vec::new();
        let mut stored = Vec::new();
        for request in requests {
            let key = request.idempotency_key.as_str();
            let request_fingerprint = request_fingerprint(request);
            if let Some((operation, fingerprint, response)) = known.get(key) {
                answers.push(replay(
                    &request.idempotency_key,
                    (operation, fingerprint, response),
                    OPERATION,
                    &request_fingerprint,
                ));
                continue;
            }
            let result = match self.prepare_hold(&txn, request).await {
                Err(e) if e.is_retryable() => {
                    answers.push(Err(e));
                    continue;
                }
                Ok((payment, outcome)) => {
                    payments.extend(payment.map(|p| (p.id.clone(), p)));
                    Ok(outcome)
                }
                Err(e) => Err(e),
            };
            let response = match &result {
                Ok(value) => serde_json::to_string(&Stored::Ok(value)),
                Err(error) => serde_json::to_string(&Stored::<HoldOutcome>::Err(error.clone())),
            }
            .expect("answers serialise");
            known.insert(
                key.to_owned(),
                (
                    OPERATION.to_owned(),
                    request_fingerprint.clone(),
                    response.clone(),
                ),
            );
            stored.push((key.to_owned(), OPERATION, request_fingerprint, response));
            answers.push(result);
        }
        let written = async {
            store::insert_many(&txn, "payment", &payments).await?;
            store::insert_requests(&txn, stored).await?;
            txn.commit().await
        }
        .await;
        match written {
            Ok(()) => Ok(answers),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(KeyTaken)
            }
            Err(e) => {
                tracing::error!(error = %e, holds = requests.len(), "simulated hold batch failed");
                all_failed(store::db_error(e))
            }
        }
    }
}
