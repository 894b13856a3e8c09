//! HTTP caching rules for edge responses: validators (`ETag`, `304`) and
//! the `Cache-Control` that lets shared caches serve a page for a few
//! seconds and keep serving it while they revalidate.

use sha2::{Digest as _, Sha256};

/// How long shared caches may keep a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// Fresh for shared caches (CDNs, the edge) for this long.
    pub s_maxage: u32,
    /// Then served stale while one request revalidates, for this long.
    pub stale_while_revalidate: u32,
    /// Served stale when the origin fails, for this long.
    pub stale_if_error: u32,
}

impl CachePolicy {
    /// Browsers always revalidate (`max-age=0`): a revalidation costs a 304.
    pub fn header(&self) -> String {
        format!(
            "public, max-age=0, s-maxage={}, stale-while-revalidate={}, stale-if-error={}",
            self.s_maxage, self.stale_while_revalidate, self.stale_if_error
        )
    }
}

/// Errors must not be cached.
pub const NO_STORE: &str = "no-store";

/// A strong validator for `body`: 128 bits of its SHA-256.
pub fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110
/// prescribes for this header; `*` matches anything).
pub fn not_modified(if_none_match: Option<&str>, etag: &str) -> bool {
    let Some(header) = if_none_match else { return false };
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    header.split(',').any(|candidate| candidate.trim() == "*" || opaque(candidate) == opaque(etag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_follow_the_content() {
        assert_eq!(etag(b"page"), etag(b"page"));
        assert_ne!(etag(b"page"), etag(b"page!"));
        assert!(etag(b"").starts_with('"') && etag(b"").len() == 34);
    }

    #[test]
    fn if_none_match_lists_weak_tags_and_wildcards() {
        let tag = etag(b"x");
        assert!(not_modified(Some(&tag), &tag));
        assert!(not_modified(Some(&format!("\"other\", W/{tag}")), &tag));
        assert!(not_modified(Some("*"), &tag));
        assert!(!not_modified(Some("\"other\""), &tag));
        assert!(!not_modified(None, &tag));
    }

    #[test]
    fn the_policy_lets_shared_caches_serve_stale() {
        let header = CachePolicy { s_maxage: 5, stale_while_revalidate: 30, stale_if_error: 600 }.header();
        assert_eq!(header, "public, max-age=0, s-maxage=5, stale-while-revalidate=30, stale-if-error=600");
    }
}
