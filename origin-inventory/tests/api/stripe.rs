//! The Stripe provider against a local stand-in for Stripe's REST API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Form;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use origin_inventory::payments::{ChargeOutcome, ChargeRequest, PaymentProvider, StripeProvider};
use serde_json::json;

type Seen = Arc<Mutex<Vec<(String, HeaderMap, HashMap<String, String>)>>>;

/// Answers like Stripe: succeeded for pm_card_visa, a 402 card error otherwise.
async fn fake_stripe() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let log2 = Arc::clone(&seen);
    let app = axum::Router::new()
        .route(
            "/v1/payment_intents",
            axum::routing::post(move |headers: HeaderMap, Form(form): Form<HashMap<String, String>>| async move {
                let visa = form.get("payment_method").map(String::as_str) == Some("pm_card_visa");
                log.lock().unwrap().push(("payment_intents".into(), headers, form));
                if visa {
                    (StatusCode::OK, axum::Json(json!({"id": "pi_123", "status": "succeeded"}))).into_response()
                } else {
                    let error = json!({"error": {"type": "card_error", "code": "card_declined",
                        "decline_code": "insufficient_funds", "message": "Your card has insufficient funds."}});
                    (StatusCode::PAYMENT_REQUIRED, axum::Json(error)).into_response()
                }
            }),
        )
        .route(
            "/v1/refunds",
            axum::routing::post(move |headers: HeaderMap, Form(form): Form<HashMap<String, String>>| async move {
                log2.lock().unwrap().push(("refunds".into(), headers, form));
                axum::Json(json!({"id": "re_1", "status": "succeeded"}))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

fn request(pm: &str) -> ChargeRequest {
    ChargeRequest {
        idempotency_key: "pay_1".into(),
        amount_cents: 4900,
        currency: "EUR".into(),
        payment_method: pm.into(),
        description: "test".into(),
    }
}

#[tokio::test]
async fn stripe_charges_carry_our_idempotency_key_and_declines_are_parsed() {
    let (base, seen) = fake_stripe().await;
    let stripe = StripeProvider::new(base, "sk_test_123".into(), Duration::from_secs(5));
    let outcome = stripe.charge(&request("pm_card_visa")).await.unwrap();
    assert_eq!(outcome, ChargeOutcome::Succeeded { provider_payment_id: "pi_123".into() });
    let declined = stripe.charge(&request("pm_card_chargeDeclinedInsufficientFunds")).await.unwrap();
    assert!(
        matches!(declined, ChargeOutcome::Declined { ref code, .. } if code == "insufficient_funds"),
        "{declined:?}"
    );
    stripe.refund("pi_123", "refund-pay_1").await.unwrap();

    let seen = seen.lock().unwrap();
    let (_, headers, form) = &seen[0];
    assert_eq!(headers["idempotency-key"], "pay_1");
    assert_eq!(
        headers["stripe-version"],
        origin_inventory::payments::STRIPE_API_VERSION,
        "a pinned API version"
    );
    assert!(headers["authorization"].to_str().unwrap().starts_with("Basic "));
    assert_eq!(
        (form["amount"].as_str(), form["currency"].as_str(), form["confirm"].as_str()),
        ("4900", "eur", "true")
    );
    assert_eq!(form["metadata[payment_id]"], "pay_1");
    let (endpoint, headers, form) = &seen[2];
    assert_eq!((endpoint.as_str(), form["payment_intent"].as_str()), ("refunds", "pi_123"));
    assert_eq!(headers["idempotency-key"], "refund-pay_1");
}

#[tokio::test]
async fn an_unreachable_stripe_is_an_unknown_outcome_not_a_decline() {
    let stripe = StripeProvider::new("http://127.0.0.1:9".into(), "sk".into(), Duration::from_secs(2));
    assert!(stripe.charge(&request("pm_card_visa")).await.is_err());
}
