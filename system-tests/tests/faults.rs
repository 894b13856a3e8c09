//! Faults the edge must ride out, on the real components: Redis stopped
//! mid-sale and started again.

mod support;

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use support::{EdgeRuntime, RedisProcess, Stack, Visitor, admitted, client, gateway_to, queue};

/// Longest any edge request may take while Redis is down: its Redis
/// timeout plus the origin's answer, with room for a busy machine.
const ANSWER_WITHIN: Duration = Duration::from_secs(4);
/// How soon after Redis is back joins work again.
const RECOVERED_WITHIN: Duration = Duration::from_secs(5);

/// `request`'s status and body, failing if it takes longer than [`ANSWER_WITHIN`].
async fn timed(visitor: &mut Visitor, request: reqwest::RequestBuilder, what: &str) -> support::Answer {
    let started = Instant::now();
    let answer = tokio::time::timeout(ANSWER_WITHIN, visitor.send(request))
        .await
        .unwrap_or_else(|_| panic!("{what} did not answer within {ANSWER_WITHIN:?}"));
    println!("{what}: {} in {:?}", answer.status, started.elapsed());
    answer
}

async fn a_redis_outage_degrades_the_edge_and_it_recovers(runtime: EdgeRuntime) {
    let mut redis = RedisProcess::start();
    let stack = Stack::start_on_gateway(runtime, gateway_to(&redis.url()).await, &[]).await;
    let an_hour_ago = Utc::now() - chrono::Duration::hours(1);
    let queued = stack.event(queue(600, 10), an_hour_ago).await;
    let open = stack
        .event(
            json!({"enabled": false, "new_users_per_minute": 60, "total_active_users": 10,
                   "session_duration_seconds": 600}),
            an_hour_ago,
        )
        .await;
    let (mut buyer, _) = admitted(&stack, queued).await;
    let (mut payer, _) = admitted(&stack, queued).await;

    redis.stop();
    let seatmap = |event| stack.edge.url(&format!("/api/v1/events/{event}/seatmap"));

    // An event without a queue does not depend on Redis at all.
    let map = timed(&mut Visitor::default(), client().get(seatmap(open)), "open event's seat map").await;
    assert_eq!(map.status, 200, "{}", map.text);
    // The catalog serves pages straight from the origin.
    let page = timed(&mut Visitor::default(), client().get(stack.edge.url("/events")), "catalog").await;
    assert_eq!(page.status, 200, "{}", page.text);
    // An admitted buyer keeps checking out on their valid access token.
    let map = timed(&mut buyer, client().get(seatmap(queued)), "admitted buyer's seat map").await;
    assert_eq!(map.status, 200, "{}", map.text);
    let section = map.json()["sections"][0]["id"].as_str().unwrap().to_owned();
    let hold = json!({"client_reservation_id": uuid::Uuid::new_v4(), "quantity": 1, "section_id": section});
    let reservations = stack.edge.url(&format!("/api/v1/events/{queued}/reservations"));
    let held = timed(&mut buyer, client().post(&reservations).json(&hold), "admitted buyer's hold").await;
    assert_eq!(held.status, 201, "{}", held.text);
    // And pays: the order is answered, though its session's slot cannot
    // be freed in Redis now (it lapses by itself).
    let hold = json!({"client_reservation_id": uuid::Uuid::new_v4(), "quantity": 1, "section_id": section});
    let held = timed(&mut payer, client().post(&reservations).json(&hold), "payer's hold").await;
    assert_eq!(held.status, 201, "{}", held.text);
    let commit = format!("/api/v1/reservations/{}/commit", held.json()["reservation_id"].as_str().unwrap());
    let payment =
        json!({"payment_method_id": "pm_card_visa", "billing_details": {"name": "Ada", "email": "ada@x.io"}});
    let pay = client().post(stack.edge.url(&commit)).header("idempotency-key", "outage").json(&payment);
    let paid = timed(&mut payer, pay, "payer's payment").await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    assert!(paid.json()["order_number"].is_string(), "{}", paid.text);
    assert!(payer.cookie("stampede_access_").is_none(), "the edge cleared the access cookie");
    // Newcomers are told to come back, cleanly.
    let join = stack.edge.url(&format!("/api/v1/events/{queued}/queue/join"));
    for attempt in 0..3 {
        let refused = timed(&mut Visitor::default(), client().post(&join), &format!("join #{attempt}")).await;
        assert_eq!(refused.status, 503, "{}", refused.text);
        assert_eq!(refused.json()["error"], "queue_unavailable");
        assert_eq!(refused.headers["retry-after"], "5");
    }
    // Checkout without a token is refused as always (that needs no Redis),
    // and a browser arriving there cannot queue now.
    let gated = timed(&mut Visitor::default(), client().get(seatmap(queued)), "tokenless seat map").await;
    assert_eq!(gated.status, 202, "{}", gated.text);
    assert_eq!(gated.json()["error"], "access_token_required");
    let checkout = stack.edge.url(&format!("/events/{queued}/checkout"));
    let browser = client().get(&checkout).header("accept", "text/html");
    let page = timed(&mut Visitor::default(), browser, "checkout page").await;
    assert_eq!(page.status, 503, "{}", page.text);

    redis.resume();
    let back = Instant::now();
    let mut newcomer = Visitor::default();
    loop {
        let answer = timed(&mut newcomer, client().post(&join), "join after the outage").await;
        if answer.status == 200 {
            assert!(answer.json()["access_token"].is_string(), "{}", answer.text);
            break;
        }
        assert_eq!(answer.status, 503, "{}", answer.text);
        assert!(
            back.elapsed() < RECOVERED_WITHIN,
            "joins still refused {:?} after Redis returned",
            back.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("recovered {:?} after Redis returned", back.elapsed());
    // The queue's state survived: the buyer admitted before is still in.
    let map = timed(&mut buyer, client().get(seatmap(queued)), "admitted buyer after the outage").await;
    assert_eq!(map.status, 200, "{}", map.text);
}

on_every_edge!(a_redis_outage_degrades_the_edge_and_it_recovers);
