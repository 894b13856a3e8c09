//! The catalog as a runtime-independent service: validates the request,
//! serves the page from the shared cache when it can, else renders it from
//! the origin's catalog API, and applies HTTP caching rules on the way out.

use edge_core::catalog::{event_page, list_page};
use edge_core::html::notice;
use edge_core::http_cache::{CachePolicy, NO_STORE, not_modified};
use edge_platform::Runtime;
use edge_platform::redis::Redis;
use http::{HeaderValue, Method, StatusCode, header};
use wire::catalog::{Event, EventList};
use wire::query::ListQuery;

use crate::cache::{Backends, InstancePages, PageCache, PageStore, RedisPages, Rendered, Source};
use crate::source::{CatalogRead, CatalogSource, OriginApi, ReadError};

type Response = http::Response<Vec<u8>>;

pub struct Config {
    pub origin_url: String,
    /// How long a rendered page is fresh (availability staleness).
    pub cache_seconds: u32,
    /// Redis over Upstash REST (`url`, `token`); without it, no shared cache.
    pub redis: Option<(String, String)>,
    /// `Cache-Control` of every page, written once.
    page_cache_control: HeaderValue,
}

impl Config {
    pub fn redis<'a, R: Runtime>(&'a self, runtime: &'a R) -> Option<Redis<'a, R>> {
        self.redis.as_ref().map(|(url, token)| Redis::new(runtime, url, token))
    }

    /// Pages in Redis (and the instance's memory), data from the origin:
    /// what every platform can do.
    pub fn backends<'a, R: Runtime>(
        &'a self,
        runtime: &'a R,
    ) -> Backends<'a, R, InstancePages<'a, R, RedisPages<'a, R>>, OriginApi<'a, R>> {
        let fresh_ms = i64::from(self.cache_seconds) * 1000;
        Backends {
            redis: self.redis(runtime),
            store: self.redis(runtime).map(|redis| InstancePages {
                runtime,
                shared: RedisPages { redis },
                fresh_ms,
            }),
            source: self.origin(runtime),
        }
    }

    pub fn origin<'a, R: Runtime>(&'a self, runtime: &'a R) -> OriginApi<'a, R> {
        OriginApi { runtime, origin_url: &self.origin_url }
    }

    pub fn from_runtime(runtime: &impl Runtime) -> Self {
        let var = |name: &str| runtime.var(name);
        let cache_seconds = var("catalog_cache_seconds").and_then(|s| s.parse().ok()).unwrap_or(5);
        let policy = CachePolicy { s_maxage: cache_seconds, stale_while_revalidate: 30, stale_if_error: 600 };
        Self {
            origin_url: var("origin_url").unwrap_or_else(|| "http://127.0.0.1:8080".into()),
            cache_seconds,
            redis: var("upstash_redis_rest_url").zip(var("upstash_redis_rest_token")),
            page_cache_control: HeaderValue::from_str(&policy.header()).expect("a policy is a valid header"),
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
        let mut response = if api {
            let body = wire::problem::Problem::new(code, message).to_json();
            respond(status, "application/json", HeaderValue::from_static(NO_STORE), body.into_bytes())
        } else {
            let html = notice(&message, &message);
            respond(status, "text/html; charset=utf-8", HeaderValue::from_static(NO_STORE), html.into_bytes())
        };
        if status == StatusCode::METHOD_NOT_ALLOWED {
            set(&mut response, header::ALLOW, "GET, HEAD");
        }
        response
    }
}

/// Serves `request` with pages in Redis and data from the origin.
pub async fn handle<R: Runtime>(runtime: &R, config: &Config, request: &http::Request<Vec<u8>>) -> Response {
    handle_with(runtime, config, request, config.backends(runtime)).await
}

/// Serves `request` with the given page store and catalog source.
pub async fn handle_with<R: Runtime, S: PageStore, C: CatalogSource>(
    runtime: &R,
    config: &Config,
    request: &http::Request<Vec<u8>>,
    backends: Backends<'_, R, S, C>,
) -> Response {
    let api = request.uri().path().starts_with("/api/");
    match serve(runtime, config, request, api, backends).await {
        Ok(response) => response,
        Err(problem) => problem.respond(api),
    }
}

enum Route<'a> {
    List,
    Event(&'a str),
}

/// The catalog's paths, as `spin.toml` routes them here.
fn route(path: &str) -> Option<Route<'_>> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] | ["events"] | ["api", "v1", "events"] => Some(Route::List),
        ["events", id] | ["api", "v1", "events", id] => Some(Route::Event(id)),
        _ => None,
    }
}

/// Whether `path` is the catalog's: the Worker's router (`edge-worker`)
/// hands the others to the waiting room, as `spin.toml` routes them.
pub fn serves(path: &str) -> bool {
    route(path).is_some()
}

async fn serve<R: Runtime, S: PageStore, C: CatalogSource>(
    runtime: &R,
    config: &Config,
    request: &http::Request<Vec<u8>>,
    api: bool,
    backends: Backends<'_, R, S, C>,
) -> Result<Response, Problem> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Err(Problem::MethodNotAllowed);
    }
    let query = request.uri().query().unwrap_or("");
    let read = match route(request.uri().path()) {
        Some(Route::List) => {
            CatalogRead::List(ListQuery::parse(query).map_err(|e| Problem::InvalidQuery(e.to_string()))?)
        }
        Some(Route::Event(id)) => match uuid::Uuid::parse_str(id) {
            Ok(id) => CatalogRead::Event(id),
            Err(_) => return Err(Problem::NotFound("event")),
        },
        None => return Err(Problem::NotFound("page")),
    };
    let content_type = if api { "application/json" } else { "text/html; charset=utf-8" };
    // Only a miss renders, and only a rendering needs the time.
    let render = |json: &[u8]| -> Option<Vec<u8>> {
        if api {
            return Some(json.to_vec());
        }
        let now = chrono::DateTime::from_timestamp_millis(runtime.now_ms())
            .expect("the clock is within chrono's range");
        let html = match &read {
            CatalogRead::List(query) => {
                serde_json::from_slice::<EventList>(json).map(|l| list_page(&l, query))
            }
            CatalogRead::Event(_) => serde_json::from_slice::<Event>(json).map(|e| event_page(&e, now)),
        };
        html.map_err(|e| runtime.log(&format!("unexpected origin JSON: {e}"))).ok().map(String::into_bytes)
    };
    let cache = PageCache::new(runtime, config.cache_seconds, backends);
    let rendered = cache.get_or_render(&read, content_type, render).await?;
    Ok(cacheable(request, config, rendered))
}

impl From<ReadError> for Problem {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::NotFound => Problem::NotFound("event"),
            ReadError::Unavailable => Problem::OriginUnavailable,
        }
    }
}

/// A 200 with validators, or a 304 when the client already has these bytes;
/// `X-Stampede-Cache` says where the page came from.
fn cacheable(request: &http::Request<Vec<u8>>, config: &Config, rendered: Rendered) -> Response {
    let tag = rendered.etag;
    let cache_control = config.page_cache_control.clone();
    let if_none_match = request.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    let mut response = if not_modified(if_none_match, &tag) {
        let mut response = http::Response::new(Vec::new());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response.headers_mut().insert(header::CACHE_CONTROL, cache_control);
        response
    } else {
        respond(StatusCode::OK, &rendered.content_type, cache_control, rendered.body)
    };
    set(&mut response, header::ETAG, &tag);
    let source = match rendered.source {
        Source::Hit => "hit",
        Source::Miss => "miss",
        Source::Stale => "stale",
        Source::StaleIfError => "stale-if-error",
    };
    let headers = response.headers_mut();
    headers.insert(header::AGE, HeaderValue::from(rendered.age_seconds));
    headers.insert(header::HeaderName::from_static("x-stampede-cache"), HeaderValue::from_static(source));
    response
}

fn respond(status: StatusCode, content_type: &str, cache_control: HeaderValue, body: Vec<u8>) -> Response {
    let length = HeaderValue::from(body.len());
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    set(&mut response, header::CONTENT_TYPE, content_type);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, length);
    headers.insert(header::CACHE_CONTROL, cache_control);
    response
}

fn set(response: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    /// The Worker routes by [`super::serves`], Spin by `spin.toml`: every
    /// route `spin.toml` declares goes to the catalog under both or neither.
    #[test]
    fn the_workers_router_agrees_with_spin_toml() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../spin.toml");
        let manifest: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
        let triggers = manifest["trigger"]["http"].as_array().unwrap();
        assert!(triggers.len() > 10, "{triggers:?}");
        for trigger in triggers {
            let route = trigger["route"].as_str().unwrap();
            // A path the route matches: a UUID for each parameter, one more segment for `...`.
            let example = route.replace(":id", "6f1c1a52-4a84-4c2e-9b65-0d0c7f7ae001").replace("...", "x");
            let to_catalog = trigger["component"].as_str() == Some("edge-catalog");
            assert_eq!(super::serves(&example), to_catalog, "{route} (as {example})");
        }
    }
}
