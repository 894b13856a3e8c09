//! The shared page cache, with one refresher per page: of many requests
//! that find a page stale, one takes a short lock in Redis (over Upstash
//! REST) and reads the catalog while the others serve the stale copy, or
//! wait briefly for the fresh one when there is no copy at all. If the read
//! fails, the last good page is served and marked so. Without a store (or
//! if it fails), pages are rendered on every request.
//!
//! Pages live in a [`PageStore`]: Redis everywhere ([`RedisPages`]), the
//! Cache API of the colo on Workers. The catalog version, which the origin
//! bumps on every organizer change, always comes from Redis. In front of
//! Redis, [`InstancePages`] keeps what a warm instance served lately.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use edge_core::http_cache::etag;
use edge_core::page_cache::{CachedPage, Freshness, lock_key, page_key};
use edge_platform::Runtime;
use edge_platform::redis::{Redis, RedisError};
use serde_json::Value;
use wire::names::CATALOG_VERSION_KEY;

use crate::source::{CatalogRead, CatalogSource, ReadError};

/// How long a refresher may hold the lock.
const LOCK_MS: &str = "5000";
/// How long pages are kept for stale serving after they stop being fresh.
pub const KEEP_SECONDS: u32 = 600;
/// How long a request without any copy waits for the refresher.
const WAIT_STEPS: u32 = 40;
const WAIT_STEP_MS: u64 = 50;

pub enum Source {
    Hit,
    Miss,
    /// Stale, served while another request refreshes it.
    Stale,
    /// Stale, served because the origin failed.
    StaleIfError,
}

pub struct Rendered {
    pub body: Vec<u8>,
    pub etag: String,
    pub content_type: String,
    pub age_seconds: i64,
    pub source: Source,
}

/// Where rendered pages are kept, beside the catalog version.
pub trait PageStore {
    /// The current catalog version and the page under `key` (shared, so an
    /// instance's memory hands it out without copying it), at `now_ms`.
    fn lookup(
        &self,
        key: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<(String, Option<Arc<CachedPage>>), StoreError>>;
    fn keep(&self, key: &str, page: &CachedPage) -> impl Future<Output = Result<(), StoreError>>;
}

#[derive(Debug, thiserror::Error)]
#[error("page store: {0}")]
pub struct StoreError(pub String);

impl From<RedisError> for StoreError {
    fn from(e: RedisError) -> Self {
        StoreError(e.to_string())
    }
}

/// Pages in Redis next to the version: one round trip per lookup.
pub struct RedisPages<'a, R> {
    pub redis: Redis<'a, R>,
}

impl<R: Runtime> PageStore for RedisPages<'_, R> {
    async fn lookup(&self, key: &str, _now_ms: i64) -> Result<(String, Option<Arc<CachedPage>>), StoreError> {
        let replies = self
            .redis
            .pipeline(&[vec!["GET".into(), CATALOG_VERSION_KEY.into()], vec!["GET".into(), key.to_owned()]])
            .await?;
        let mut replies = replies.into_iter();
        let version = version_of(replies.next().expect("two replies")?);
        let page =
            replies.next().expect("two replies")?.as_str().and_then(|json| serde_json::from_str(json).ok());
        Ok((version, page.map(Arc::new)))
    }

    async fn keep(&self, key: &str, page: &CachedPage) -> Result<(), StoreError> {
        let json = serde_json::to_string(page).expect("a page serializes");
        self.redis.command(&["SET", key, &json, "EX", &KEEP_SECONDS.to_string()]).await?;
        Ok(())
    }
}

/// How long a warm instance trusts the catalog version it last read: a
/// purge reaches it within this.
const VERSION_TRUSTED_MS: i64 = 1_000;
/// Pages one instance keeps in memory at most.
const INSTANCE_PAGES: usize = 256;

/// What this instance last read: the catalog version (and when), and pages.
#[derive(Default)]
struct Memory {
    version: Option<(i64, String)>,
    pages: HashMap<String, Arc<CachedPage>>,
}

fn memory() -> &'static Mutex<Memory> {
    static MEMORY: OnceLock<Mutex<Memory>> = OnceLock::new();
    MEMORY.get_or_init(Mutex::default)
}

/// Pages a warm instance (or isolate) served lately, in front of a shared
/// store: a fresh page at a catalog version read less than a second ago is
/// answered from memory, with no round trip; anything else asks the shared
/// store as before.
pub struct InstancePages<'a, R, S> {
    pub runtime: &'a R,
    pub shared: S,
    pub fresh_ms: i64,
}

impl<R: Runtime, S: PageStore> PageStore for InstancePages<'_, R, S> {
    async fn lookup(&self, key: &str, now: i64) -> Result<(String, Option<Arc<CachedPage>>), StoreError> {
        {
            let memory = memory().lock().expect("page memory lock");
            if let Some((read_ms, version)) = &memory.version
                && now - read_ms < VERSION_TRUSTED_MS
                && let Some(page) = memory.pages.get(key)
                && page.freshness(version, now, self.fresh_ms) == Freshness::Fresh
            {
                return Ok((version.clone(), Some(Arc::clone(page))));
            }
        }
        let (version, page) = self.shared.lookup(key, now).await?;
        let mut memory = memory().lock().expect("page memory lock");
        memory.version = Some((now, version.clone()));
        if let Some(page) = &page {
            remember(&mut memory, key, Arc::clone(page));
        }
        Ok((version, page))
    }

    async fn keep(&self, key: &str, page: &CachedPage) -> Result<(), StoreError> {
        self.shared.keep(key, page).await?;
        remember(&mut memory().lock().expect("page memory lock"), key, Arc::new(page.clone()));
        Ok(())
    }
}

fn remember(memory: &mut Memory, key: &str, page: Arc<CachedPage>) {
    if memory.pages.len() >= INSTANCE_PAGES && !memory.pages.contains_key(key) {
        memory.pages.clear();
    }
    memory.pages.insert(key.to_owned(), page);
}

/// The catalog version from Redis; "0" before the first organizer change.
pub async fn catalog_version<R: Runtime>(redis: &Redis<'_, R>) -> Result<String, StoreError> {
    Ok(version_of(redis.command(&["GET", CATALOG_VERSION_KEY]).await?))
}

fn version_of(reply: Value) -> String {
    match reply {
        Value::String(v) => v,
        Value::Number(n) => n.to_string(),
        _ => "0".to_owned(),
    }
}

/// What a page cache works with on a given platform.
pub struct Backends<'a, R, S, C> {
    /// For the refresh lock; without Redis, every request that finds a
    /// stale page refreshes it.
    pub redis: Option<Redis<'a, R>>,
    pub store: Option<S>,
    pub source: C,
}

pub struct PageCache<'a, R, S, C> {
    runtime: &'a R,
    fresh_ms: i64,
    backends: Backends<'a, R, S, C>,
}

impl<'a, R: Runtime, S: PageStore, C: CatalogSource> PageCache<'a, R, S, C> {
    pub fn new(runtime: &'a R, cache_seconds: u32, backends: Backends<'a, R, S, C>) -> Self {
        Self { runtime, fresh_ms: i64::from(cache_seconds) * 1000, backends }
    }

    pub async fn get_or_render(
        &self,
        read: &CatalogRead,
        content_type: &str,
        render: impl Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<Rendered, ReadError> {
        let Some(store) = &self.backends.store else {
            return self.render(read, &render).await.map(|body| self.fresh(body, content_type));
        };
        let key = page_key(&read.origin_path(), content_type);
        // Freshness is judged at the request's time.
        let now = self.runtime.now_ms();
        let (version, cached) = match store.lookup(&key, now).await {
            Ok(found) => found,
            Err(e) => {
                self.runtime.log(&format!("page cache unavailable, reading the catalog directly: {e}"));
                let body = self.render(read, &render).await?;
                return Ok(self.fresh(body, content_type));
            }
        };
        if let Some(page) = &cached
            && page.freshness(&version, now, self.fresh_ms) == Freshness::Fresh
        {
            return Ok(self.served(page, now, Source::Hit));
        }
        let lock = lock_key(&key);
        let refresher = match &self.backends.redis {
            Some(redis) => matches!(
                redis.command(&["SET", &lock, "1", "NX", "PX", LOCK_MS]).await,
                Ok(Value::String(ok)) if ok == "OK"
            ),
            None => true,
        };
        if !refresher {
            if let Some(page) = &cached {
                return Ok(self.served(page, now, Source::Stale));
            }
            if let Some(page) = self.wait_for(store, &key).await {
                return Ok(self.served(&page, self.runtime.now_ms(), Source::Hit));
            }
        }
        let result = self.render(read, &render).await.map(|body| {
            let body = String::from_utf8_lossy(&body).into_owned();
            CachedPage::rendered(version, self.runtime.now_ms(), content_type, body)
        });
        if let Ok(page) = &result
            && let Err(e) = store.keep(&key, page).await
        {
            self.runtime.log(&format!("cannot store a page: {e}"));
        }
        if refresher && let Some(redis) = &self.backends.redis {
            let _ = redis.command(&["DEL", &lock]).await;
        }
        let now = self.runtime.now_ms();
        match (result, cached) {
            (Ok(page), _) => Ok(self.served(&page, now, Source::Miss)),
            (Err(ReadError::Unavailable), Some(page)) => Ok(self.served(&page, now, Source::StaleIfError)),
            (Err(e), _) => Err(e),
        }
    }

    /// Polls briefly for the page another request is rendering.
    async fn wait_for(&self, store: &S, key: &str) -> Option<Arc<CachedPage>> {
        for _ in 0..WAIT_STEPS {
            self.runtime.sleep_ms(WAIT_STEP_MS).await;
            if let Ok((_, Some(page))) = store.lookup(key, self.runtime.now_ms()).await {
                return Some(page);
            }
        }
        None
    }

    async fn render(
        &self,
        read: &CatalogRead,
        render: &impl Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<Vec<u8>, ReadError> {
        let json = self.backends.source.read(read).await?;
        render(&json).ok_or(ReadError::Unavailable)
    }

    fn fresh(&self, body: Vec<u8>, content_type: &str) -> Rendered {
        let etag = etag(&body);
        Rendered { body, etag, content_type: content_type.to_owned(), age_seconds: 0, source: Source::Miss }
    }

    fn served(&self, page: &CachedPage, now_ms: i64, source: Source) -> Rendered {
        Rendered {
            body: page.body.clone().into_bytes(),
            etag: page.etag.clone(),
            content_type: page.content_type.clone(),
            age_seconds: page.age_seconds(now_ms),
            source,
        }
    }
}
