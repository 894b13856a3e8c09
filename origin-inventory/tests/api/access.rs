//! Checkout of queue-protected events needs the edge's access token,
//! checked here again (the origin does not trust whoever forwards).

use std::time::Duration;

use origin_inventory::payments::SandboxFaults;
use origin_inventory::settlement::reconcile;
use origin_inventory::test_support::test_keyring;
use origin_inventory::warm::WarmPool;
use queue_tokens::{AccessClaims, Keyring, Kind, QueueClaims};
use serde_json::{Value, json};

use crate::checkout::healthy_provider;
use crate::helpers::{TestApp, spawn_app, spawn_app_with_faults};

fn access_token(ring: &Keyring, event: &str, visitor: &str, exp: i64) -> String {
    let claims = AccessClaims {
        iss: ring.issuer().into(),
        sub: visitor.into(),
        aud: event.into(),
        iat: chrono::Utc::now().timestamp(),
        exp,
        jti: format!("jti-{visitor}"),
    };
    ring.sign(Kind::Access, &claims)
}

fn in_ten_minutes() -> i64 {
    chrono::Utc::now().timestamp() + 600
}

async fn queued_event(app: &TestApp) -> String {
    let queue = json!({"enabled": true, "new_users_per_minute": 60, "total_active_users": 10,
        "session_duration_seconds": 600, "pow_difficulty": 12, "message": "Be patient <3",
        "accent_color": "#ff0066"});
    app.on_sale_event(json!({ "queue": queue })).await["id"].as_str().unwrap().to_owned()
}

/// The organizer changes the event's waiting room.
async fn change_queue(app: &TestApp, event: &str, queue: Value) -> (u16, Value) {
    let path = format!("/api/v1/organizer/events/{event}/queue");
    app.organizer(&app.key, reqwest::Method::PUT, &path, Some(queue)).await
}

/// How many holds and payments `event` has.
async fn holds_and_payments(app: &TestApp, event: &str) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM reservations WHERE event_id = $1::uuid),
                (SELECT count(*) FROM payments p JOIN reservations r ON r.id = p.reservation_id
                 WHERE r.event_id = $1::uuid)",
    )
    .bind(event)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

/// Pays for the hold `held` with `token`, by a card that succeeds.
async fn pay_with(app: &TestApp, held: &Value, token: &str) -> (u16, Value) {
    pay_by_card(app, held, token, "pm_card_visa").await
}

/// Pays for the hold `held` with `token`, by the sandbox's `card`; one
/// idempotency key per hold, so paying again is a retry.
async fn pay_by_card(app: &TestApp, held: &Value, token: &str, card: &str) -> (u16, Value) {
    let reservation = held["reservation_id"].as_str().unwrap();
    let path = format!("/api/v1/reservations/{reservation}/commit");
    let card = json!({"payment_method_id": card,
        "billing_details": {"name": "Ada", "email": "ada@example.com"}});
    let commit =
        app.client.post(app.url(&path)).bearer_auth(token).header("idempotency-key", reservation).json(&card);
    crate::helpers::read(commit.send().await.unwrap()).await
}

async fn get_with(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = app.client.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn queue_protected_checkout_refuses_missing_forged_expired_and_foreign_tokens() {
    let app = spawn_app().await;
    let event = queued_event(&app).await;
    let other_event = queued_event(&app).await;
    let seatmap = format!("/api/v1/events/{event}/seatmap");
    let ring = test_keyring();

    let (status, body) = get_with(&app, &seatmap, None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("access_token_required")), "{body}");

    let forger =
        Keyring::from_config("test-1:Zm9yZ2VkLWtleS1mb3JnZWQta2V5LWZvcmdlZC1rZXk", ring.issuer()).unwrap();
    let forged = access_token(&forger, &event, "mallory", in_ten_minutes());
    let (status, body) = get_with(&app, &seatmap, Some(&forged)).await;
    assert_eq!((status, body["reason"].as_str()), (401, Some("bad_signature")), "{body}");

    let expired = access_token(&ring, &event, "late", chrono::Utc::now().timestamp() - 1);
    let (status, body) = get_with(&app, &seatmap, Some(&expired)).await;
    assert_eq!((status, body["reason"].as_str()), (401, Some("expired")), "{body}");

    let foreign = access_token(&ring, &other_event, "visitor", in_ten_minutes());
    let (status, body) = get_with(&app, &seatmap, Some(&foreign)).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("access_token_wrong_event")), "{body}");

    // A queue ticket is not an access token, even for the right event.
    let ticket = ring.sign(
        Kind::Queue,
        &QueueClaims {
            iss: ring.issuer().into(),
            sub: "v".into(),
            aud: event.clone(),
            n: 1,
            pre: false,
            iat: 0,
        },
    );
    let (status, body) = get_with(&app, &seatmap, Some(&ticket)).await;
    assert_eq!((status, body["reason"].as_str()), (401, Some("wrong_kind")), "{body}");

    let good = access_token(&ring, &event, "alice", in_ten_minutes());
    let (status, body) = get_with(&app, &seatmap, Some(&good)).await;
    assert_eq!(status, 200, "{body}");

    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("stampede_access_refusals_total{outcome=\"missing\"} 1"), "{metrics}");
    assert!(metrics.contains("stampede_access_refusals_total{outcome=\"invalid\"} 3"), "{metrics}");
    assert!(metrics.contains("stampede_access_refusals_total{outcome=\"wrong_event\"} 1"), "{metrics}");
}

#[tokio::test]
async fn the_token_names_the_buyer_and_a_release_reports_the_session_ended() {
    let app = spawn_app().await;
    let event = queued_event(&app).await;
    let token = access_token(&test_keyring(), &event, "visitor-42", in_ten_minutes());
    let section = app.a_section_of(&event).await;
    // A buyer session is ignored here: the verified token names the buyer.
    let response = app
        .client
        .post(app.url(&format!("/api/v1/events/{event}/reservations")))
        .bearer_auth(app.session("someone-else").await)
        .header("cookie", format!("stampede_access_{event}={token}"))
        .json(&json!({"client_reservation_id": uuid::Uuid::new_v4(), "section_id": section, "quantity": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(response.headers().get("stampede-session-ended").is_none(), "a hold does not end the session");
    let hold: Value = response.json().await.unwrap();
    let id = hold["reservation_id"].as_str().unwrap();
    let buyer: String = sqlx::query_scalar("SELECT buyer_id FROM reservations WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(buyer, "visitor-42");

    // Reservation paths name no event: the origin finds it and checks the token.
    let path = format!("/api/v1/reservations/{id}");
    assert_eq!(get_with(&app, &path, None).await.0, 401);
    let response = app.client.delete(app.url(&path)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["stampede-session-ended"], event.as_str());
}

#[tokio::test]
async fn events_without_a_queue_need_no_token() {
    let app = spawn_app().await;
    let event = app.on_sale_event(json!({})).await;
    let (status, _) =
        get_with(&app, &format!("/api/v1/events/{}/seatmap", event["id"].as_str().unwrap()), None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_waiting_room_settings_are_public_and_follow_the_organizer() {
    let app = spawn_app().await;
    let event = queued_event(&app).await;
    let (status, room) = app.get(&format!("/api/v1/events/{event}/waiting-room")).await;
    assert_eq!(status, 200, "{room}");
    assert_eq!(room["enabled"], true);
    assert_eq!(room["pow_difficulty"], 12);
    assert_eq!(room["message"], "Be patient <3");
    assert_eq!(room["accent_color"], "#ff0066");
    assert_eq!(room["sold_out"], false);

    let queue = json!({"enabled": true, "new_users_per_minute": 120, "total_active_users": 10,
        "session_duration_seconds": 600, "paused": true, "accent_color": "not a colour"});
    let (status, body) = change_queue(&app, &event, queue.clone()).await;
    assert_eq!((status, body["error"].as_str()), (422, Some("invalid_request")), "{body}");
    let mut queue = queue;
    queue["accent_color"] = json!("#123456");
    let (status, body) = change_queue(&app, &event, queue).await;
    assert_eq!(status, 200, "{body}");
    let (_, room) = app.get(&format!("/api/v1/events/{event}/waiting-room")).await;
    assert_eq!((room["paused"].as_bool(), room["new_users_per_minute"].as_i64()), (Some(true), Some(120)));
}

/// Holds and payments with a buyer session check the gate in their own
/// statement: turning the waiting room on stops the very next hold and
/// payment of a buyer who held before, and writes nothing for them.
#[tokio::test]
async fn a_waiting_room_turned_on_refuses_the_next_hold_and_payment_of_a_buyer_session() {
    let app = spawn_app().await;
    let event = app.on_sale_event(json!({})).await["id"].as_str().unwrap().to_owned();
    let section = app.a_section_of(&event).await;
    let one_seat =
        || json!({"client_reservation_id": uuid::Uuid::new_v4(), "section_id": section, "quantity": 1});
    let (status, held) = app.hold("ada", &event, one_seat()).await;
    assert_eq!(status, 201, "no waiting room yet: the buyer session holds {held}");

    let queue = json!({"enabled": true, "new_users_per_minute": 60, "total_active_users": 10,
        "session_duration_seconds": 600});
    let (status, changed) = change_queue(&app, &event, queue).await;
    assert_eq!(status, 200, "{changed}");

    let (status, body) = app.hold("ada", &event, one_seat()).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("access_token_required")), "{body}");
    let card = json!({"payment_method_id": "pm_card_visa", "billing_details": {"name": "Ada", "email": "ada@example.com"}});
    let (status, body) = app.commit("ada", &held, "after-the-switch", card).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("access_token_required")), "{body}");

    let counts = holds_and_payments(&app, &event).await;
    assert_eq!(counts, (1, 0), "only the hold made before the switch, and no payment");

    // With an access token the same steps go through, as the token's visitor.
    let token = access_token(&test_keyring(), &event, "admitted-visitor", in_ten_minutes());
    let request =
        app.client.post(app.url(&format!("/api/v1/events/{event}/reservations"))).bearer_auth(&token);
    let (status, body) = crate::helpers::read(request.json(&one_seat()).send().await.unwrap()).await;
    assert_eq!(status, 201, "{body}");
}

/// Holds and payments with an access token are verified by the origin and
/// checked by their own statement: a session ended meanwhile (here by the
/// edge, when the visitor leaves) refuses the very next hold and payment of
/// its token and writes nothing; the waiting room turned off refuses them
/// too (then a buyer session is who buys).
#[tokio::test]
async fn an_ended_session_or_a_waiting_room_turned_off_refuses_the_next_step_of_an_access_token() {
    let app = spawn_app().await;
    let ring = test_keyring();
    for switch_off in [false, true] {
        let event = queued_event(&app).await;
        let section = app.a_section_of(&event).await;
        let visitor = format!("visitor-{switch_off}");
        let token = access_token(&ring, &event, &visitor, in_ten_minutes());
        let one_seat =
            || json!({"client_reservation_id": uuid::Uuid::new_v4(), "section_id": section, "quantity": 1});
        let hold = || {
            let path = format!("/api/v1/events/{event}/reservations");
            app.client.post(app.url(&path)).bearer_auth(&token).json(&one_seat()).send()
        };
        let (status, held) = crate::helpers::read(hold().await.unwrap()).await;
        assert_eq!(status, 201, "admitted: the token holds {held}");

        let refusal = if switch_off {
            let (status, body) = change_queue(&app, &event, json!({"enabled": false})).await;
            assert_eq!(status, 200, "{body}");
            "buyer_session_required"
        } else {
            let leave =
                app.client.delete(app.url(&format!("/api/v1/events/{event}/access"))).bearer_auth(&token);
            assert_eq!(leave.send().await.unwrap().status(), 204);
            "access_session_ended"
        };
        let (status, body) = crate::helpers::read(hold().await.unwrap()).await;
        assert_eq!((status, body["error"].as_str()), (401, Some(refusal)), "{body}");
        let (status, body) = pay_with(&app, &held, &token).await;
        assert_eq!((status, body["error"].as_str()), (401, Some(refusal)), "{body}");

        let written = holds_and_payments(&app, &event).await;
        assert_eq!(written, (1, 0), "only the hold made before, and no payment");
    }
}

/// A payment checks that the token it comes with is for the hold's own
/// event, even when the same visitor was let in to two sales.
#[tokio::test]
async fn a_hold_is_paid_only_with_a_token_for_its_own_event() {
    let app = spawn_app().await;
    let ring = test_keyring();
    let (event, other_event) = (queued_event(&app).await, queued_event(&app).await);
    let section = app.a_section_of(&event).await;
    let token = access_token(&ring, &event, "twice-admitted", in_ten_minutes());
    let foreign = access_token(&ring, &other_event, "twice-admitted", in_ten_minutes());
    let hold =
        app.client.post(app.url(&format!("/api/v1/events/{event}/reservations"))).bearer_auth(&token).json(
            &json!({"client_reservation_id": uuid::Uuid::new_v4(), "section_id": section, "quantity": 1}),
        );
    let (status, held) = crate::helpers::read(hold.send().await.unwrap()).await;
    assert_eq!(status, 201, "{held}");

    let (status, body) = pay_with(&app, &held, &foreign).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("access_token_wrong_event")), "{body}");
    let payments: i64 = sqlx::query_scalar("SELECT count(*) FROM payments").fetch_one(&app.db).await.unwrap();
    assert_eq!(payments, 0);
}

/// A paid order ends its waiting-room session in the transaction that
/// settles it, whoever settles: here the reconciler, after the answer to
/// the buyer's own request was lost. A declined card leaves the session
/// open, to pay with another.
#[tokio::test]
async fn an_order_ends_its_session_whoever_settles_it_and_a_declined_card_does_not() {
    let lost_answers = SandboxFaults { timeout_rate: 1.0, ..SandboxFaults::default() };
    let app = spawn_app_with_faults(lost_answers).await;
    let ring = test_keyring();
    let event = queued_event(&app).await;
    let section = app.a_section_of(&event).await;
    let seatmap = format!("/api/v1/events/{event}/seatmap");
    let expires = in_ten_minutes();
    let mut visitors = Vec::new();
    for (visitor, card) in [("paying", "pm_card_visa"), ("declined", "pm_card_chargeDeclined")] {
        let token = access_token(&ring, &event, visitor, expires);
        let hold = app
            .client
            .post(app.url(&format!("/api/v1/events/{event}/reservations")))
            .bearer_auth(&token)
            .json(
                &json!({"client_reservation_id": uuid::Uuid::new_v4(), "section_id": section, "quantity": 1}),
            );
        let (status, held) = crate::helpers::read(hold.send().await.unwrap()).await;
        assert_eq!(status, 201, "{held}");
        let (status, body) = pay_by_card(&app, &held, &token, card).await;
        assert_eq!((status, body["error"].as_str()), (503, Some("payment_pending")), "{body}");
        assert_eq!(get_with(&app, &seatmap, Some(&token)).await.0, 200, "pending: the session goes on");
        visitors.push((token, held));
    }

    assert_eq!(
        reconcile(&WarmPool::new(app.db.clone()), &healthy_provider(&app), Duration::ZERO).await.unwrap(),
        2
    );
    let [(paid, held), (declined, _)] = &visitors[..] else { unreachable!("two visitors") };
    let (status, body) = get_with(&app, &seatmap, Some(paid)).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("access_session_ended")), "{body}");
    let (status, order) = pay_with(&app, held, paid).await;
    assert_eq!(status, 200, "the buyer's retry hears the order the reconciler placed: {order}");
    assert_eq!(get_with(&app, &seatmap, Some(declined)).await.0, 200, "a decline ends nothing");

    let ended: Vec<(String, i64)> =
        sqlx::query_as("SELECT jti, extract(epoch FROM expires_at)::bigint FROM ended_access_sessions")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(ended, [("jti-paying".to_owned(), expires)], "kept until the token expires anyway");
}
