//! `/metrics` for Prometheus.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use sqlx::PgPool;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::state::AppState;

/// Prometheus metrics: outcomes, latencies, the pool, the outbox.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses(
    (status = 200, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8",
        description = "OpenMetrics text"),
))]
async fn get_metrics(
    State(db): State<PgPool>,
    State(metrics): State<Arc<Metrics>>,
) -> Result<impl IntoResponse, ApiError> {
    Ok((
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        metrics.scrape(&db).await?,
    ))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_metrics))
}
