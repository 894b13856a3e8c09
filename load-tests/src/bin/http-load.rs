//! A closed-loop HTTP/1.1 load generator: `CONNECTIONS` keep-alive
//! connections each send `GET URL` back to back for `SECONDS`, then one
//! JSON line with the request rate and latency percentiles. Small and
//! native, so the edge host and its baseline are measured the same way.
//!
//! `http-load [--post] <url> <connections> <seconds> [header: value]...`

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

struct Tally {
    latencies_us: Vec<u32>,
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
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let tally = worker.await??;
        latencies.extend(tally.latencies_us);
        errors += tally.errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        latencies.get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1))).copied()
    };
    let ms = |us: Option<u32>| us.map_or(0.0, |us| f64::from(us) / 1000.0);
    println!(
        "{}",
        serde_json::json!({
            "requests": latencies.len(),
            "errors": errors,
            "seconds": elapsed,
            "rps": latencies.len() as f64 / elapsed,
            "p50_ms": ms(percentile(0.50)),
            "p99_ms": ms(percentile(0.99)),
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
    let mut tally = Tally { latencies_us: Vec::new(), errors: 0 };
    let authority = uri.authority().context("url without host")?.clone();
    while Instant::now() < deadline {
        let stream = TcpStream::connect(authority.as_str()).await?;
        stream.set_nodelay(true)?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        while Instant::now() < deadline {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
                .header(hyper::header::HOST, authority.as_str());
            for (name, value) in &headers {
                request = request.header(name, value);
            }
            let started = Instant::now();
            let outcome = async {
                let response = sender.send_request(request.body(Empty::<Bytes>::new())?).await?;
                let ok =
                    response.status().is_success() || response.status() == hyper::StatusCode::NOT_MODIFIED;
                response.into_body().collect().await?;
                anyhow::Ok(ok)
            }
            .await;
            match outcome {
                Ok(true) => {
                    tally.latencies_us.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32)
                }
                Ok(false) => tally.errors += 1,
                // The connection broke: count it and open a new one.
                Err(_) => {
                    tally.errors += 1;
                    break;
                }
            }
        }
    }
    Ok(tally)
}
