//! `edge-queue`: the virtual waiting room in front of checkout.
//!
//! The runtime-independent service lives in [`service`] and reaches the
//! world only through `edge_platform::Runtime`: configuration, outbound HTTP
//! (origin, Redis over the Upstash REST protocol), the clock and randomness.
//! The entry points below only hand requests to it: one for Spin (feature
//! `spin`), one for Cloudflare Workers (feature `workers`).

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

#[cfg(feature = "workers")]
mod worker_entry {
    use edge_platform::workers::{Fetch, serve};

    #[worker::event(fetch)]
    async fn fetch(
        request: worker::Request,
        env: worker::Env,
        _: worker::Context,
    ) -> worker::Result<worker::Response> {
        let runtime = Fetch::new(env);
        serve(request, |incoming| crate::service::handle(&runtime, incoming)).await
    }
}
