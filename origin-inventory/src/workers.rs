//! The origin's background work (hold sweeper, best-available frontiers,
//! payment reconciler, outbox delivery), started together and stopped
//! together: on shutdown each finishes the step it is in, then exits.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Runs `step` every `interval` until `stop` turns true; a step under way
/// is finished first, never cut off.
pub async fn every<F, Fut>(interval: Duration, mut stop: watch::Receiver<bool>, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut stop) => return,
            _ = ticks.tick() => step().await,
        }
    }
}

/// Resolves once `stop` is true, or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !is_set(stop) {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Whether the stop signal is set (the borrow ends here: nothing holds
/// the lock across an await).
pub fn is_set(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow()
}

/// The running workers.
pub struct Workers {
    stop: watch::Sender<bool>,
    running: Vec<JoinHandle<()>>,
}

impl Workers {
    pub fn new() -> Self {
        Self { stop: watch::Sender::new(false), running: Vec::new() }
    }

    /// What a worker watches to know when to stop.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    pub fn spawn(&mut self, worker: impl Future<Output = ()> + Send + 'static) {
        self.running.push(tokio::spawn(worker));
    }

    /// Asks every worker to stop and waits (at most `grace`) until they have.
    pub async fn drain(self, grace: Duration) {
        self.stop.send_replace(true);
        let all = futures::future::join_all(self.running);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("background workers did not stop in time");
        }
    }
}

impl Default for Workers {
    fn default() -> Self {
        Self::new()
    }
}
