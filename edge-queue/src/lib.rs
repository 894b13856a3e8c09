//! `edge-queue`: the virtual waiting room in front of checkout.
//!
//! The runtime-independent service lives in [`service`] and reaches the
//! world only through `edge_platform::Runtime`: outbound HTTP (origin, Redis
//! over the Upstash REST protocol), the clock and randomness. This file is
//! the Spin adapter; other runtimes wrap the same service.

pub mod config;
pub mod service;
pub mod store;

use edge_platform::spin::{Wasi, serve};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(request: IncomingRequest, out: ResponseOutparam) {
    serve(request, out, |incoming| service::handle(&Wasi, incoming)).await
}
