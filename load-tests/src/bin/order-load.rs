//! Whole orders straight at the origin, closed loop: `BUYERS` keep-alive
//! connections each play one fresh buyer after another (buyer session,
//! best-available hold of one seat in a random section, payment with the
//! sandbox's test card) for `SECONDS`, then print one JSON line: orders,
//! refusals per step, orders/s and latency percentiles of whole orders.
//! Native, so the client costs the machine little beside what it measures.
//!
//! `order-load <origin-url> <event-id> <section-id,...> <buyers> <seconds>`

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hyper::{Method, StatusCode, Uri};
use load_tests::{Connection, Latencies};
use serde_json::{Value, json};
use uuid::Uuid;

/// Where an order stopped short.
#[derive(Default)]
struct Refusals {
    session: u64,
    hold: u64,
    commit: u64,
}

#[derive(Default)]
struct Tally {
    orders: Latencies,
    refused: Refusals,
}

struct Sale {
    origin: Uri,
    event: String,
    sections: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [origin, event, sections, buyers, seconds] = args.as_slice() else {
        bail!("usage: order-load <origin-url> <event-id> <section-id,...> <buyers> <seconds>");
    };
    let sale = std::sync::Arc::new(Sale {
        origin: origin.parse().context("origin url")?,
        event: event.clone(),
        sections: sections.split(',').map(str::to_owned).collect(),
    });
    let buyers: usize = buyers.parse().context("buyers")?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds.parse().context("seconds")?);
    let started = Instant::now();
    let workers: Vec<_> = (0..buyers).map(|_| tokio::spawn(buy_until(sale.clone(), deadline))).collect();
    let mut all = Tally::default();
    for worker in workers {
        let tally = worker.await??;
        all.orders.extend(tally.orders);
        all.refused.session += tally.refused.session;
        all.refused.hold += tally.refused.hold;
        all.refused.commit += tally.refused.commit;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "orders": all.orders.count(),
            "refused": {"session": all.refused.session, "hold": all.refused.hold, "commit": all.refused.commit},
            "seconds": elapsed,
            "orders_per_second": all.orders.count() as f64 / elapsed,
            "p50_ms": all.orders.percentile_ms(0.50),
            "p99_ms": all.orders.percentile_ms(0.99),
        })
    );
    Ok(())
}

async fn buy_until(sale: std::sync::Arc<Sale>, deadline: Instant) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut connection = Connection::to(&sale.origin)?;
    while Instant::now() < deadline {
        let started = Instant::now();
        match one_order(&mut connection, &sale).await {
            Ok(()) => tally.orders.record(started.elapsed()),
            Err(Step::Session) => tally.refused.session += 1,
            Err(Step::Hold) => tally.refused.hold += 1,
            Err(Step::Commit) => tally.refused.commit += 1,
        }
    }
    Ok(tally)
}

/// The step an order failed at.
enum Step {
    Session,
    Hold,
    Commit,
}

async fn one_order(connection: &mut Connection, sale: &Sale) -> Result<(), Step> {
    const JSON: (&str, &str) = ("content-type", "application/json");
    let session = post(connection, "/api/v1/buyer-sessions", &[], Value::Null, StatusCode::CREATED)
        .await
        .ok_or(Step::Session)?;
    let token = session["buyer_token"].as_str().ok_or(Step::Session)?;
    let authorization = format!("Bearer {token}");
    let buyer = [JSON, ("authorization", authorization.as_str())];

    let pick = Uuid::new_v4();
    let section = &sale.sections[(pick.as_u128() % sale.sections.len() as u128) as usize];
    let hold = json!({"client_reservation_id": pick, "section_id": section, "quantity": 1});
    let path = format!("/api/v1/events/{}/reservations", sale.event);
    let held = post(connection, &path, &buyer, hold, StatusCode::CREATED).await.ok_or(Step::Hold)?;
    let reservation = held["reservation_id"].as_str().ok_or(Step::Hold)?;

    let key = Uuid::new_v4().to_string();
    let paying = [buyer[0], buyer[1], ("idempotency-key", key.as_str())];
    let pay = json!({"payment_method_id": "pm_card_visa",
                     "billing_details": {"name": "Bench Buyer", "email": "bench@example.com"}});
    let path = format!("/api/v1/reservations/{reservation}/commit");
    post(connection, &path, &paying, pay, StatusCode::OK).await.ok_or(Step::Commit)?;
    Ok(())
}

/// The answer's JSON if the status is `expected`.
async fn post(
    connection: &mut Connection,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
    expected: StatusCode,
) -> Option<Value> {
    let body = if body.is_null() { Bytes::new() } else { Bytes::from(body.to_string()) };
    match connection.send(Method::POST, path, headers, body).await {
        Ok((status, answer)) if status == expected => serde_json::from_slice(&answer).ok(),
        _ => None,
    }
}
