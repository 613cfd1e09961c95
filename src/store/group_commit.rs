//! Group commit: one writer task per process takes the writes that arrive together, runs each
//! in a savepoint of one shared transaction, commits once, and only then answers each caller.
//!
//! A commit (an fsync on PostgreSQL, the write lock and a WAL append on SQLite) is the
//! expensive part of a small write; sharing it between the requests that queued while the
//! previous batch committed raises throughput without batching delays: an idle writer takes a
//! lone request at once. The savepoint keeps one refused write from undoing the others, and
//! nobody is told "done" before the commit that made it durable.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::FutureExt;
use sea_orm::{DatabaseTransaction, DbErr, TransactionTrait};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::{Db, write_txn};

/// A write to run inside the shared transaction (in a savepoint of its own).
pub type Work<T, E> = Box<
    dyn for<'t> FnOnce(
            &'t DatabaseTransaction,
        ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 't>>
        + Send,
>;

struct Request<T, E> {
    work: Work<T, E>,
    reply: oneshot::Sender<Result<T, E>>,
}

/// The handle callers send their writes through; cheap to clone.
pub struct GroupCommit<T, E> {
    requests: mpsc::Sender<Request<T, E>>,
}

impl<T, E> Clone for GroupCommit<T, E> {
    fn clone(&self) -> Self {
        Self {
            requests: self.requests.clone(),
        }
    }
}

impl<T, E> GroupCommit<T, E>
where
    T: Send + 'static,
    E: From<DbErr> + Send + 'static,
{
    /// Starts `writers` writer tasks on the current tokio runtime, taking batches from one
    /// queue; at most `max_batch` writes share a commit. One writer suits SQLite (one writer
    /// at a time anyway); on PostgreSQL a few let batches run side by side on several
    /// connections. The tasks end when every handle is dropped.
    pub fn start(db: Db, max_batch: usize, writers: usize) -> Self {
        let max_batch = max_batch.max(1);
        let (requests, queue) = mpsc::channel(max_batch * 8);
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..writers.max(1) {
            tokio::spawn(writer(db.clone(), queue.clone(), max_batch));
        }
        Self { requests }
    }

    /// Runs `work` in the next batch; answers after that batch has committed (or failed).
    pub async fn run(&self, work: Work<T, E>) -> Result<T, E> {
        let stopped = || E::from(DbErr::Custom("the write queue has stopped".into()));
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request { work, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn writer<T, E>(db: Db, queue: Arc<Mutex<mpsc::Receiver<Request<T, E>>>>, max_batch: usize)
where
    T: Send + 'static,
    E: From<DbErr> + Send + 'static,
{
    let mut batch = Vec::with_capacity(max_batch);
    // The queue is held only while taking a batch: the next writer takes the next one.
    while queue.lock().await.recv_many(&mut batch, max_batch).await > 0 {
        commit_batch(&db, std::mem::take(&mut batch)).await;
    }
}

async fn commit_batch<T, E: From<DbErr>>(db: &Db, batch: Vec<Request<T, E>>) {
    let failed = |e: &DbErr| E::from(DbErr::Custom(format!("shared write transaction: {e}")));
    let txn = match write_txn(db).await {
        Ok(txn) => txn,
        Err(e) => {
            for request in batch {
                let _ = request.reply.send(Err(failed(&e)));
            }
            return;
        }
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for request in batch {
        let outcome = in_savepoint(&txn, request.work).await;
        outcomes.push((request.reply, outcome));
    }
    match txn.commit().await {
        Ok(()) => {
            for (reply, outcome) in outcomes {
                let _ = reply.send(outcome);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, writes = outcomes.len(), "group commit failed");
            for (reply, _) in outcomes {
                let _ = reply.send(Err(failed(&e)));
            }
        }
    }
}

async fn in_savepoint<T, E: From<DbErr>>(
    txn: &DatabaseTransaction,
    work: Work<T, E>,
) -> Result<T, E> {
    let savepoint = txn.begin().await?;
    // A panicking write must not take the writer (and every later request) down with it.
    let outcome = match AssertUnwindSafe(work(&savepoint)).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(_) => Err(E::from(DbErr::Custom("a write panicked".into()))),
    };
    match outcome {
        Ok(value) => {
            savepoint.commit().await?;
            Ok(value)
        }
        Err(e) => {
            savepoint.rollback().await?;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, Statement};

    use super::*;

    #[derive(Debug, PartialEq)]
    enum Refused {
        Db(String),
        No,
    }

    impl From<DbErr> for Refused {
        fn from(e: DbErr) -> Self {
            Self::Db(e.to_string())
        }
    }

    fn insert(n: i64, refuse: bool) -> Work<i64, Refused> {
        Box::new(move |txn| {
            Box::pin(async move {
                txn.execute_unprepared(&format!("INSERT INTO t (n) VALUES ({n})"))
                    .await?;
                if refuse { Err(Refused::No) } else { Ok(n) }
            })
        })
    }

    #[tokio::test]
    async fn a_refused_write_is_undone_alone_and_the_others_commit_together() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("g.db").display());
        let db = crate::store::connect(&url, 2).await.unwrap();
        db.execute_unprepared("CREATE TABLE t (n INTEGER NOT NULL)")
            .await
            .unwrap();
        let writer = GroupCommit::start(db.clone(), 16, 2);
        let answers =
            futures_util::future::join_all((0..40).map(|n| writer.run(insert(n, n % 10 == 3))))
                .await;
        for (n, answer) in answers.iter().enumerate() {
            let expected = if n % 10 == 3 {
                Err(Refused::No)
            } else {
                Ok(n as i64)
            };
            assert_eq!(answer, &expected);
        }
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT n FROM t ORDER BY n",
            ))
            .await
            .unwrap();
        let stored: Vec<i64> = rows.iter().map(|r| r.try_get("", "n").unwrap()).collect();
        let expected: Vec<i64> = (0..40).filter(|n| n % 10 != 3).collect();
        assert_eq!(stored, expected);
    }
}
