//! Rendered pages kept in Redis, shared by every edge instance.
//!
//! A page is stored with the catalog version it was rendered at. The origin
//! bumps that version when an organizer changes an event, so the next
//! request renders afresh; otherwise a page is fresh for `fresh_ms` and kept
//! long after, to be served while one request refreshes it or when the
//! origin fails.

use serde::{Deserialize, Serialize};

use crate::http_cache::etag;

/// Where a page lives: by the origin data it shows (path and normalised
/// query) and its representation, so `/` and `/events` share one entry.
pub fn page_key(origin_path: &str, content_type: &str) -> String {
    let kind = if content_type.starts_with("text/html") { "html" } else { "json" };
    format!("catalog:page:{kind}:{origin_path}")
}

/// The lock one request takes while it refreshes a page.
pub fn lock_key(page_key: &str) -> String {
    format!("catalog:lock:{page_key}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedPage {
    /// The catalog version it was rendered at.
    pub version: String,
    /// When it was rendered (ms since the epoch).
    pub rendered_ms: i64,
    pub content_type: String,
    pub body: String,
    /// The body's validator, computed once when rendered rather than on
    /// every request that serves it. (Pages stored before it existed do not
    /// parse, so they count as missing and are rendered again.)
    pub etag: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Serve it.
    Fresh,
    /// Refresh it; serve it meanwhile or if the origin fails.
    Stale,
}

impl CachedPage {
    pub fn rendered(version: String, rendered_ms: i64, content_type: &str, body: String) -> Self {
        let etag = etag(body.as_bytes());
        Self { version, rendered_ms, content_type: content_type.to_owned(), body, etag }
    }

    pub fn freshness(&self, current_version: &str, now_ms: i64, fresh_ms: i64) -> Freshness {
        if self.version == current_version && now_ms - self.rendered_ms < fresh_ms {
            Freshness::Fresh
        } else {
            Freshness::Stale
        }
    }

    /// Seconds since it was rendered, for the `Age` header.
    pub fn age_seconds(&self, now_ms: i64) -> i64 {
        ((now_ms - self.rendered_ms) / 1000).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(version: &str, rendered_ms: i64) -> CachedPage {
        CachedPage::rendered(version.into(), rendered_ms, "text/html", "<p>".into())
    }

    #[test]
    fn a_page_carries_its_bodys_validator_and_older_pages_do_not_parse() {
        let page = page("3", 1_000);
        assert_eq!(page.etag, etag(b"<p>"));
        let stored = serde_json::to_string(&page).unwrap();
        assert_eq!(serde_json::from_str::<CachedPage>(&stored).unwrap(), page);
        let before = r#"{"version":"3","rendered_ms":1000,"content_type":"text/html","body":"<p>"}"#;
        assert!(serde_json::from_str::<CachedPage>(before).is_err(), "rendered again, with its validator");
    }

    #[test]
    fn a_page_is_fresh_for_its_ttl_and_version_only() {
        assert_eq!(page("3", 1_000).freshness("3", 5_999, 5_000), Freshness::Fresh);
        assert_eq!(page("3", 1_000).freshness("3", 6_000, 5_000), Freshness::Stale);
        assert_eq!(
            page("3", 1_000).freshness("4", 1_001, 5_000),
            Freshness::Stale,
            "a purge outdates it at once"
        );
        assert_eq!(page("3", 1_000).age_seconds(4_500), 3);
    }

    #[test]
    fn representations_and_queries_get_their_own_keys() {
        let html = page_key("/api/v1/events?category=music", "text/html; charset=utf-8");
        assert_eq!(html, "catalog:page:html:/api/v1/events?category=music");
        assert_ne!(html, page_key("/api/v1/events?category=music", "application/json"));
        assert_ne!(html, page_key("/api/v1/events?category=comedy", "text/html"));
        assert!(lock_key(&html).starts_with("catalog:lock:"));
    }
}
