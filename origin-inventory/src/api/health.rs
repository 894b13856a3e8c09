//! Liveness and readiness probes, and the OpenAPI document.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiJson, Problem};
use crate::state::{AppState, Draining};

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` (alive) or `ready`.
    status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health/live", tag = "operations", responses((status = 200, body = Health)))]
async fn live() -> ApiJson<Health> {
    ApiJson(Health { status: "ok" })
}

/// Readiness: requests can be served.
///
/// Not shutting down, and Postgres answers through the request pool.
#[utoipa::path(get, path = "/health/ready", tag = "operations", responses(
    (status = 200, body = Health),
    (status = 503, body = Problem, description = "`draining` or `database_unavailable`"),
))]
async fn ready(
    State(db): State<PgPool>,
    State(draining): State<Draining>,
) -> Result<ApiJson<Health>, ApiError> {
    if draining.is_draining() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "this instance is shutting down",
        ));
    }
    sqlx::query!(r#"SELECT 1 AS "one!""#).fetch_one(&db).await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::database_unavailable()
    })?;
    Ok(ApiJson(Health { status: "ready" }))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
        .routes(routes!(crate::api::openapi::openapi))
}
