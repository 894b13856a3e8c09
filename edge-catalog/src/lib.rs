//! `edge-catalog`: the event catalog at the edge.
//!
//! Routes (see `spin.toml`): `/` and `/events` (HTML list), `/events/{id}`
//! (HTML event page), `/api/v1/events[/{id}]` (JSON). Data comes from the
//! origin at `origin_url`; rendering and validation live in `edge-core`.
//! Rendered pages are shared through Redis (`upstash_redis_rest_url`,
//! [`cache`]); every answer carries an `ETag` and a `Cache-Control` that lets
//! shared caches keep it for `catalog_cache_seconds`. The entry points only
//! hand requests to [`service`]: the Spin component below (feature `spin`),
//! and [`cloudflare::serve`], which the one Worker (`edge-worker`) calls
//! (feature `workers`).

pub mod cache;
pub mod service;
pub mod source;

#[cfg(feature = "spin")]
mod spin_component {
    use edge_platform::spin::{Wasi, serve};
    use spin_sdk::http::{IncomingRequest, ResponseOutparam};
    use spin_sdk::http_component;

    use crate::service::{Config, handle};

    /// Read once per instance, as the waiting room does: variables do not
    /// change under a running instance, and each read crosses into the host.
    fn config() -> &'static Config {
        static CONFIG: std::sync::OnceLock<Config> = std::sync::OnceLock::new();
        CONFIG.get_or_init(|| Config::from_runtime(&Wasi))
    }

    #[http_component]
    async fn handle_request(request: IncomingRequest, out: ResponseOutparam) {
        serve(request, out, |incoming| async move { handle(&Wasi, config(), &incoming.request).await }).await
    }
}

/// The catalog's half of the Cloudflare Worker (`edge-worker`).
#[cfg(feature = "workers")]
pub mod cloudflare;
