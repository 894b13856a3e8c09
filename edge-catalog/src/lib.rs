//! `edge-catalog`: the event catalog at the edge, as a Spin component.
//!
//! Routes (see `spin.toml`): `/` and `/events` (HTML list), `/events/{id}`
//! (HTML event page), `/api/v1/events[/{id}]` (JSON). Data comes from the
//! origin at `ORIGIN_URL`; rendering and validation live in `edge-core`.
//! Rendered pages are shared through Redis (`UPSTASH_REDIS_REST_URL`,
//! [`cache`]); every answer carries an `ETag` and a `Cache-Control` that lets
//! shared caches keep it for `CACHE_SECONDS`.

pub mod cache;
pub mod service;

use edge_platform::spin::{Wasi, serve};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(request: IncomingRequest, out: ResponseOutparam) {
    let config = service::Config::from_env();
    serve(request, out, |incoming| async move { service::handle(&Wasi, &config, &incoming.request).await })
        .await
}
