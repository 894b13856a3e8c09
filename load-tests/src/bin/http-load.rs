//! A closed-loop HTTP/1.1 load generator: `CONNECTIONS` keep-alive
//! connections each send `GET URL` back to back for `SECONDS`, then one
//! JSON line with the request rate and latency percentiles. Small and
//! native, so the edge host and its baseline are measured the same way.
//!
//! `http-load [--post] <url> <connections> <seconds> [header: value]...`

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hyper::StatusCode;
use load_tests::{Connection, Latencies};

struct Tally {
    latencies: Latencies,
    errors: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let method = if args.first().is_some_and(|a| a == "--post") {
        args.remove(0);
        hyper::Method::POST
    } else {
        hyper::Method::GET
    };
    let [url, connections, seconds, headers @ ..] = args.as_slice() else {
        bail!("usage: http-load [--post] <url> <connections> <seconds> [header: value]...");
    };
    let uri: hyper::Uri = url.parse().context("url")?;
    let connections: usize = connections.parse().context("connections")?;
    let duration = Duration::from_secs_f64(seconds.parse().context("seconds")?);
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|h| h.split_once(':').map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).context("header"))
        .collect::<anyhow::Result<_>>()?;
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(run_connection(method.clone(), uri.clone(), headers.clone(), deadline)))
        .collect();
    let mut latencies = Latencies::default();
    let mut errors = 0;
    for worker in workers {
        let tally = worker.await??;
        latencies.extend(tally.latencies);
        errors += tally.errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "requests": latencies.count(),
            "errors": errors,
            "seconds": elapsed,
            "rps": latencies.count() as f64 / elapsed,
            "p50_ms": latencies.percentile_ms(0.50),
            "p99_ms": latencies.percentile_ms(0.99),
        })
    );
    Ok(())
}

async fn run_connection(
    method: hyper::Method,
    uri: hyper::Uri,
    headers: Vec<(String, String)>,
    deadline: Instant,
) -> anyhow::Result<Tally> {
    let mut tally = Tally { latencies: Latencies::default(), errors: 0 };
    let mut connection = Connection::to(&uri)?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    while Instant::now() < deadline {
        let started = Instant::now();
        match connection.send(method.clone(), path, &headers, Bytes::new()).await {
            Ok((status, _)) if status.is_success() || status == StatusCode::NOT_MODIFIED => {
                tally.latencies.record(started.elapsed())
            }
            // A refusal, or a broken connection (the next request opens a new one).
            Ok(_) | Err(_) => tally.errors += 1,
        }
    }
    Ok(tally)
}
