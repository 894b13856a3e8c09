//! The order path's connections, kept warm between its statements.
//!
//! sqlx's pool checks a connection with a round trip to Postgres (a `Sync`
//! and its answer) as it hands it out, and again as it takes it back. An
//! order's four one-statement steps (hold, pending payment, the provider's
//! ledger, settle) made eight such round trips beside their four: each a
//! wake-up of a Postgres backend and of the origin (README: what it cost).
//! A connection whose statement has just been answered, outside
//! any transaction, has nothing left to flush and was alive a moment ago:
//! the order path keeps such connections aside and takes one back, without
//! either check, if it was answered less than [`WARM_FOR`] ago. Every other
//! connection goes back through the pool and both its checks: one whose
//! statement failed on the way (it may be broken), one kept longer (Postgres
//! may have restarted since: the check finds it closed and the pool opens a
//! new one).

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgDatabaseError, PgSeverity};
use sqlx::{PgConnection, PgPool, Postgres};

/// How long an answered connection is taken back without a check. Between
/// an order's steps under load a connection waits a few milliseconds; a
/// restart of Postgres takes far longer than this.
pub const WARM_FOR: Duration = Duration::from_millis(100);

/// A pool, and the connections its order path keeps warm. Everything else
/// uses the pool itself (`Deref`).
#[derive(Clone)]
pub struct WarmPool {
    pool: PgPool,
    /// Oldest answered first.
    kept: Arc<Mutex<Vec<Kept>>>,
    /// At most half the pool is kept aside (none of a pool of one), so
    /// work that takes its connections from the pool always finds the
    /// other half.
    keep_at_most: usize,
    warm_for: Duration,
}

struct Kept {
    connection: PoolConnection<Postgres>,
    answered: Instant,
}

impl WarmPool {
    pub fn new(pool: PgPool) -> Self {
        Self::warm_for(pool, WARM_FOR)
    }

    /// Connections taken back unchecked for `warm_for` instead of
    /// [`WARM_FOR`] (for tests). A task hands back those that cooled
    /// meanwhile, so a quiet origin keeps none for long: it ends with the
    /// last clone of this pool.
    pub fn warm_for(pool: PgPool, warm_for: Duration) -> Self {
        let keep_at_most = pool.options().get_max_connections() as usize / 2;
        let kept = Arc::default();
        tokio::spawn(hand_back_cooled(Arc::downgrade(&kept), warm_for));
        Self { pool, kept, keep_at_most, warm_for }
    }

    /// The connection answered last, if that was less than [`WARM_FOR`]
    /// ago; otherwise one from the pool, checked. The last answered is
    /// taken first, so under light load the others cool down and go back.
    pub async fn acquire(&self) -> Result<WarmConnection, sqlx::Error> {
        let (warm, cooled) = {
            let mut kept = self.kept.lock().expect("kept connections poisoned");
            match kept.pop() {
                Some(last) if last.answered.elapsed() < self.warm_for => (Some(last.connection), Vec::new()),
                // The last answered is the newest: if it cooled, all did.
                Some(last) => (None, kept.drain(..).chain([last]).collect()),
                None => (None, Vec::new()),
            }
        };
        // Dropped outside the lock: each goes back to the pool, checked.
        drop(cooled);
        let connection = match warm {
            Some(connection) => connection,
            None => self.pool.acquire().await?,
        };
        Ok(WarmConnection { connection: Some(connection), home: self.clone() })
    }

    fn keep(&self, connection: PoolConnection<Postgres>) {
        let mut kept = self.kept.lock().expect("kept connections poisoned");
        if kept.len() < self.keep_at_most {
            kept.push(Kept { connection, answered: Instant::now() });
        }
    }
}

impl Deref for WarmPool {
    type Target = PgPool;

    fn deref(&self) -> &PgPool {
        &self.pool
    }
}

/// A connection from [`WarmPool::acquire`]. Dropped, it goes back to the
/// pool and its checks; [`WarmConnection::keep_if_answered`] keeps it warm.
pub struct WarmConnection {
    connection: Option<PoolConnection<Postgres>>,
    home: WarmPool,
}

impl WarmConnection {
    /// Keeps the connection warm if Postgres answered its one statement,
    /// with rows or with an error that ends the statement only (a refusal
    /// the statement raised): either way the exchange ended and nothing is
    /// left pending. A `FATAL` error ends the connection: not kept. Only
    /// for a statement run outside any transaction.
    pub fn keep_if_answered<T>(mut self, outcome: &Result<T, sqlx::Error>) {
        let answered = match outcome {
            Ok(_) | Err(sqlx::Error::RowNotFound) => true,
            Err(sqlx::Error::Database(e)) => {
                e.try_downcast_ref::<PgDatabaseError>().is_some_and(|e| e.severity() == PgSeverity::Error)
            }
            Err(_) => false,
        };
        if answered {
            let connection = self.connection.take().expect("a connection until dropped");
            self.home.keep(connection);
        }
    }
}

impl Deref for WarmConnection {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.connection.as_ref().expect("a connection until dropped")
    }
}

impl DerefMut for WarmConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.connection.as_mut().expect("a connection until dropped")
    }
}

/// Every `warm_for`, hands the connections kept longer back to the pool.
async fn hand_back_cooled(kept: Weak<Mutex<Vec<Kept>>>, warm_for: Duration) {
    let mut ticks = tokio::time::interval(warm_for.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(kept) = kept.upgrade() else { return };
        let cooled: Vec<Kept> = {
            let mut kept = kept.lock().expect("kept connections poisoned");
            let cooled = kept.partition_point(|k| k.answered.elapsed() >= warm_for);
            kept.drain(..cooled).collect()
        };
        drop(cooled);
    }
}
