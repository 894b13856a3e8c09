//! The catalog as a runtime-independent service: validates the request,
//! serves the page from the shared cache when it can, else renders it from
//! the origin's catalog API, and applies HTTP caching rules on the way out.

use edge_core::catalog::{Event, EventList, event_page, list_page};
use edge_core::html::{escape, page};
use edge_core::http_cache::{CachePolicy, NO_STORE, etag, not_modified};
use edge_core::query::ListQuery;
use edge_platform::Runtime;
use http::{HeaderValue, Method, StatusCode, header};

use crate::cache::{PageCache, Rendered, Source};

type Response = http::Response<Vec<u8>>;

pub struct Config {
    pub origin_url: String,
    /// How long a rendered page is fresh (availability staleness).
    pub cache_seconds: u32,
    /// Redis over Upstash REST (`url`, `token`); without it, no shared cache.
    pub redis: Option<(String, String)>,
}

impl Config {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            origin_url: var("ORIGIN_URL").unwrap_or_else(|| "http://127.0.0.1:8080".into()),
            cache_seconds: var("CACHE_SECONDS").and_then(|s| s.parse().ok()).unwrap_or(5),
            redis: var("UPSTASH_REDIS_REST_URL").zip(var("UPSTASH_REDIS_REST_TOKEN")),
        }
    }
}

/// What failed, mapped once to a page or JSON problem.
enum Problem {
    MethodNotAllowed,
    InvalidQuery(String),
    NotFound(&'static str),
    OriginUnavailable,
}

impl Problem {
    fn respond(self, api: bool) -> Response {
        let (status, code, message) = match self {
            Problem::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "only GET and HEAD are served here".into(),
            ),
            Problem::InvalidQuery(message) => (StatusCode::BAD_REQUEST, "invalid_query", message),
            Problem::NotFound(what) => (StatusCode::NOT_FOUND, "not_found", format!("no such {what}")),
            Problem::OriginUnavailable => (
                StatusCode::BAD_GATEWAY,
                "origin_unavailable",
                "the catalog is unavailable, try again shortly".into(),
            ),
        };
        if api {
            let body = serde_json::json!({ "error": code, "message": message }).to_string();
            respond(status, "application/json", NO_STORE, body.into_bytes())
        } else {
            let html = page(
                &message,
                &format!("<h1>{}</h1><p><a href=\"/events\">All events</a></p>", escape(&message)),
            );
            respond(status, "text/html; charset=utf-8", NO_STORE, html.into_bytes())
        }
    }
}

pub async fn handle<R: Runtime>(runtime: &R, config: &Config, request: &http::Request<Vec<u8>>) -> Response {
    let api = request.uri().path().starts_with("/api/");
    match serve(runtime, config, request, api).await {
        Ok(response) => response,
        Err(problem) => problem.respond(api),
    }
}

async fn serve<R: Runtime>(
    runtime: &R,
    config: &Config,
    request: &http::Request<Vec<u8>>,
    api: bool,
) -> Result<Response, Problem> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Err(Problem::MethodNotAllowed);
    }
    let path = request.uri().path();
    let query = request.uri().query().unwrap_or("");
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (origin_path, list) = match segments.as_slice() {
        [""] | ["events"] | ["api", "v1", "events"] => {
            let list = ListQuery::parse(query).map_err(|e| Problem::InvalidQuery(e.to_string()))?;
            (format!("/api/v1/events?{}", list.canonical()), Some(list))
        }
        ["events", id] | ["api", "v1", "events", id] => match uuid::Uuid::parse_str(id) {
            Ok(id) => (format!("/api/v1/events/{id}"), None),
            Err(_) => return Err(Problem::NotFound("event")),
        },
        _ => return Err(Problem::NotFound("page")),
    };
    let content_type = if api { "application/json" } else { "text/html; charset=utf-8" };
    let render = |json: &[u8]| -> Option<Vec<u8>> {
        if api {
            return Some(json.to_vec());
        }
        let html = match &list {
            Some(query) => serde_json::from_slice::<EventList>(json).map(|l| list_page(&l, query)),
            None => serde_json::from_slice::<Event>(json).map(|e| event_page(&e)),
        };
        html.map_err(|e| eprintln!("unexpected origin JSON: {e}")).ok().map(String::into_bytes)
    };
    let cache = PageCache::new(runtime, config);
    let rendered = cache.get_or_render(&origin_path, content_type, render).await?;
    Ok(cacheable(request, config, rendered))
}

impl From<crate::cache::RenderError> for Problem {
    fn from(e: crate::cache::RenderError) -> Self {
        match e {
            crate::cache::RenderError::NotFound => Problem::NotFound("event"),
            crate::cache::RenderError::Origin => Problem::OriginUnavailable,
        }
    }
}

/// A 200 with validators, or a 304 when the client already has these bytes;
/// `X-Stampede-Cache` says where the page came from.
fn cacheable(request: &http::Request<Vec<u8>>, config: &Config, rendered: Rendered) -> Response {
    let tag = etag(&rendered.body);
    let policy =
        CachePolicy { s_maxage: config.cache_seconds, stale_while_revalidate: 30, stale_if_error: 600 };
    let if_none_match = request.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    let mut response = if not_modified(if_none_match, &tag) {
        let mut response = http::Response::new(Vec::new());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        set(&mut response, header::CACHE_CONTROL, &policy.header());
        response
    } else {
        respond(StatusCode::OK, &rendered.content_type, &policy.header(), rendered.body)
    };
    set(&mut response, header::ETAG, &tag);
    set(&mut response, header::AGE, &rendered.age_seconds.to_string());
    let source = match rendered.source {
        Source::Hit => "hit",
        Source::Miss => "miss",
        Source::Stale => "stale",
        Source::StaleIfError => "stale-if-error",
    };
    set(&mut response, header::HeaderName::from_static("x-stampede-cache"), source);
    response
}

fn respond(status: StatusCode, content_type: &str, cache_control: &str, body: Vec<u8>) -> Response {
    let length = body.len().to_string();
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    set(&mut response, header::CONTENT_TYPE, content_type);
    set(&mut response, header::CONTENT_LENGTH, &length);
    set(&mut response, header::CACHE_CONTROL, cache_control);
    response
}

fn set(response: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}
