//! The origin as an application: state, router, listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, StatusCode};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate as _, SizeAbove};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use queue_tokens::Verifier;
use secrecy::ExposeSecret as _;

use crate::buyers::BuyerSessions;
use crate::checkout::{Payments, run_reconciler};
use crate::config::{ProviderSettings, Settings};
use crate::error::{ApiError, problems_everywhere};
use crate::live::SeatChanges;
use crate::metrics::Metrics;
use crate::outbox::{Notifier, run_outbox};
use crate::payments::{PaymentProvider, SandboxProvider, StripeProvider};
use crate::purge::CatalogPurge;
use crate::reservations::{KnownLimits, run_sweeper};
use crate::workers::Workers;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub payments: Payments,
    pub metrics: Arc<Metrics>,
    /// Checks the edge's access tokens; `None` refuses them all.
    pub access: Option<Verifier>,
    pub purge: CatalogPurge,
    pub seat_changes: SeatChanges,
    pub hold_limits: KnownLimits,
    /// Issues and checks buyer sessions.
    pub buyers: BuyerSessions,
    /// Set when shutdown begins: readiness fails first, so load balancers
    /// stop sending before the listener closes.
    pub draining: Arc<AtomicBool>,
}

impl AppState {
    pub fn new(settings: &Settings, db: PgPool) -> Self {
        let provider: Arc<dyn PaymentProvider> = match &settings.provider {
            ProviderSettings::Sandbox(faults) => Arc::new(SandboxProvider::new(db.clone(), *faults)),
            ProviderSettings::Stripe { api_base, secret_key } => {
                Arc::new(StripeProvider::new(api_base.clone(), secret_key.clone(), Duration::from_secs(20)))
            }
        };
        let payments = Payments {
            provider,
            ticket_secret: settings.ticket_secret.expose_secret().as_bytes().into(),
            webhook_secret: settings.webhook_secret.expose_secret().as_bytes().into(),
        };
        Self {
            db,
            payments,
            metrics: Arc::default(),
            access: settings.access.clone(),
            purge: CatalogPurge::new(settings.edge_cache.clone()),
            seat_changes: SeatChanges::default(),
            hold_limits: KnownLimits::default(),
            buyers: BuyerSessions::new(settings.buyer_session_secret.expose_secret().as_bytes()),
            draining: Arc::default(),
        }
    }
}

/// Request bodies above this are refused before parsing.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    crate::openapi::routes()
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such endpoint") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, request_timeout))
        .layer(axum::middleware::from_fn(problems_everywhere))
        // Pages and seat maps are large and repetitive. Event streams and
        // images are left as they are (the default predicate), and so are
        // the small answers of the order path: compressing them costs CPU
        // and saves nothing.
        .layer(CompressionLayer::new().compress_when(DefaultPredicate::new().and(SizeAbove::new(1024))))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), path = request.uri().path(), request_id = id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

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
            state: AppState::new(settings, db),
            request_timeout: settings.request_timeout,
            drain_delay: settings.drain_delay,
        })
    }

    /// Starts the hold sweeper, the payment reconciler, outbox delivery and
    /// the waiting-room settings publisher. The binary runs
    /// them (and drains them after serving); tests call their steps directly to control time.
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
        workers.spawn(run_reconciler(
            db.clone(),
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
        workers.spawn(run_outbox(
            db.clone(),
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
        let draining = Arc::clone(&self.state.draining);
        let delay = self.drain_delay;
        let drained = async move {
            shutdown.await;
            draining.store(true, Ordering::Relaxed);
            tracing::info!(delay_ms = delay.as_millis() as u64, "shutting down: readiness now fails");
            tokio::time::sleep(delay).await;
        };
        let router = router(self.state, self.request_timeout);
        axum::serve(self.listener, router).with_graceful_shutdown(drained).await
    }
}
