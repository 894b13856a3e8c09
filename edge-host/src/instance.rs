//! Compiled components and their pools of warm instances.
//!
//! As in `wasmtime serve`, each component is compiled and pre-instantiated
//! once at start-up. Unlike it, an instance that finished a request cleanly
//! is kept for the next one (up to `max_reuse` requests, dropped after
//! `idle_timeout` unused): instantiation dominates the cost of small
//! requests, and reuse roughly triples throughput on this hardware.
//!
//! Every live instance, busy or warm, holds one of `--max-instances`
//! permits, the pooling allocator's capacity. A request that finds none
//! free waits for one instead of failing, and while anyone waits, finished
//! instances are dropped rather than kept warm, so the permit moves on.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::config::{self, ComponentVariables};
use crate::manifest::ComponentSpec;
use crate::outbound::{ConnectionPool, OutboundHooks};
use crate::world::EdgeWorld;

/// How long instances live and how long a request may run.
#[derive(Debug, Clone, Copy)]
pub struct ReusePolicy {
    pub max_reuse: u32,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
}

/// Per-instance host state, lent to the WASI implementations.
pub struct GuestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: OutboundHooks,
    variables: ComponentVariables,
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// The linker every component is checked against: `wasi:cli`, `wasi:io`,
/// `wasi:clocks`, `wasi:random` …, `wasi:http` and `wasi:config`, nothing else.
pub fn linker(engine: &Engine) -> anyhow::Result<Linker<GuestState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    config::add_to_linker(&mut linker, |state: &mut GuestState| &mut state.variables)?;
    Ok(linker)
}

struct WarmInstance {
    store: Store<GuestState>,
    proxy: Proxy,
    served: u32,
    idle_since: Instant,
    _slot: OwnedSemaphorePermit,
}

/// One component of the application, ready to serve.
pub struct LoadedComponent {
    id: String,
    pre: ProxyPre<GuestState>,
    spec: ComponentSpec,
    reuse: ReusePolicy,
    pool: ConnectionPool,
    warm: Mutex<Vec<WarmInstance>>,
    slots: Arc<Semaphore>,
}

impl LoadedComponent {
    /// Compiles and links `spec`, failing with the component's name and the
    /// offending import if it does not fit `world` or the host.
    pub fn load(
        engine: &Engine,
        linker: &Linker<GuestState>,
        world: &EdgeWorld,
        spec: ComponentSpec,
        reuse: ReusePolicy,
        pool: ConnectionPool,
        slots: Arc<Semaphore>,
    ) -> anyhow::Result<Arc<Self>> {
        let component = Component::from_file(engine, &spec.source)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("component `{}`: cannot load {}", spec.id, spec.source.display()))?;
        let ty = component.component_type();
        let imports: Vec<&str> = ty.imports(engine).map(|(name, _)| name).collect();
        let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
        world.check(&spec.id, imports, exports)?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("component `{}` cannot be linked by this host", spec.id))?;
        let pre = ProxyPre::new(instance_pre)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("component `{}` is not a wasi:http/proxy component", spec.id))?;
        Ok(Arc::new(Self {
            id: spec.id.clone(),
            pre,
            spec,
            reuse,
            pool,
            warm: Mutex::new(Vec::new()),
            slots,
        }))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs one request through a warm or fresh instance. Returns once the
    /// guest has set the response head; the body streams on afterwards.
    pub async fn serve(
        self: &Arc<Self>,
        request: hyper::Request<Incoming>,
    ) -> anyhow::Result<hyper::Response<HyperOutgoingBody>> {
        let mut instance = match self.take_warm() {
            Some(instance) => instance,
            None => {
                let slot =
                    Arc::clone(&self.slots).acquire_owned().await.context("the host is shutting down")?;
                self.instantiate(slot).await?
            }
        };
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let http = &mut instance.store.data_mut().http();
        let request = http.new_incoming_request(Scheme::Http, request)?;
        let outparam = http.new_response_outparam(sender)?;

        let this = Arc::clone(self);
        let task = tokio::spawn(async move {
            let handler = instance.proxy.wasi_http_incoming_handler();
            let call = handler.call_handle(&mut instance.store, request, outparam);
            match tokio::time::timeout(this.reuse.request_timeout, call).await {
                Ok(Ok(())) => {
                    this.give_back(instance);
                    Ok(())
                }
                Ok(Err(trap)) => Err(anyhow::Error::from(trap)),
                Err(_) => Err(anyhow!("request exceeded {:?}", this.reuse.request_timeout)),
            }
        });

        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(anyhow!("component `{}` answered with error {code:?}", self.id)),
            Err(_) => {
                let cause = match task.await {
                    Ok(Ok(())) => anyhow!("it returned without a response"),
                    Ok(Err(e)) => e,
                    Err(e) => e.into(),
                };
                Err(cause.context(format!("component `{}` did not respond", self.id)))
            }
        }
    }

    async fn instantiate(&self, slot: OwnedSemaphorePermit) -> anyhow::Result<WarmInstance> {
        let mut wasi = WasiCtx::builder();
        wasi.envs(&self.spec.environment).inherit_stdout().inherit_stderr();
        let state = GuestState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHooks::new(self.spec.outbound.clone(), self.pool.clone()),
            variables: self.spec.variables.clone(),
        };
        let mut store = Store::new(self.pre.engine(), state);
        let proxy = self.pre.instantiate_async(&mut store).await?;
        Ok(WarmInstance { store, proxy, served: 0, idle_since: Instant::now(), _slot: slot })
    }

    fn take_warm(&self) -> Option<WarmInstance> {
        let mut warm = self.warm.lock().expect("instance pool poisoned");
        while let Some(instance) = warm.pop() {
            if instance.idle_since.elapsed() < self.reuse.idle_timeout {
                return Some(instance);
            }
        }
        None
    }

    fn give_back(&self, mut instance: WarmInstance) {
        instance.served += 1;
        let someone_waits = self.slots.available_permits() == 0;
        if instance.served < self.reuse.max_reuse && !someone_waits {
            instance.idle_since = Instant::now();
            self.warm.lock().expect("instance pool poisoned").push(instance);
        }
    }

    /// Drops instances idle for longer than the timeout, returning their memory.
    pub fn evict_idle(&self) {
        let expired: Vec<WarmInstance> = {
            let mut warm = self.warm.lock().expect("instance pool poisoned");
            let (keep, expired) = std::mem::take(&mut *warm)
                .into_iter()
                .partition(|i| i.idle_since.elapsed() < self.reuse.idle_timeout);
            *warm = keep;
            expired
        };
        drop(expired);
    }
}
