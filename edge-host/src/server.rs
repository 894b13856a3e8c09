//! The HTTP side of the edge host: one listener for every component, a JSON
//! access log, and graceful shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use wasmtime::{
    Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig,
    ProfilingStrategy,
};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::instance::{LoadedComponent, ReusePolicy, linker};
use crate::manifest::Application;
use crate::outbound::ConnectionPool;
use crate::routes::Router;
use crate::world::EdgeWorld;

/// Everything the host needs to start.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub manifest: PathBuf,
    pub wit: PathBuf,
    pub listen: SocketAddr,
    pub reuse: ReusePolicy,
    /// Upper bound on instances alive at once, across components.
    pub max_instances: u32,
    pub shutdown_grace: Duration,
    /// Write `/tmp/perf-<pid>.map` so `perf` names the components' compiled
    /// functions (for profiling; off by default).
    pub perf_map: bool,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            manifest: "spin.toml".into(),
            wit: "wit".into(),
            listen: ([127, 0, 0, 1], 3000).into(),
            reuse: ReusePolicy {
                max_reuse: 1024,
                idle_timeout: Duration::from_secs(1),
                request_timeout: Duration::from_secs(60),
            },
            max_instances: 256,
            shutdown_grace: Duration::from_secs(10),
            perf_map: false,
        }
    }
}

/// The application, compiled and ready to accept connections.
pub struct EdgeHost {
    router: Router,
    components: Vec<Arc<LoadedComponent>>,
    config: HostConfig,
}

impl EdgeHost {
    /// Reads the manifest and the world and compiles every component: all
    /// configuration errors surface here, before a port is bound.
    pub fn build(config: HostConfig) -> anyhow::Result<Self> {
        let app = Application::load(&config.manifest)?;
        let world = EdgeWorld::load(&config.wit, None)?;
        let engine = engine(&config)?;
        let linker = linker(&engine)?;
        let pool = ConnectionPool::new();
        let slots = Arc::new(tokio::sync::Semaphore::new(config.max_instances as usize));
        let components = app
            .components
            .into_iter()
            .map(|spec| {
                LoadedComponent::load(
                    &engine,
                    &linker,
                    &world,
                    spec,
                    config.reuse,
                    pool.clone(),
                    Arc::clone(&slots),
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self { router: app.router, components, config })
    }

    /// Serves until `shutdown` resolves, then lets open requests finish
    /// (up to the grace period).
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let listener = TcpListener::bind(self.config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", self.config.listen))?;
        let addr = listener.local_addr()?;
        let routes: Vec<String> = self
            .router
            .routes()
            .map(|(route, i)| format!("{} -> {}", route.as_str(), self.components[i].id()))
            .collect();
        tracing::info!(%addr, ?routes, "edge host listening");

        let host = Arc::new(self);
        let evictor = tokio::spawn(evict_idle_instances(Arc::clone(&host)));
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, client) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
                },
                () = &mut shutdown => break,
            };
            // Without TCP_NODELAY, Nagle's algorithm delays small responses by ~40 ms.
            // A client that already hung up must not take the whole host down.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "dropping a connection closed before it was served");
                continue;
            }
            let host = Arc::clone(&host);
            let service = service_fn(move |request| {
                let host = Arc::clone(&host);
                async move { Ok::<_, Infallible>(host.handle(request, client).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), service);
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
        // Refuse new connections at once instead of leaving them in the backlog.
        drop(listener);
        tracing::info!("shutting down; waiting for open requests");
        evictor.abort();
        if tokio::time::timeout(host.config.shutdown_grace, graceful.shutdown()).await.is_err() {
            tracing::warn!("grace period over; closing remaining connections");
        }
        Ok(())
    }

    async fn handle(
        &self,
        mut request: hyper::Request<Incoming>,
        client: SocketAddr,
    ) -> hyper::Response<HyperOutgoingBody> {
        let started = Instant::now();
        let method = request.method().clone();
        let path = match admit(&mut request) {
            Ok(path) => path,
            Err(response) => {
                access_log(&method, request.uri().path(), None, response.status(), started);
                tokio::spawn(linger(request.into_body()));
                return response;
            }
        };
        let Some((route, index)) = self.router.route(&path) else {
            let response = problem(StatusCode::NOT_FOUND, "route_not_found", "no component serves this path");
            access_log(&method, &path, None, response.status(), started);
            return response;
        };
        let component = &self.components[index];
        add_spin_headers(&mut request, route.as_str(), route.base(), client);
        let response = match component.serve(request).await {
            Ok(response) => response,
            Err(e) => {
                tracing::error!(component = component.id(), error = format!("{e:#}"), "component failed");
                problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "component_failed",
                    "the edge component failed to answer",
                )
            }
        };
        access_log(&method, &path, Some(component.id()), response.status(), started);
        response
    }
}

fn engine(config: &HostConfig) -> anyhow::Result<Engine> {
    let mut pooling = PoolingAllocationConfig::new();
    pooling
        .total_component_instances(config.max_instances)
        .total_core_instances(config.max_instances * 4)
        .total_memories(config.max_instances * 2)
        .total_tables(config.max_instances * 4)
        .max_memory_size(256 << 20);
    let mut wasm = Config::new();
    if config.perf_map {
        wasm.profiler(ProfilingStrategy::PerfMap);
    }
    wasm.wasm_component_model(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling))
        // Compiled code is cached on disk (~/.cache/wasmtime): restarts skip Cranelift.
        .cache(Some(
            Cache::new(CacheConfig::new())
                .map_err(anyhow::Error::from)
                .context("cannot set up the compilation cache")?,
        ));
    Engine::new(&wasm).map_err(anyhow::Error::from).context("cannot create the Wasmtime engine")
}

async fn evict_idle_instances(host: Arc<EdgeHost>) {
    let mut every = tokio::time::interval(host.config.reuse.idle_timeout);
    loop {
        every.tick().await;
        for component in &host.components {
            component.evict_idle();
        }
    }
}

/// What every request must be before it is routed: addressed to a host,
/// small enough, and on a path with one spelling. Rewrites the request to
/// that normal path (routing, the component and the origin all see the
/// same one) and returns it; refuses the rest with a problem.
#[allow(clippy::result_large_err)]
fn admit(request: &mut hyper::Request<Incoming>) -> Result<String, hyper::Response<HyperOutgoingBody>> {
    if request.uri().authority().is_none() && !request.headers().contains_key(http::header::HOST) {
        return Err(problem(StatusCode::BAD_REQUEST, "host_required", "the request names no host"));
    }
    let declared = request.headers().get(http::header::CONTENT_LENGTH);
    if declared.is_some_and(|length| edge_core::declares_too_large_body(length.as_bytes())) {
        return Err(problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            &format!("request bodies are limited to {} bytes", edge_core::MAX_REQUEST_BODY_BYTES),
        ));
    }
    edge_core::path::normalize_uri(request.uri_mut())
        .map_err(|e| problem(StatusCode::BAD_REQUEST, "invalid_path", &e.to_string()))?;
    let path = request.uri().path().to_owned();
    Ok(path)
}

/// How much of a refused request's body the host still reads, and for how long.
const LINGER_BYTES: usize = 64 << 20;
const LINGER_TIME: Duration = Duration::from_secs(5);

/// Reads and drops a refused request's body for a bounded while. Dropping it
/// unread makes hyper close the connection while the client is still sending,
/// and the client sees a reset instead of the refusal (nginx's "lingering
/// close" solves the same problem).
async fn linger(mut body: Incoming) {
    let drain = async {
        let mut read = 0;
        while let Some(Ok(frame)) = body.frame().await {
            read += frame.data_ref().map_or(0, Bytes::len);
            if read > LINGER_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// The request headers Spin gives components, so they behave the same here.
fn add_spin_headers(request: &mut hyper::Request<Incoming>, matched: &str, base: &str, client: SocketAddr) {
    let path = request.uri().path().to_owned();
    let host = request.headers().get(http::header::HOST).and_then(|h| h.to_str().ok());
    let full_url = format!(
        "http://{}{}",
        host.unwrap_or("localhost"),
        request.uri().path_and_query().map_or("/", |pq| pq.as_str())
    );
    let path_info = path.strip_prefix(base).unwrap_or("").to_owned();
    let headers = request.headers_mut();
    for (name, value) in [
        ("spin-full-url", full_url),
        ("spin-path-info", path_info),
        ("spin-matched-route", matched.to_owned()),
        ("spin-component-route", base.to_owned()),
        ("spin-client-addr", client.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

fn access_log(
    method: &http::Method,
    path: &str,
    component: Option<&str>,
    status: StatusCode,
    started: Instant,
) {
    tracing::info!(
        target: "access",
        method = %method,
        path,
        component,
        status = status.as_u16(),
        ms_to_headers = started.elapsed().as_secs_f64() * 1000.0,
    );
}

/// A JSON problem response in the format every Stampede service uses.
fn problem(status: StatusCode, error: &str, message: &str) -> hyper::Response<HyperOutgoingBody> {
    let body = wire::problem::Problem::new(error, message).to_json();
    hyper::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed_unsync())
        .expect("static response parts are valid")
}
