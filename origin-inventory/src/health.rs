//! Liveness and readiness probes, and the OpenAPI document.

use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::app::AppState;
use crate::error::{ApiError, ApiJson};

async fn live() -> ApiJson<serde_json::Value> {
    ApiJson(serde_json::json!({"status": "ok"}))
}

/// Ready when requests can be served: not shutting down, and Postgres
/// answers through the request pool.
async fn ready(State(state): State<AppState>) -> Result<ApiJson<serde_json::Value>, ApiError> {
    if state.draining.load(Ordering::Relaxed) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "this instance is shutting down",
        ));
    }
    sqlx::query("SELECT 1").execute(&state.db).await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::database_unavailable()
    })?;
    Ok(ApiJson(serde_json::json!({"status": "ready"})))
}

/// The API description, kept beside the code (`openapi.json`).
pub const OPENAPI: &str = include_str!("../openapi.json");

async fn openapi() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI)
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/api/openapi.json", get(openapi))
}
