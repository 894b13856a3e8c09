//! Tells the edge that the catalog changed, through the Redis its caches
//! live in (Upstash REST): bumps the catalog version, so every cached page
//! is refreshed on its next request, and drops the event's cached
//! waiting-room settings. Best effort by design: if Redis is unreachable,
//! edge pages still expire within their freshness window.

use std::time::Duration;

use queue_core::keys::EventKeys;
use uuid::Uuid;

#[derive(Clone)]
pub struct CatalogPurge {
    /// Upstash REST URL and token; `None` when the origin runs without an edge cache.
    target: Option<(String, String)>,
    client: reqwest::Client,
}

impl CatalogPurge {
    pub fn new(target: Option<(String, String)>) -> Self {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("HTTP client");
        Self { target, client }
    }

    pub async fn event_changed(&self, event: Uuid) {
        let Some((url, token)) = &self.target else { return };
        let commands = serde_json::json!([
            ["INCR", edge_core::page_cache::VERSION_KEY],
            ["DEL", EventKeys::new(&event.to_string()).settings()],
        ]);
        let sent = self
            .client
            .post(format!("{}/pipeline", url.trim_end_matches('/')))
            .bearer_auth(token)
            .json(&commands)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        if let Err(e) = sent {
            tracing::warn!(error = %e, %event, "catalog purge failed; edge pages refresh within their TTL");
        }
    }
}
