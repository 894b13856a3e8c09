//! The origin as an application: state, router, listener.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, StatusCode};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::Settings;
use crate::error::ApiError;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
}

/// Request bodies above this are refused before parsing.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(crate::health::routes())
        .merge(crate::catalog::routes())
        .merge(crate::venues::routes())
        .merge(crate::events::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such endpoint") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, request_timeout))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), path = request.uri().path(), request_id = id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

pub async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    let db = PgPoolOptions::new()
        .max_connections(settings.pool_size)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&settings.database_url)
        .await?;
    migrate(&db).await?;
    Ok(db)
}

pub async fn migrate(db: &PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations").run(db).await?;
    Ok(())
}

/// A bound, not yet serving, origin: tests bind port 0 and ask `port()`.
pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    pub async fn build(settings: &Settings, db: PgPool) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.listen).await?;
        Ok(Self { listener, router: router(AppState { db }, settings.request_timeout) })
    }

    pub fn address(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        axum::serve(self.listener, self.router).with_graceful_shutdown(shutdown).await
    }
}
