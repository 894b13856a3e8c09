//! Organizer API keys: random, shown once, stored as SHA-256.

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{ApiError, ApiJson, Problem};
use crate::openapi::OrganizerRefusals;

/// A new API key: `sk_` and 32 random bytes in hex.
pub fn generate_api_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("sk_{}", hex::encode(bytes))
}

pub fn hash_api_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Creates an organizer with the given key; returns its id.
pub async fn create_organizer(db: &PgPool, name: &str, api_key: &str) -> sqlx::Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query("INSERT INTO organizers (id, name, api_key_hash) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(name)
        .bind(hash_api_key(api_key))
        .execute(db)
        .await?;
    Ok(id)
}

pub async fn organizer_by_key(db: &PgPool, api_key: &str) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("SELECT id FROM organizers WHERE api_key_hash = $1")
        .bind(hash_api_key(api_key))
        .fetch_optional(db)
        .await
}

/// The token of `Authorization: Bearer <token>`, if the request has one.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

/// The organizer making the request, from `Authorization: Bearer <api key>`.
#[derive(Debug, Clone, Copy)]
pub struct Organizer(pub Uuid);

impl FromRequestParts<AppState> for Organizer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send `Authorization: Bearer <organizer API key>`",
            )
        };
        let key = bearer(&parts.headers).ok_or_else(unauthorized)?;
        organizer_by_key(&state.db, key.trim()).await?.map(Organizer).ok_or_else(unauthorized)
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
    State(state): State<AppState>,
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
    sqlx::query("UPDATE organizers SET webhook_url = $2, webhook_secret = $3 WHERE id = $1")
        .bind(organizer)
        .bind(url)
        .bind(&secret)
        .execute(&state.db)
        .await?;
    Ok(ApiJson(WebhookTarget { url: url.to_owned(), secret }))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_webhook))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashes_stable() {
        let (a, b) = (generate_api_key(), generate_api_key());
        assert_ne!(a, b);
        assert!(a.starts_with("sk_") && a.len() == 67);
        assert_eq!(hash_api_key(&a), hash_api_key(&a));
        assert_ne!(hash_api_key(&a), hash_api_key(&b));
    }
}
