//! The origin as an application: its database, its listener, its workers.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::ExposeSecret as _;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::outbox::{Notifier, run_outbox};
use crate::settlement::run_reconciler;
use crate::state::AppState;
use crate::sweeper::run_sweeper;
use crate::workers::Workers;

pub async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    let db = pool_options(settings.pool_size).connect(settings.database_url.expose_secret()).await?;
    migrate(&db).await?;
    Ok(db)
}

/// The request pool as the origin runs it: a request waits at most 5 s for
/// a connection (then 503), whether the pool is busy or Postgres is away.
pub fn pool_options(size: u32) -> PgPoolOptions {
    PgPoolOptions::new().max_connections(size).acquire_timeout(Duration::from_secs(5))
}

pub async fn migrate(db: &PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations").run(db).await?;
    Ok(())
}

/// Connections of the outbox's own pool: a claim and a record write at
/// once, and room to spare. On the requests' pool its claims and records
/// waited behind the requests for a connection, and its lanes wait for
/// their records: 64 buyers straight at the origin on the local stack for
/// 30 s delivered 15–19% of their messages by the run's end (lag p99
/// 21–26 s), 47% (15 s) with a pool of its own.
const OUTBOX_CONNECTIONS: u32 = 4;

/// A bound, not yet serving, origin: tests bind port 0 and ask `port()`.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    request_timeout: Duration,
    drain_delay: Duration,
}

impl Application {
    pub async fn build(settings: &Settings, db: PgPool) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.listen).await?;
        Ok(Self {
            listener,
            state: AppState::new(settings, db).await?,
            request_timeout: settings.request_timeout,
            drain_delay: settings.drain_delay,
        })
    }

    /// Starts the hold sweeper, the best-available frontiers' advancer, the
    /// payment reconciler, outbox delivery and the waiting-room settings
    /// publisher. The binary runs them (and drains them after serving);
    /// tests call their steps directly to control time.
    pub fn start_workers(&self, settings: &Settings) -> anyhow::Result<Workers> {
        let notifier = Notifier::new(
            settings.smtp_url.expose_secret(),
            &settings.mail_from,
            settings.outbox_lanes,
            &settings.public_url,
        )?;
        let db = &self.state.db;
        let mut workers = Workers::new();
        workers.spawn(run_sweeper(db.clone(), settings.sweep_interval, workers.stop_signal()));
        workers.spawn(crate::frontiers::run_frontier_advancer(db.clone(), workers.stop_signal()));
        workers.spawn(run_reconciler(
            self.state.warm.clone(),
            self.state.payments.clone(),
            Duration::from_secs(15),
            workers.stop_signal(),
        ));
        workers.spawn(crate::purge::run_settings_publisher(
            db.clone(),
            self.state.purge.clone(),
            Duration::from_secs(2),
            workers.stop_signal(),
        ));
        let interval = Duration::from_secs(1);
        let outbox_db = pool_options(OUTBOX_CONNECTIONS).connect_lazy_with((*db.connect_options()).clone());
        workers.spawn(run_outbox(
            outbox_db,
            notifier,
            interval,
            settings.outbox_lease,
            workers.stop_signal(),
        ));
        Ok(workers)
    }

    pub fn address(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `shutdown`, then drains: readiness fails at once, the
    /// listener stays open for the drain delay (load balancers notice), and
    /// requests in flight finish before this returns.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        // Live seat maps are part of serving, not a background job tests steer.
        tokio::spawn(self.state.seat_changes.clone().run(self.state.db.clone()));
        let draining = self.state.draining.clone();
        let delay = self.drain_delay;
        let drained = async move {
            shutdown.await;
            draining.start();
            tracing::info!(delay_ms = delay.as_millis() as u64, "shutting down: readiness now fails");
            tokio::time::sleep(delay).await;
        };
        let router = crate::api::router(self.state, self.request_timeout);
        axum::serve(self.listener, router).with_graceful_shutdown(drained).await
    }
}
