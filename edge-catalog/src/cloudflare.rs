//! The catalog on Cloudflare Workers, with what only Cloudflare offers it:
//! the colo's Cache API for rendered pages, and Postgres through a
//! Hyperdrive binding for reads (falling back to the origin's API if that
//! fails).

use std::sync::Arc;

use edge_core::page_cache::CachedPage;
use edge_platform::Runtime;
use edge_platform::redis::Redis;
use edge_platform::workers::Fetch;
use wire::encoding::url_encode;
use worker::postgres_tls::PassthroughTls;
use worker::{Cache, SecureTransport, Socket};

use crate::cache::{Backends, KEEP_SECONDS, PageStore, StoreError, catalog_version};
use crate::service::{Config, handle_with};
use crate::source::{CatalogRead, CatalogSource, OriginApi, ReadError};

/// The binding name `wrangler.toml` gives Hyperdrive (optional).
const HYPERDRIVE: &str = "HYPERDRIVE";

/// Serves one catalog request (a path [`crate::service::serves`]).
pub async fn serve(request: worker::Request, env: worker::Env) -> worker::Result<worker::Response> {
    let hyperdrive = env.hyperdrive(HYPERDRIVE).ok();
    let runtime = Fetch::new(env);
    let config = Config::from_runtime(&runtime);
    let store = CachePages { cache: Cache::default(), redis: config.redis(&runtime) };
    let source = Hyperdrive { binding: hyperdrive, origin: config.origin(&runtime) };
    let backends = Backends { redis: config.redis(&runtime), store: Some(store), source };
    let (runtime, config) = (&runtime, &config);
    edge_platform::workers::serve(request, |incoming| async move {
        handle_with(runtime, config, &incoming.request, backends).await
    })
    .await
}

/// Pages in the Cache API of the colo serving the request; the catalog
/// version still comes from Redis, so a purge reaches every colo at once.
pub struct CachePages<'a> {
    pub cache: Cache,
    pub redis: Option<Redis<'a, Fetch>>,
}

/// Cache API keys are URLs; this host is never contacted.
fn cache_url(key: &str) -> String {
    format!("https://catalog-pages.stampede.internal/{}", url_encode(key))
}

impl PageStore for CachePages<'_> {
    async fn lookup(&self, key: &str, _now_ms: i64) -> Result<(String, Option<Arc<CachedPage>>), StoreError> {
        // The version (Redis) and the page (this colo) at once: one round trip.
        let version = async {
            match &self.redis {
                Some(redis) => catalog_version(redis).await,
                None => Ok("0".to_owned()),
            }
        };
        let (version, cached) = futures::join!(version, self.cache.get(cache_url(key), false));
        let version = version?;
        let cached = cached.map_err(|e| StoreError(e.to_string()))?;
        let page = match cached {
            Some(mut response) => {
                response.text().await.ok().and_then(|json| serde_json::from_str(&json).ok())
            }
            None => None,
        };
        Ok((version, page.map(Arc::new)))
    }

    async fn keep(&self, key: &str, page: &CachedPage) -> Result<(), StoreError> {
        let failed = |e: worker::Error| StoreError(e.to_string());
        let mut response = worker::Response::from_json(page).map_err(failed)?;
        response.headers_mut().set("cache-control", &format!("max-age={KEEP_SECONDS}")).map_err(failed)?;
        self.cache.put(cache_url(key), response).await.map_err(failed)
    }
}

/// Catalog reads straight from Postgres through a Hyperdrive binding, with
/// the same SQL functions the origin's catalog API calls; from the origin's
/// API without a binding, or when the database fails.
pub struct Hyperdrive<'a> {
    pub binding: Option<worker::Hyperdrive>,
    pub origin: OriginApi<'a, Fetch>,
}

impl CatalogSource for Hyperdrive<'_> {
    async fn read(&self, read: &CatalogRead) -> Result<Vec<u8>, ReadError> {
        let Some(binding) = &self.binding else { return self.origin.read(read).await };
        match query(binding, read).await {
            Ok(Some(json)) => Ok(json.into_bytes()),
            Ok(None) => Err(ReadError::NotFound),
            Err(e) => {
                self.origin.runtime.log(&format!("Hyperdrive read failed, asking the origin: {e}"));
                self.origin.read(read).await
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum QueryError {
    #[error("cannot connect: {0}")]
    Connect(#[from] worker::Error),
    /// With the server's own message: `tokio_postgres::Error` alone
    /// displays as "db error".
    #[error("{0}: {message}", message = .0.as_db_error().map_or("", |e| e.message()))]
    Postgres(#[from] tokio_postgres::Error),
}

/// One connection per read: Hyperdrive pools them for us. The client is
/// dropped and the connection closed before this returns, which local
/// `wrangler dev` needs.
async fn query(binding: &worker::Hyperdrive, read: &CatalogRead) -> Result<Option<String>, QueryError> {
    let socket = Socket::builder()
        .secure_transport(SecureTransport::StartTls)
        .connect(binding.host(), binding.port())?;
    let config: tokio_postgres::Config = binding.connection_string().parse()?;
    let (client, connection) = config.connect_raw(socket, PassthroughTls).await?;
    let read = async move {
        let row = match read {
            CatalogRead::Event(id) => {
                client.query_one("SELECT catalog_event($1::text::uuid)::text", &[&id.to_string()]).await
            }
            CatalogRead::List(query) => {
                let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339());
                let page = query.page as i32;
                let limit = query.limit as i32;
                client
                    .query_one(
                        "SELECT catalog_list($1::text::timestamptz, $2::text::timestamptz, $3::text, \
                             $4::text, $5::text, $6::int4, $7::int4)::text",
                        &[
                            &time(query.from),
                            &time(query.to),
                            &query.category,
                            &query.city,
                            &query.q,
                            &page,
                            &limit,
                        ],
                    )
                    .await
            }
        };
        drop(client);
        row
    };
    let (row, closed) = futures::join!(read, connection);
    closed?;
    Ok(row?.get(0))
}
