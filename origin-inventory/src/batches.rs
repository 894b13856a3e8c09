//! Group commit for the order path's steps.
//!
//! A step (beginning a payment, `beginning`; booking a paid order,
//! `booking`) hands its request to the step's lane, which runs every
//! request waiting when it is free in one call: one statement and one
//! transaction whether it serves one request or thirty. When Postgres
//! keeps up, the lane is free as a request arrives and serves it alone, at
//! no added wait; when Postgres falls behind, requests queue while the
//! lane works and the next call takes them all, so the statements' and the
//! commit's cost is shared as load rises (README: what it measured).
//!
//! Each request keeps its own outcome: the step's SQL decides every
//! request under its own locks. A call that fails as a whole (a lost
//! connection, a row locked too long, one request's row breaking a
//! constraint) is retried request by request, so one request's failure is
//! never another's.

use std::collections::HashSet;
use std::future::Future;
use std::hash::Hash;

use tokio::sync::{mpsc, oneshot};

use crate::warm::WarmPool;

/// The most requests one call serves: bounds a transaction's locks and time.
pub const MOST_PER_CALL: usize = 32;

/// One step's SQL, for any number of requests at once.
pub trait Step: Send + Sync + 'static {
    type Request: Send + Sync + 'static;
    type Outcome: Send + 'static;
    /// Requests with the same key never share a call (the same payment
    /// twice, a retry racing its first attempt): the later one waits for
    /// the next call, where it finds what the first did.
    type Key: Eq + Hash + Send;

    fn key(request: &Self::Request) -> Self::Key;

    /// One call for all of `requests`: an outcome for each, in their order.
    fn call(
        &self,
        db: &WarmPool,
        requests: &[&Self::Request],
    ) -> impl Future<Output = Result<Vec<Self::Outcome>, sqlx::Error>> + Send;
}

struct Waiting<S: Step> {
    request: S::Request,
    answer: oneshot::Sender<Result<S::Outcome, sqlx::Error>>,
}

/// The queue to a step's lane. Clones share it; the lane ends when the
/// last clone is dropped.
pub struct Batches<S: Step> {
    queue: mpsc::UnboundedSender<Waiting<S>>,
}

impl<S: Step> Clone for Batches<S> {
    fn clone(&self) -> Self {
        Self { queue: self.queue.clone() }
    }
}

impl<S: Step> Batches<S> {
    /// One lane, as Postgres's own group commit: every request that
    /// arrives during a call goes in the next. On the local stack two
    /// lanes split the paid orders into calls of 1.6 and booked them slower
    /// than one order per call; one lane made calls of 4.8 (README).
    pub fn start(db: WarmPool, step: S) -> Self {
        let (queue, waiting) = mpsc::unbounded_channel();
        tokio::spawn(lane(db, step, waiting));
        Self { queue }
    }

    /// Runs `request` with whatever else is waiting, and answers its outcome.
    pub async fn run(&self, request: S::Request) -> Result<S::Outcome, sqlx::Error> {
        let (answer, outcome) = oneshot::channel();
        self.queue.send(Waiting { request, answer }).map_err(|_| sqlx::Error::WorkerCrashed)?;
        outcome.await.map_err(|_| sqlx::Error::WorkerCrashed)?
    }
}

/// Takes every request waiting (up to [`MOST_PER_CALL`], none twice by
/// key) and runs them in one call, until the queue closes.
async fn lane<S: Step>(db: WarmPool, step: S, mut waiting: mpsc::UnboundedReceiver<Waiting<S>>) {
    let mut carried = None;
    loop {
        let first = match carried.take() {
            Some(first) => first,
            None => match waiting.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let mut batch = vec![first];
        let mut keys = HashSet::from([S::key(&batch[0].request)]);
        while batch.len() < MOST_PER_CALL {
            let Ok(next) = waiting.try_recv() else { break };
            if !keys.insert(S::key(&next.request)) {
                carried = Some(next);
                break;
            }
            batch.push(next);
        }
        run_batch(&db, &step, batch).await;
    }
}

async fn run_batch<S: Step>(db: &WarmPool, step: &S, batch: Vec<Waiting<S>>) {
    let requests: Vec<&S::Request> = batch.iter().map(|w| &w.request).collect();
    let outcomes = step.call(db, &requests).await.and_then(|outcomes| {
        if outcomes.len() == batch.len() {
            Ok(outcomes)
        } else {
            Err(sqlx::Error::Protocol(format!("{} outcomes for {} requests", outcomes.len(), batch.len())))
        }
    });
    match outcomes {
        Ok(outcomes) => {
            for (waiting, outcome) in batch.into_iter().zip(outcomes) {
                // A request that gave up no longer waits for its answer.
                let _ = waiting.answer.send(Ok(outcome));
            }
        }
        Err(e) if batch.len() == 1 => {
            let _ = batch.into_iter().next().expect("one request").answer.send(Err(e));
        }
        Err(e) => {
            tracing::warn!(requests = batch.len(), error = %e, "a call for several requests failed; running each alone");
            for waiting in batch {
                let outcome = step
                    .call(db, &[&waiting.request])
                    .await
                    .and_then(|mut outcomes| outcomes.pop().ok_or(sqlx::Error::RowNotFound));
                let _ = waiting.answer.send(outcome);
            }
        }
    }
}
