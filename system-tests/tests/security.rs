//! The edge's share of the security rules, on the real components in the
//! edge host and under workerd in front of the real origin: one spelling
//! per path (no encoded id slips past the gate), visits that end are
//! refused at the edge and at the origin, hostile requests stop at the edge.

mod support;

use std::io::{Read as _, Write as _};

use chrono::Utc;
use serde_json::{Value, json};
use support::{EdgeRuntime, Stack, Visitor, admitted, client, queue};
use uuid::Uuid;

fn an_hour_ago() -> chrono::DateTime<Utc> {
    Utc::now() - chrono::Duration::hours(1)
}

async fn reservations(stack: &Stack) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM reservations").fetch_one(&stack.origin.db).await.unwrap()
}

/// `%XX` for the first character, then the rest as it is.
fn encode_first(id: &str) -> String {
    format!("%{:02X}{}", id.as_bytes()[0], &id[1..])
}

/// `plain` written as the edge must still read it: the id's first
/// character encoded, the first and last segments' too, doubled slashes and
/// a trailing one. (Dot segments are resolved by the HTTP client itself, so
/// `edge_core::path`'s own tests cover them.)
fn other_spellings(plain: &str, id: &str) -> Vec<String> {
    let (head, last) = plain.rsplit_once('/').unwrap();
    vec![
        plain.replace(id, &encode_first(id)),
        format!("/{}", encode_first(&plain[1..])),
        format!("{}/", plain.replace('/', "//")),
        format!("{head}/{}", encode_first(last)),
    ]
}

/// The status and error code of `method path` without credentials.
async fn judge(stack: &Stack, method: &reqwest::Method, path: &str, body: &Value) -> (u16, Option<Value>) {
    let request = client()
        .request(method.clone(), stack.edge.url(path))
        .header("accept", "application/json")
        .header("idempotency-key", "attack")
        .json(body);
    let answer = Visitor::default().send(request).await;
    let code = serde_json::from_str::<Value>(&answer.text).ok().map(|v| v["error"].clone());
    (answer.status, code)
}

async fn no_spelling_of_a_checkout_path_passes_the_edge_without_access(runtime: EdgeRuntime) {
    let stack = Stack::start(runtime).await;
    let event = stack.event(queue(600, 10), an_hour_ago()).await;
    let (mut visitor, _) = admitted(&stack, event).await;
    let map = visitor.send(client().get(stack.edge.url(&format!("/api/v1/events/{event}/seatmap")))).await;
    let section = map.json()["sections"][0]["id"].as_str().unwrap().to_owned();
    let hold = json!({"client_reservation_id": Uuid::new_v4(), "quantity": 1, "section_id": section});
    let held = visitor
        .send(client().post(stack.edge.url(&format!("/api/v1/events/{event}/reservations"))).json(&hold))
        .await;
    assert_eq!(held.status, 201, "{}", held.text);
    let reservation = held.json()["reservation_id"].as_str().unwrap().to_owned();
    // The visitor's running hold, as a reloaded app asks for it.
    let current = visitor
        .send(client().get(stack.edge.url(&format!("/api/v1/events/{event}/reservations/current"))))
        .await;
    assert_eq!(
        (current.status, current.json()["reservation_id"].as_str()),
        (200, Some(reservation.as_str()))
    );
    let event = event.to_string();

    // Every checkout request without a token, then other spellings of its
    // path: each must be judged exactly as the plain one.
    let checkout = [
        (reqwest::Method::GET, format!("/api/v1/events/{event}/seatmap"), &event),
        (reqwest::Method::POST, format!("/api/v1/events/{event}/reservations"), &event),
        (reqwest::Method::GET, format!("/api/v1/events/{event}/reservations/current"), &event),
        (reqwest::Method::GET, format!("/events/{event}/checkout"), &event),
        (reqwest::Method::GET, format!("/api/v1/reservations/{reservation}"), &reservation),
        (reqwest::Method::POST, format!("/api/v1/reservations/{reservation}/commit"), &reservation),
        (reqwest::Method::PATCH, format!("/api/v1/reservations/{reservation}/extend"), &reservation),
        (reqwest::Method::DELETE, format!("/api/v1/reservations/{reservation}"), &reservation),
    ];
    let body = json!({"client_reservation_id": Uuid::new_v4(), "quantity": 1, "section_id": section,
        "additional_seconds": 60, "payment_method_id": "pm_card_visa",
        "billing_details": {"name": "M", "email": "m@x.io"}});
    for (method, plain, id) in checkout {
        let judged = judge(&stack, &method, &plain, &body).await;
        assert!(
            matches!(judged.0, 202 | 401) && judged.1 == Some(json!("access_token_required")),
            "{method} {plain}: {judged:?}"
        );
        for spelled in other_spellings(&plain, id) {
            assert_eq!(
                judge(&stack, &method, &spelled, &body).await,
                judged,
                "{method} {spelled} is {plain}"
            );
        }
    }
    assert_eq!(reservations(&stack).await, 1, "only the admitted visitor's hold exists");
    let still_held: String = sqlx::query_scalar("SELECT status FROM reservations WHERE id = $1::uuid")
        .bind(&reservation)
        .fetch_one(&stack.origin.db)
        .await
        .unwrap();
    assert_eq!(still_held, "held");

    // Ids that do not parse never reach the origin.
    for path in ["/api/v1/reservations/not-a-reservation", "/api/v1/orders/%00", "/orders/STM-0/../../x"] {
        let answer = Visitor::default().send(client().get(stack.edge.url(path))).await;
        assert!(matches!(answer.status, 400 | 404), "{path}: {} {}", answer.status, answer.text);
    }
}

async fn an_ended_visit_is_refused_at_the_edge_and_at_the_origin(runtime: EdgeRuntime) {
    let stack = Stack::start(runtime).await;
    // One visitor at a time: what the leaver frees goes to the next.
    let event = stack.event(queue(600, 1), an_hour_ago()).await;
    let seatmap = format!("/api/v1/events/{event}/seatmap");
    let (mut leaver, token) = admitted(&stack, event).await;
    let ticket = leaver.cookie("stampede_queue_").unwrap().to_owned();
    let mut next = Visitor::default();
    let waiting =
        next.send(client().post(stack.edge.url(&format!("/api/v1/events/{event}/queue/join")))).await;
    assert_eq!(waiting.json()["state"], "waiting", "{}", waiting.text);

    let left =
        leaver.send(client().post(stack.edge.url(&format!("/api/v1/events/{event}/queue/leave")))).await;
    assert_eq!(left.status, 200, "{}", left.text);

    // The same token, presented as an app would, is refused everywhere.
    let at_edge = client().get(stack.edge.url(&seatmap)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(at_edge.status(), 202);
    assert_eq!(at_edge.json::<Value>().await.unwrap()["error"], "access_token_required");
    let at_origin =
        client().get(format!("{}{seatmap}", stack.origin.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(at_origin.status(), 401);
    assert_eq!(at_origin.json::<Value>().await.unwrap()["error"], "access_session_ended");

    // Its queue ticket is not admitted again: joining with it queues anew.
    let mut returning = Visitor { cookies: vec![(format!("stampede_queue_{event}"), ticket.clone())] };
    let rejoined =
        returning.send(client().post(stack.edge.url(&format!("/api/v1/events/{event}/queue/join")))).await;
    assert_eq!(rejoined.status, 200, "{}", rejoined.text);
    assert_ne!(returning.cookie("stampede_queue_"), Some(ticket.as_str()), "a new ticket: {}", rejoined.text);
    let status = client()
        .get(stack.edge.url(&format!("/api/v1/events/{event}/queue/status")))
        .header("cookie", format!("stampede_queue_{event}={ticket}"))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 410);

    // The freed slot went to the next visitor, who buys; that ends their visit too.
    let now = next.send(client().get(stack.edge.url(&format!("/api/v1/events/{event}/queue/status")))).await;
    assert_eq!(now.json()["state"], "admitted", "{}", now.text);
    let buyer_token = now.json()["access_token"].as_str().unwrap().to_owned();
    let map = next.send(client().get(stack.edge.url(&seatmap))).await;
    let section = map.json()["sections"][0]["id"].as_str().unwrap().to_owned();
    let held = next
        .send(
            client().post(stack.edge.url(&format!("/api/v1/events/{event}/reservations"))).json(
                &json!({"client_reservation_id": Uuid::new_v4(), "quantity": 1, "section_id": section}),
            ),
        )
        .await;
    assert_eq!(held.status, 201, "{}", held.text);
    let commit = format!("/api/v1/reservations/{}/commit", held.json()["reservation_id"].as_str().unwrap());
    let paid = next
        .send(client().post(stack.edge.url(&commit)).header("idempotency-key", "k1").json(
            &json!({"payment_method_id": "pm_card_visa", "billing_details": {"name": "Ada", "email": "ada@x.io"}}),
        ))
        .await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    assert!(next.cookie("stampede_access_").is_none(), "the edge cleared the access cookie");
    let after = client().get(stack.edge.url(&seatmap)).bearer_auth(&buyer_token).send().await.unwrap();
    assert_eq!(after.status(), 202);
    let after = client()
        .get(format!("{}{seatmap}", stack.origin.base))
        .bearer_auth(&buyer_token)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);

    // The order stays reachable by its link, from anywhere, through the edge.
    let link = paid.json()["order_url"].as_str().unwrap().to_owned();
    let page = client().get(stack.edge.url(&link)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains(paid.json()["order_number"].as_str().unwrap()));
}

/// The gate passes any valid access token and the origin refuses those of
/// ended sessions, so a visit ended by its queue ticket alone (an app that
/// keeps the access token elsewhere) must end at the origin too.
async fn a_visit_left_with_its_ticket_alone_ends_the_access_token_kept_elsewhere(runtime: EdgeRuntime) {
    let stack = Stack::start(runtime).await;
    let event = stack.event(queue(600, 1), an_hour_ago()).await;
    let (leaver, token) = admitted(&stack, event).await;
    let ticket = leaver.cookie("stampede_queue_").unwrap().to_owned();
    let seatmap = format!("/api/v1/events/{event}/seatmap");
    let map = client().get(stack.edge.url(&seatmap)).bearer_auth(&token).send().await.unwrap();
    let section = map.json::<Value>().await.unwrap()["sections"][0]["id"].as_str().unwrap().to_owned();
    let mut next = Visitor::default();
    let waiting =
        next.send(client().post(stack.edge.url(&format!("/api/v1/events/{event}/queue/join")))).await;
    assert_eq!(waiting.json()["state"], "waiting", "{}", waiting.text);

    let left = client()
        .post(stack.edge.url(&format!("/api/v1/events/{event}/queue/leave")))
        .header("cookie", format!("stampede_queue_{event}={ticket}"))
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), 200, "{}", left.text().await.unwrap());

    let at_origin =
        client().get(format!("{}{seatmap}", stack.origin.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(at_origin.status(), 401);
    assert_eq!(at_origin.json::<Value>().await.unwrap()["error"], "access_session_ended");
    let hold = client()
        .post(stack.edge.url(&format!("/api/v1/events/{event}/reservations")))
        .bearer_auth(&token)
        .json(&json!({"client_reservation_id": Uuid::new_v4(), "quantity": 1, "section_id": section}))
        .send()
        .await
        .unwrap();
    assert_eq!(hold.status(), 202, "the edge answers with the waiting room");
    assert_eq!(hold.json::<Value>().await.unwrap()["error"], "access_token_required");
    assert_eq!(reservations(&stack).await, 0);

    let now = next.send(client().get(stack.edge.url(&format!("/api/v1/events/{event}/queue/status")))).await;
    assert_eq!(now.json()["state"], "admitted", "the freed slot went to the next: {}", now.text);
}

async fn oversized_and_malformed_requests_stop_at_the_edge(runtime: EdgeRuntime) {
    let stack = Stack::start(runtime).await;
    let event = stack.event(queue(600, 10), an_hour_ago()).await;
    let huge = vec![b'x'; 10 * 1024 * 1024];
    let answer = client()
        .post(stack.edge.url(&format!("/api/v1/events/{event}/reservations")))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 413);
    assert_eq!(answer.json::<Value>().await.unwrap()["error"], "body_too_large");
    let answer = client().get(stack.edge.url("/api/v1/reservations/a%2Fb")).send().await.unwrap();
    assert_eq!(answer.status(), 400);
    assert_eq!(answer.json::<Value>().await.unwrap()["error"], "invalid_path");
}

/// HTTP/1.0 allows a request without `Host`; the host refuses it cleanly.
#[tokio::test]
async fn a_request_without_a_host_gets_400_from_the_edge_host() {
    let stack = Stack::start(EdgeRuntime::Host).await;
    let url = reqwest::Url::parse(&stack.edge.url("/")).unwrap();
    let address = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.write_all(b"GET /api/v1/events HTTP/1.0\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.0 400") || answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("\"host_required\""), "{answer}");
}

on_every_edge!(
    no_spelling_of_a_checkout_path_passes_the_edge_without_access,
    an_ended_visit_is_refused_at_the_edge_and_at_the_origin,
    a_visit_left_with_its_ticket_alone_ends_the_access_token_kept_elsewhere,
    oversized_and_malformed_requests_stop_at_the_edge,
);
