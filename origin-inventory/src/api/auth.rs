//! The organizer API's credential, and the organizer's webhook.

use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::openapi::OrganizerRefusals;
use crate::auth::{bearer, generate_api_key, organizer_by_key};
use crate::error::{ApiError, ApiJson, Problem};
use crate::state::AppState;

/// The organizer making the request, from `Authorization: Bearer <api key>`.
#[derive(Debug, Clone, Copy)]
pub struct Organizer(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for Organizer
where
    PgPool: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let unauthorized = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send `Authorization: Bearer <organizer API key>`",
            )
        };
        let key = bearer(&parts.headers).ok_or_else(unauthorized)?;
        organizer_by_key(&PgPool::from_ref(state), key.trim()).await?.map(Organizer).ok_or_else(unauthorized)
    }
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    url: String,
}

#[derive(serde::Serialize, ToSchema)]
pub struct WebhookTarget {
    url: String,
    /// Signs each delivery (`whsec_…`); shown once.
    secret: String,
}

/// Set the URL your order events are posted to; answers the secret that
/// signs them (`Stampede-Signature`, Stripe's scheme).
#[utoipa::path(put, path = "/api/v1/organizer/webhook", tag = "organizer", security(("organizerKey" = [])),
    request_body = WebhookSettings, responses(
    (status = 200, body = WebhookTarget),
    (status = 422, body = Problem, description = "`invalid_request`: not an http(s) URL"),
    OrganizerRefusals,
))]
async fn put_webhook(
    State(db): State<PgPool>,
    Organizer(organizer): Organizer,
    ApiJson(settings): ApiJson<WebhookSettings>,
) -> Result<ApiJson<WebhookTarget>, ApiError> {
    let url = settings.url.trim();
    let valid = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 2000
        && !url.contains(char::is_whitespace);
    if !valid {
        return Err(ApiError::invalid("url must be an http(s) URL"));
    }
    let secret = format!("whsec_{}", &generate_api_key()[3..]);
    sqlx::query!(
        "UPDATE organizers SET webhook_url = $2, webhook_secret = $3 WHERE id = $1",
        organizer,
        url,
        &secret,
    )
    .execute(&db)
    .await?;
    Ok(ApiJson(WebhookTarget { url: url.to_owned(), secret }))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_webhook))
}
