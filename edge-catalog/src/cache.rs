//! The shared page cache in Redis (over Upstash REST), with one refresher
//! per page: of many requests that find a page stale, one takes a short
//! lock and asks the origin while the others serve the stale copy, or wait
//! briefly for the fresh one when there is no copy at all. If the origin
//! fails, the last good page is served and marked so. Without Redis (or if
//! it fails), pages come straight from the origin.

use edge_core::page_cache::{CachedPage, Freshness, VERSION_KEY, lock_key, page_key};
use edge_platform::Runtime;
use edge_platform::redis::Redis;
use serde_json::Value;

use crate::service::Config;

/// How long a refresher may hold the lock.
const LOCK_MS: &str = "5000";
/// How long pages are kept for stale serving after they stop being fresh.
const KEEP_SECONDS: &str = "600";
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
    pub content_type: String,
    pub age_seconds: i64,
    pub source: Source,
}

pub enum RenderError {
    NotFound,
    Origin,
}

pub struct PageCache<'a, R> {
    runtime: &'a R,
    config: &'a Config,
    redis: Option<Redis<'a, R>>,
}

impl<'a, R: Runtime> PageCache<'a, R> {
    pub fn new(runtime: &'a R, config: &'a Config) -> Self {
        let redis = config.redis.as_ref().map(|(url, token)| Redis::new(runtime, url, token));
        Self { runtime, config, redis }
    }

    pub async fn get_or_render(
        &self,
        origin_path: &str,
        content_type: &str,
        render: impl Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<Rendered, RenderError> {
        let Some(redis) = &self.redis else {
            return self
                .render_from_origin(origin_path, content_type, &render)
                .await
                .map(|body| self.fresh(body, content_type));
        };
        let key = page_key(origin_path, content_type);
        let (version, cached) = match self.lookup(redis, &key).await {
            Ok(found) => found,
            Err(e) => {
                eprintln!("page cache unavailable, going to the origin: {e}");
                let body = self.render_from_origin(origin_path, content_type, &render).await?;
                return Ok(self.fresh(body, content_type));
            }
        };
        let now = self.runtime.now_ms();
        let fresh_ms = i64::from(self.config.cache_seconds) * 1000;
        if let Some(page) = &cached
            && page.freshness(&version, now, fresh_ms) == Freshness::Fresh
        {
            return Ok(self.served(page, Source::Hit));
        }
        let lock = lock_key(&key);
        let refresher = matches!(
            redis.command(&["SET", &lock, "1", "NX", "PX", LOCK_MS]).await,
            Ok(Value::String(ok)) if ok == "OK"
        );
        if !refresher {
            if let Some(page) = &cached {
                return Ok(self.served(page, Source::Stale));
            }
            if let Some(page) = self.wait_for(redis, &key).await {
                return Ok(self.served(&page, Source::Hit));
            }
        }
        let result = self.render_from_origin(origin_path, content_type, &render).await;
        if let Ok(body) = &result {
            let page = CachedPage {
                version,
                rendered_ms: self.runtime.now_ms(),
                content_type: content_type.to_owned(),
                body: String::from_utf8_lossy(body).into_owned(),
            };
            let json = serde_json::to_string(&page).expect("a page serializes");
            if let Err(e) = redis.command(&["SET", &key, &json, "EX", KEEP_SECONDS]).await {
                eprintln!("cannot store a page: {e}");
            }
        }
        if refresher {
            let _ = redis.command(&["DEL", &lock]).await;
        }
        match (result, cached) {
            (Ok(body), _) => Ok(self.fresh(body, content_type)),
            (Err(RenderError::Origin), Some(page)) => Ok(self.served(&page, Source::StaleIfError)),
            (Err(e), _) => Err(e),
        }
    }

    /// The current catalog version and the cached page, in one round trip.
    async fn lookup(
        &self,
        redis: &Redis<'a, R>,
        key: &str,
    ) -> Result<(String, Option<CachedPage>), edge_platform::redis::RedisError> {
        let replies = redis
            .pipeline(&[vec!["GET".into(), VERSION_KEY.into()], vec!["GET".into(), key.to_owned()]])
            .await?;
        let mut replies = replies.into_iter();
        let version = match replies.next().expect("two replies")? {
            Value::String(v) => v,
            Value::Number(n) => n.to_string(),
            _ => "0".to_owned(),
        };
        let page =
            replies.next().expect("two replies")?.as_str().and_then(|json| serde_json::from_str(json).ok());
        Ok((version, page))
    }

    /// Polls briefly for the page another request is rendering.
    async fn wait_for(&self, redis: &Redis<'a, R>, key: &str) -> Option<CachedPage> {
        for _ in 0..WAIT_STEPS {
            self.runtime.sleep_ms(WAIT_STEP_MS).await;
            if let Ok(Value::String(json)) = redis.command(&["GET", key]).await {
                return serde_json::from_str(&json).ok();
            }
        }
        None
    }

    async fn render_from_origin(
        &self,
        origin_path: &str,
        content_type: &str,
        render: &impl Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<Vec<u8>, RenderError> {
        let url = format!("{}{origin_path}", self.config.origin_url);
        let request = http::Request::get(url).header("accept", "application/json").body(Vec::new());
        let response = match self.runtime.send(request.expect("a valid request")).await {
            Ok(response) => response,
            Err(e) => {
                eprintln!("origin request failed: {e}");
                return Err(RenderError::Origin);
            }
        };
        match response.status().as_u16() {
            200 => render(response.body()).ok_or(RenderError::Origin),
            404 => Err(RenderError::NotFound),
            status => {
                eprintln!("origin answered {status} for {origin_path} ({content_type})");
                Err(RenderError::Origin)
            }
        }
    }

    fn fresh(&self, body: Vec<u8>, content_type: &str) -> Rendered {
        Rendered { body, content_type: content_type.to_owned(), age_seconds: 0, source: Source::Miss }
    }

    fn served(&self, page: &CachedPage, source: Source) -> Rendered {
        Rendered {
            body: page.body.clone().into_bytes(),
            content_type: page.content_type.clone(),
            age_seconds: page.age_seconds(self.runtime.now_ms()),
            source,
        }
    }
}
