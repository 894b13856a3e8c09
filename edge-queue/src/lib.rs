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

#[http_component]
async fn handle(request: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
    // Spin (and our host) put the caller's address and the full URL in headers.
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let client_ip = header("spin-client-addr").map(|addr| match addr.rsplit_once(':') {
        Some((ip, _)) => ip.trim_matches(['[', ']']).to_owned(),
        None => addr,
    });
    let https = header("spin-full-url").is_some_and(|url| url.starts_with("https:"));
    service::handle(&Wasi, Incoming { request, client_ip, https }).await
}
