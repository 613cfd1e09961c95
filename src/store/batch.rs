//! Batching: the requests that arrive while the previous batch is being handled are handled
//! together, by one call over all of them (one query with `IN (…)`, one multi-row insert,
//! one commit), instead of one round trip per request.
//!
//! There is no waiting for a batch to fill: an idle worker takes a lone request at once, so
//! a quiet server answers as fast as before, and a busy one amortises each round trip over
//! everything that queued behind it.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::{Mutex, mpsc, oneshot};

/// A request with the channel its answer goes back on.
type Queued<Req, Resp> = (Req, oneshot::Sender<Resp>);
type Handler<Req, Resp> =
    Arc<dyn Fn(Vec<Req>) -> futures_util::future::BoxFuture<'static, Vec<Resp>> + Send + Sync>;

/// The handle requests are sent through; cheap to clone. The workers end when every handle
/// is dropped.
pub struct Batcher<Req, Resp> {
    requests: mpsc::Sender<Queued<Req, Resp>>,
}

impl<Req, Resp> Clone for Batcher<Req, Resp> {
    fn clone(&self) -> Self {
        Self {
            requests: self.requests.clone(),
        }
    }
}

/// The batch's workers have stopped (the process is shutting down) or its handler panicked.
#[derive(Debug, thiserror::Error)]
#[error("the {0} batch worker has stopped")]
pub struct Stopped(pub &'static str);

impl<Req: Send + 'static, Resp: Send + 'static> Batcher<Req, Resp> {
    /// Starts `workers` tasks on the current tokio runtime taking up to `max_batch` requests
    /// at a time from one queue. `handle` must answer every request of its batch, in order.
    pub fn start<F, Fut>(name: &'static str, max_batch: usize, workers: usize, handle: F) -> Self
    where
        F: Fn(Vec<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Resp>> + Send + 'static,
    {
        let max_batch = max_batch.max(1);
        let (requests, queue) = mpsc::channel(max_batch * 8);
        let queue = Arc::new(Mutex::new(queue));
        let handle: Handler<Req, Resp> = Arc::new(move |batch| Box::pin(handle(batch)));
        for _ in 0..workers.max(1) {
            tokio::spawn(work(name, queue.clone(), handle.clone(), max_batch));
        }
        Self { requests }
    }

    /// Its workers have ended (the runtime they ran on stopped): calls can only fail.
    pub fn is_stopped(&self) -> bool {
        self.requests.is_closed()
    }

    /// Sends `request` with the next batch and waits for its answer.
    pub async fn call(&self, request: Req, name: &'static str) -> Result<Resp, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send((request, reply))
            .await
            .map_err(|_| Stopped(name))?;
        answer.await.map_err(|_| Stopped(name))
    }
}

async fn work<Req, Resp>(
    name: &'static str,
    queue: Arc<Mutex<mpsc::Receiver<Queued<Req, Resp>>>>,
    handle: Handler<Req, Resp>,
    max_batch: usize,
) {
    let mut batch = Vec::with_capacity(max_batch);
    // The queue is held only while taking a batch: the next worker takes the next one.
    while queue.lock().await.recv_many(&mut batch, max_batch).await > 0 {
        let (requests, replies): (Vec<Req>, Vec<_>) =
            std::mem::take(&mut batch).into_iter().unzip();
        let expected = requests.len();
        let started = std::time::Instant::now();
        // A panicking batch must not take the worker (and every later request) down: its
        // callers get `Stopped`, the next batch is served.
        match AssertUnwindSafe(handle(requests)).catch_unwind().await {
            Ok(answers) => {
                tracing::debug!(
                    batch = name,
                    requests = expected,
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    "batch handled"
                );
                debug_assert_eq!(answers.len(), expected, "{name}: one answer per request");
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }
            Err(_) => tracing::error!(batch = name, requests = expected, "a batch panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_request_gets_its_own_answer_and_busy_periods_share_batches() {
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let doubler = Batcher::start("doubler", 16, 1, move |batch: Vec<u32>| {
            seen.lock().unwrap().push(batch.len());
            async move {
                tokio::task::yield_now().await;
                batch.into_iter().map(|n| n * 2).collect()
            }
        });
        let answers = futures_util::future::join_all((0..100).map(|n| doubler.call(n, "doubler")))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect::<Vec<_>>();
        assert_eq!(answers, (0..100).map(|n| n * 2).collect::<Vec<_>>());
        let sizes = sizes.lock().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 100);
        assert!(sizes.iter().all(|&s| s <= 16), "{sizes:?}");
        assert!(
            sizes.len() < 100,
            "requests that queued together shared a batch: {sizes:?}"
        );
    }

    #[tokio::test]
    async fn a_panicking_batch_fails_its_callers_and_the_worker_serves_the_next() {
        let picky = Batcher::start("picky", 1, 1, |batch: Vec<u32>| async move {
            assert!(batch[0] != 13, "unlucky");
            batch
        });
        assert!(picky.call(13, "picky").await.is_err());
        assert_eq!(picky.call(7, "picky").await.unwrap(), 7);
    }
}
