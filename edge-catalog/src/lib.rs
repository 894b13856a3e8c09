//! `edge-catalog`: the event catalog at the edge, as a Spin component.
//!
//! Routes (see `spin.toml`): `/` and `/events` (HTML list), `/events/{id}`
//! (HTML event page), `/api/v1/events[/{id}]` (JSON). Data comes from the
//! origin at `ORIGIN_URL`; rendering and validation live in `edge-core`.
//! Pages carry an `ETag` (a matching `If-None-Match` gets a 304) and a
//! `Cache-Control` that lets shared caches keep them for `CACHE_SECONDS`.

use edge_core::catalog::{Event, EventList, event_page, list_page};
use edge_core::html::{escape, page};
use edge_core::http_cache::{CachePolicy, NO_STORE, etag, not_modified};
use edge_core::query::ListQuery;
use spin_sdk::http::{Method, Request, Response, send};
use spin_sdk::http_component;

#[http_component]
async fn handle(request: Request) -> anyhow::Result<Response> {
    let origin = std::env::var("ORIGIN_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let path = request.path().to_owned();
    let query = request.query().to_owned();
    let api = path.starts_with("/api/");
    if *request.method() != Method::Get && *request.method() != Method::Head {
        return Ok(problem(api, 405, "method_not_allowed", "only GET and HEAD are served here"));
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (origin_path, list) = match segments.as_slice() {
        [""] | ["events"] | ["api", "v1", "events"] => match ListQuery::parse(&query) {
            Ok(list) => (format!("/api/v1/events?{}", list.canonical()), Some(list)),
            Err(e) => return Ok(problem(api, 400, "invalid_query", &e.to_string())),
        },
        ["events", id] | ["api", "v1", "events", id] => match uuid::Uuid::parse_str(id) {
            Ok(id) => (format!("/api/v1/events/{id}"), None),
            Err(_) => return Ok(problem(api, 404, "not_found", "no such event")),
        },
        _ => return Ok(problem(api, 404, "not_found", "no such page")),
    };

    let upstream: Response = match send(Request::get(format!("{origin}{origin_path}"))).await {
        Ok(response) => response,
        Err(e) => {
            eprintln!("origin request failed: {e}");
            return Ok(problem(
                api,
                502,
                "origin_unavailable",
                "the catalog is unavailable, try again shortly",
            ));
        }
    };
    let status = *upstream.status();
    if api || status != 200 {
        if status == 404 {
            return Ok(problem(api, 404, "not_found", "no such event"));
        }
        if status != 200 {
            return Ok(problem(api, 502, "origin_error", "the catalog is unavailable, try again shortly"));
        }
        return Ok(cacheable(&request, "application/json", upstream.into_body()));
    }
    let html = match &list {
        Some(query) => serde_json::from_slice::<EventList>(upstream.body()).map(|l| list_page(&l, query)),
        None => serde_json::from_slice::<Event>(upstream.body()).map(|e| event_page(&e)),
    };
    match html {
        Ok(html) => Ok(cacheable(&request, "text/html; charset=utf-8", html.into_bytes())),
        Err(e) => {
            eprintln!("unexpected origin JSON: {e}");
            Ok(problem(api, 502, "origin_error", "the catalog is unavailable, try again shortly"))
        }
    }
}

fn cache_policy() -> CachePolicy {
    let seconds = std::env::var("CACHE_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    CachePolicy { s_maxage: seconds, stale_while_revalidate: 30, stale_if_error: 600 }
}

/// A 200 with validators, or a 304 when the client already has these bytes.
fn cacheable(request: &Request, content_type: &str, body: Vec<u8>) -> Response {
    let tag = etag(&body);
    let cache_control = cache_policy().header();
    let if_none_match = request.header("if-none-match").and_then(|v| v.as_str());
    if not_modified(if_none_match, &tag) {
        return Response::builder()
            .status(304)
            .header("etag", tag)
            .header("cache-control", cache_control)
            .build();
    }
    let mut response = respond(200, content_type, &cache_control, body);
    response.set_header("etag", tag);
    response
}

fn respond(status: u16, content_type: &str, cache_control: &str, body: Vec<u8>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len().to_string())
        .header("cache-control", cache_control)
        .body(body)
        .build()
}

/// A JSON problem for API paths, a small HTML page for browsers.
fn problem(api: bool, status: u16, code: &str, message: &str) -> Response {
    if api {
        let body = serde_json::json!({ "error": code, "message": message }).to_string();
        respond(status, "application/json", NO_STORE, body.into_bytes())
    } else {
        let html =
            page(message, &format!("<h1>{}</h1><p><a href=\"/events\">All events</a></p>", escape(message)));
        respond(status, "text/html; charset=utf-8", NO_STORE, html.into_bytes())
    }
}
