//! Whole orders, closed loop: `BUYERS` keep-alive connections each play one
//! fresh buyer after another (buyer session, best-available hold of one
//! seat in a random section, payment with the sandbox's test card) for
//! `SECONDS`, then print one JSON line: orders, refusals per step, orders/s
//! and latency percentiles of whole orders, and the rate of each tenth of
//! the orders in the order they were placed. Native, so the client costs
//! the machine little beside what it measures.
//! With `--until-sold-out`, a buyer told there are no seats left (409)
//! stops, and so does the run when every buyer has: a whole sale.
//! With `--through-edge`, the url is the edge's and the event has a waiting
//! room: each buyer joins the queue, waits to be admitted, and holds and
//! pays with the access token, every request through the edge.
//! With `--hold-only=N`, N fresh buyers each hold one seat and never pay
//! (a crowd still typing its card numbers); the holds are counted as the
//! orders.
//!
//! `order-load [--until-sold-out] [--through-edge] [--hold-only=N] <url> <event-id> <section-id,...> <buyers> <seconds>`

use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// No buyer session, or not admitted by the waiting room.
    entry: u64,
    hold: u64,
    commit: u64,
}

#[derive(Default)]
struct Tally {
    orders: Latencies,
    /// When each order was paid, from the start of the run.
    paid_at: Vec<Duration>,
    refused: Refusals,
    /// Holds answered "no seats left".
    sold_out: u64,
}

struct Sale {
    url: Uri,
    event: String,
    sections: Vec<String>,
    through_edge: bool,
    /// Holds left to make with `--hold-only`: buyers who never pay.
    holds_left: Option<AtomicUsize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (flags, args): (Vec<String>, Vec<String>) =
        std::env::args().skip(1).partition(|a| a.starts_with("--"));
    let [url, event, sections, buyers, seconds] = args.as_slice() else {
        bail!(
            "usage: order-load [--until-sold-out] [--through-edge] [--hold-only=N] <url> <event-id> <section-id,...> <buyers> <seconds>"
        );
    };
    let mut holds_left = None;
    for flag in &flags {
        match flag.split_once('=') {
            Some(("--hold-only", holds)) => {
                holds_left = Some(AtomicUsize::new(holds.parse().context("--hold-only")?))
            }
            None if ["--until-sold-out", "--through-edge"].contains(&flag.as_str()) => {}
            _ => bail!("order-load: unknown flag {flag}"),
        }
    }
    let until_sold_out = flags.iter().any(|f| f == "--until-sold-out");
    let sale = std::sync::Arc::new(Sale {
        url: url.parse().context("url")?,
        event: event.clone(),
        sections: sections.split(',').map(str::to_owned).collect(),
        through_edge: flags.iter().any(|f| f == "--through-edge"),
        holds_left,
    });
    let buyers: usize = buyers.parse().context("buyers")?;
    let started = Instant::now();
    let run = Run {
        started,
        deadline: started + Duration::from_secs_f64(seconds.parse().context("seconds")?),
        until_sold_out,
    };
    let workers: Vec<_> = (0..buyers).map(|_| tokio::spawn(buy_until(sale.clone(), run))).collect();
    let mut all = Tally::default();
    for worker in workers {
        let tally = worker.await??;
        all.orders.extend(tally.orders);
        all.paid_at.extend(tally.paid_at);
        all.refused.entry += tally.refused.entry;
        all.refused.hold += tally.refused.hold;
        all.refused.commit += tally.refused.commit;
        all.sold_out += tally.sold_out;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "orders": all.orders.count(),
            "refused": {"entry": all.refused.entry, "hold": all.refused.hold, "commit": all.refused.commit},
            "sold_out_answers": all.sold_out,
            "seconds": elapsed,
            "tenths_per_second": tenths_per_second(all.paid_at),
            "orders_per_second": all.orders.count() as f64 / elapsed,
            "p50_ms": all.orders.percentile_ms(0.50),
            "p99_ms": all.orders.percentile_ms(0.99),
        })
    );
    Ok(())
}

/// Orders per second in each tenth of the orders, by the time they were
/// paid: is the last seat as quick to sell as the first?
fn tenths_per_second(mut paid_at: Vec<Duration>) -> Vec<f64> {
    paid_at.sort_unstable();
    let n = paid_at.len();
    if n < 10 {
        return Vec::new();
    }
    (0..10)
        .map(|tenth| {
            let (first, last) = (tenth * n / 10, (tenth + 1) * n / 10 - 1);
            let from = if tenth == 0 { Duration::ZERO } else { paid_at[first - 1] };
            (last + 1 - first) as f64 / (paid_at[last] - from).as_secs_f64().max(1e-6)
        })
        .collect()
}

#[derive(Clone, Copy)]
struct Run {
    started: Instant,
    deadline: Instant,
    until_sold_out: bool,
}

async fn buy_until(sale: std::sync::Arc<Sale>, run: Run) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut connection = Connection::to(&sale.url)?;
    while Instant::now() < run.deadline {
        // With `--hold-only`, a buyer takes one of the holds left or stops.
        let no_hold_left = |left: &AtomicUsize| {
            left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_err()
        };
        if sale.holds_left.as_ref().is_some_and(no_hold_left) {
            break;
        }
        let started = Instant::now();
        match one_order(&mut connection, &sale).await {
            Ok(()) => {
                tally.orders.record(started.elapsed());
                tally.paid_at.push(run.started.elapsed());
            }
            Err(Step::Entry) => tally.refused.entry += 1,
            Err(Step::SoldOut) => {
                tally.sold_out += 1;
                if run.until_sold_out {
                    break;
                }
            }
            Err(Step::Hold) => tally.refused.hold += 1,
            Err(Step::Commit) => tally.refused.commit += 1,
        }
    }
    Ok(tally)
}

/// The step an order failed at.
enum Step {
    Entry,
    Hold,
    /// The hold was told no seats are left.
    SoldOut,
    Commit,
}

async fn one_order(connection: &mut Connection, sale: &Sale) -> Result<(), Step> {
    const JSON: (&str, &str) = ("content-type", "application/json");
    let token = if sale.through_edge {
        admitted(connection, sale).await
    } else {
        expect(post(connection, "/api/v1/buyer-sessions", &[], Value::Null).await, StatusCode::CREATED)
            .and_then(|session| Some(session["buyer_token"].as_str()?.to_owned()))
    };
    let authorization = format!("Bearer {}", token.ok_or(Step::Entry)?);
    let buyer = [JSON, ("authorization", authorization.as_str())];

    let pick = Uuid::new_v4();
    let section = &sale.sections[(pick.as_u128() % sale.sections.len() as u128) as usize];
    let hold = json!({"client_reservation_id": pick, "section_id": section, "quantity": 1});
    let path = format!("/api/v1/events/{}/reservations", sale.event);
    let held = match post(connection, &path, &buyer, hold).await {
        Some((StatusCode::CREATED, held)) => held,
        Some((StatusCode::CONFLICT, refusal)) if refusal["error"] == "seat_unavailable" => {
            return Err(Step::SoldOut);
        }
        _ => return Err(Step::Hold),
    };
    let reservation = held["reservation_id"].as_str().ok_or(Step::Hold)?;
    if sale.holds_left.is_some() {
        return Ok(());
    }

    let key = Uuid::new_v4().to_string();
    let paying = [buyer[0], buyer[1], ("idempotency-key", key.as_str())];
    let pay = json!({"payment_method_id": "pm_card_visa",
                     "billing_details": {"name": "Bench Buyer", "email": "bench@example.com"}});
    let path = format!("/api/v1/reservations/{reservation}/commit");
    expect(post(connection, &path, &paying, pay).await, StatusCode::OK).ok_or(Step::Commit)?;
    Ok(())
}

/// A new visitor's access token: a join, then the status polls the waiting
/// room asks for until it admits them (none when it admits on arrival).
async fn admitted(connection: &mut Connection, sale: &Sale) -> Option<String> {
    const PATIENCE: Duration = Duration::from_secs(30);
    let started = Instant::now();
    let join = format!("/api/v1/events/{}/queue/join", sale.event);
    let mut state = expect(post(connection, &join, &[], Value::Null).await, StatusCode::OK)?;
    let authorization = format!("Bearer {}", state["queue_token"].as_str()?);
    let status = format!("/api/v1/events/{}/queue/status", sale.event);
    while state["state"] != "admitted" {
        if state["state"] != "waiting" || started.elapsed() > PATIENCE {
            return None;
        }
        // As asked, but at most a second apart: the run is short.
        let asked = state["refresh_after_seconds"].as_u64().unwrap_or(1);
        tokio::time::sleep(Duration::from_millis((asked * 1000).clamp(100, 1000))).await;
        let headers = [("authorization", authorization.as_str())];
        let (code, answer) = connection.send(Method::GET, &status, &headers, Bytes::new()).await.ok()?;
        state = expect(Some((code, serde_json::from_slice(&answer).ok()?)), StatusCode::OK)?;
    }
    Some(state["access_token"].as_str()?.to_owned())
}

/// The answer's status and JSON; `None` if there was no JSON answer.
async fn post(
    connection: &mut Connection,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> Option<(StatusCode, Value)> {
    let body = if body.is_null() { Bytes::new() } else { Bytes::from(body.to_string()) };
    let (status, answer) = connection.send(Method::POST, path, headers, body).await.ok()?;
    Some((status, serde_json::from_slice(&answer).ok()?))
}

/// The JSON of an answer with the `expected` status.
fn expect(answer: Option<(StatusCode, Value)>, expected: StatusCode) -> Option<Value> {
    answer.filter(|(status, _)| *status == expected).map(|(_, json)| json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenths_show_a_sale_that_slows_down() {
        // 100 orders, one every 10 ms: ten tenths of 100 orders/s.
        let steady: Vec<Duration> = (1..=100).map(|n| Duration::from_millis(10 * n)).collect();
        let tenths = tenths_per_second(steady);
        assert_eq!(tenths.len(), 10);
        assert!(tenths.iter().all(|rate| (rate - 100.0).abs() < 0.01), "{tenths:?}");
        // The last 10 orders take 20 ms each: the last tenth sells at half the rate.
        let slowing: Vec<Duration> = (1..=100)
            .map(|n| Duration::from_millis(if n <= 90 { 10 * n } else { 900 + 20 * (n - 90) }))
            .collect();
        let tenths = tenths_per_second(slowing);
        assert!((tenths[0] - 100.0).abs() < 0.01 && (tenths[9] - 50.0).abs() < 0.01, "{tenths:?}");
        assert!(tenths_per_second(vec![Duration::from_millis(1); 9]).is_empty(), "too few to split");
    }
}
