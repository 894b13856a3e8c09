//! `edge-catalog`: the event catalog at the edge.
//!
//! Routes (see `spin.toml`): `/` and `/events` (HTML list), `/events/{id}`
//! (HTML event page), `/api/v1/events[/{id}]` (JSON). Data comes from the
//! origin at `ORIGIN_URL`; rendering and validation live in `edge-core`.
//! Rendered pages are shared through Redis (`UPSTASH_REDIS_REST_URL`,
//! [`cache`]); every answer carries an `ETag` and a `Cache-Control` that lets
//! shared caches keep it for `CACHE_SECONDS`. The entry points below only
//! hand requests to [`service`]: one for Spin (feature `spin`), one for
//! Cloudflare Workers (feature `workers`).

pub mod cache;
pub mod service;
pub mod source;

#[cfg(feature = "spin")]
mod spin_component {
    use edge_platform::spin::{Wasi, serve};
    use spin_sdk::http::{IncomingRequest, ResponseOutparam};
    use spin_sdk::http_component;

    use crate::service::{Config, handle};

    #[http_component]
    async fn handle_request(request: IncomingRequest, out: ResponseOutparam) {
        let config = Config::from_runtime(&Wasi);
        serve(request, out, |incoming| async move { handle(&Wasi, &config, &incoming.request).await }).await
    }
}

#[cfg(feature = "workers")]
mod cloudflare;

#[cfg(feature = "workers")]
mod worker_entry {
    use edge_platform::workers::{Fetch, serve};
    use worker::Cache;

    use crate::cache::Backends;
    use crate::cloudflare::{CachePages, Hyperdrive};
    use crate::service::{Config, handle_with, serves};

    /// The binding names `wrangler.toml` gives Hyperdrive (optional) and the
    /// edge-queue Worker.
    const HYPERDRIVE: &str = "HYPERDRIVE";
    const QUEUE: &str = "QUEUE";

    #[worker::event(fetch)]
    async fn fetch(
        request: worker::Request,
        env: worker::Env,
        _: worker::Context,
    ) -> worker::Result<worker::Response> {
        // Decide on the path's one spelling, as the queue Worker does.
        let path = edge_core::path::normalize(&request.path()).unwrap_or_default();
        if !serves(&path) {
            return env.service(QUEUE)?.fetch_request(request).await;
        }
        let hyperdrive = env.hyperdrive(HYPERDRIVE).ok();
        let runtime = Fetch::new(env);
        let config = Config::from_runtime(&runtime);
        let store = CachePages { cache: Cache::default(), redis: config.redis(&runtime) };
        let source = Hyperdrive { binding: hyperdrive, origin: config.origin(&runtime) };
        let backends = Backends { redis: config.redis(&runtime), store: Some(store), source };
        let (runtime, config) = (&runtime, &config);
        serve(
            request,
            |incoming| async move { handle_with(runtime, config, &incoming.request, backends).await },
        )
        .await
    }
}
