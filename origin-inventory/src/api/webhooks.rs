//! `POST /webhooks/payments/{provider}`: the provider telling us how a
//! payment ended. Signed (Stripe's scheme), fresh, and processed at most
//! once per event id; settling is idempotent besides, so a replay that
//! slips through changes nothing.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ApiJson, ApiPath, Problem};
use crate::payments::ChargeOutcome;
use crate::settlement::settle_pending;
use crate::signatures::verify;
use crate::state::AppState;

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct WebhookReceipt {
    received: bool,
    /// Heard before: nothing was done again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duplicate: bool,
}

/// The payment provider's notices (`payment_intent.succeeded`,
/// `payment_intent.payment_failed`), signed in `Stripe-Signature`. Each
/// notice counts once however often it arrives.
#[utoipa::path(post, path = "/webhooks/payments/{provider}", tag = "payments",
    params(("provider" = String, Path, description = "`sandbox` or `stripe`: the configured provider"),
        ("Stripe-Signature" = String, Header)),
    request_body(content = Object, description = "The provider's event"), responses(
    (status = 200, body = WebhookReceipt),
    (status = 400, body = Problem, description = "`signature_invalid` or `malformed_json`"),
    (status = 404, body = Problem, description = "Not the configured provider"),
))]
async fn post_webhook(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<ApiJson<WebhookReceipt>, ApiError> {
    if provider != state.payments.provider.name() {
        return Err(ApiError::not_found("payment provider"));
    }
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    verify(&state.payments.webhook_secret, signature, &body, chrono::Utc::now().timestamp())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "signature_invalid", e.to_string()))?;
    let event: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.to_string()))?;
    crate::text::check_json(&event)?;
    let event_id = event["id"].as_str().ok_or_else(|| ApiError::invalid("the event has no id"))?;

    let seen: bool = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM webhook_events WHERE provider = $1 AND event_id = $2) AS "seen!""#,
        &provider,
        event_id,
    )
    .fetch_one(&state.db)
    .await?;
    if seen {
        return Ok(ApiJson(WebhookReceipt { received: true, duplicate: true }));
    }
    let object = &event["data"]["object"];
    let payment = object["metadata"]["payment_id"].as_str().and_then(|id| Uuid::try_parse(id).ok());
    let outcome = match event["type"].as_str() {
        Some("payment_intent.succeeded") => {
            object["id"].as_str().map(|id| ChargeOutcome::Succeeded { provider_payment_id: id.to_owned() })
        }
        Some("payment_intent.payment_failed") => {
            let error = &object["last_payment_error"];
            Some(ChargeOutcome::Declined {
                code: error["decline_code"]
                    .as_str()
                    .or(error["code"].as_str())
                    .unwrap_or("card_declined")
                    .into(),
                message: error["message"].as_str().unwrap_or("The payment was declined.").into(),
            })
        }
        _ => None,
    };
    if let (Some(payment), Some(outcome)) = (payment, outcome) {
        settle_pending(&state.warm, &state.payments, payment, outcome).await?;
    }
    // Recorded after processing: a failure above lets the provider retry.
    sqlx::query!(
        "INSERT INTO webhook_events (provider, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &provider,
        event_id,
    )
    .execute(&state.db)
    .await?;
    Ok(ApiJson(WebhookReceipt { received: true, duplicate: false }))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_webhook))
}
