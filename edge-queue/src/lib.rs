//! `edge-queue`: the virtual waiting room in front of checkout.
//!
//! The runtime-independent service lives in [`service`] and reaches the
//! world only through [`runtime::Runtime`]: outbound HTTP (origin, Redis
//! over the Upstash REST protocol), the clock and randomness. This file is
//! the Spin adapter; other runtimes wrap the same service.

pub mod config;
pub mod redis;
pub mod runtime;
pub mod service;
pub mod store;

use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;

use crate::runtime::{Incoming, Runtime, SendError};

/// Outbound HTTP through `wasi:http`, time and randomness through WASI.
struct Wasi;

impl Runtime for Wasi {
    async fn send(&self, request: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, SendError> {
        spin_sdk::http::send(request).await.map_err(|e| SendError(e.to_string()))
    }

    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    fn random(&self) -> [u8; 32] {
        let mut bytes = [0; 32];
        getrandom::fill(&mut bytes).expect("WASI provides randomness");
        bytes
    }
}

/// Works at the level of `wasi:http` resources rather than spin-sdk's
/// `Request`/`Response`, whose header maps keep one value per name: the
/// waiting room sets two cookies at once and forwards the origin's headers
/// as they are.
#[http_component]
async fn handle(incoming: IncomingRequest, out: ResponseOutparam) {
    let (request, client_ip, https) = match read_request(incoming).await {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("edge-queue: unreadable request: {e}");
            return write_response(out, bad_request()).await;
        }
    };
    let response = service::handle(&Wasi, Incoming { request, client_ip, https }).await;
    write_response(out, response).await;
}

async fn read_request(
    incoming: IncomingRequest,
) -> anyhow::Result<(http::Request<Vec<u8>>, Option<String>, bool)> {
    let method = http::Method::from(incoming.method());
    let mut request =
        http::Request::builder().method(method).uri(incoming.path_with_query().unwrap_or_default());
    for (name, value) in incoming.headers().entries() {
        request = request.header(name, value);
    }
    let request = request.body(incoming.into_body().await?)?;
    // Spin (and our host) put the caller's address and the full URL in headers.
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let client_ip = header("spin-client-addr").map(|addr| match addr.rsplit_once(':') {
        Some((ip, _)) => ip.trim_matches(['[', ']']).to_owned(),
        None => addr,
    });
    let https = header("spin-full-url").is_some_and(|url| url.starts_with("https:"));
    Ok((request, client_ip, https))
}

async fn write_response(out: ResponseOutparam, response: http::Response<Vec<u8>>) {
    let headers: Vec<(String, Vec<u8>)> =
        response.headers().iter().map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec())).collect();
    let fields = Fields::from_list(&headers).unwrap_or_else(|_| Fields::new());
    let outgoing = OutgoingResponse::new(fields);
    if outgoing.set_status_code(response.status().as_u16()).is_err() {
        eprintln!("edge-queue: invalid status {}", response.status());
    }
    if let Err(e) = out.set_with_body(outgoing, response.into_body()).await {
        eprintln!("edge-queue: the client went away: {e:?}");
    }
}

fn bad_request() -> http::Response<Vec<u8>> {
    let mut response =
        http::Response::new(br#"{"error":"invalid_request","message":"unreadable request"}"#.to_vec());
    *response.status_mut() = http::StatusCode::BAD_REQUEST;
    response
}
