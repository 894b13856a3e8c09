//! `edge-queue`: the virtual waiting room in front of checkout.
//!
//! The runtime-independent service lives in [`service`] and reaches the
//! world only through `edge_platform::Runtime`: configuration, outbound HTTP
//! (origin, Redis over the Upstash REST protocol), the clock and randomness.
//! The entry points below only hand requests to it: the Spin component
//! (feature `spin`), and [`cloudflare::serve`], which the one Worker
//! (`edge-worker`) calls (feature `workers`).

pub mod config;
pub mod service;
pub mod store;

#[cfg(feature = "spin")]
mod spin_component {
    use edge_platform::spin::{Wasi, serve};
    use spin_sdk::http::{IncomingRequest, ResponseOutparam};
    use spin_sdk::http_component;

    #[http_component]
    async fn handle(request: IncomingRequest, out: ResponseOutparam) {
        serve(request, out, |incoming| crate::service::handle(&Wasi, incoming)).await
    }
}

/// The waiting room's half of the Cloudflare Worker (`edge-worker`).
#[cfg(feature = "workers")]
pub mod cloudflare {
    use edge_platform::workers::{Fetch, serve as serve_with};

    /// Serves one request that is not the catalog's.
    pub async fn serve(request: worker::Request, env: worker::Env) -> worker::Result<worker::Response> {
        let runtime = Fetch::new(env);
        serve_with(request, |incoming| crate::service::handle(&runtime, incoming)).await
    }
}
