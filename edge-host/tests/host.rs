//! The edge host, run as a process, serving the `edge-testbed` component.
//!
//! Needs the component built for wasm32-wasip2: `cargo xtask test` builds it
//! and sets `STAMPEDE_WASM_DIR`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use edge_host::testing::HostProcess;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn testbed_wasm() -> PathBuf {
    let dir = std::env::var("STAMPEDE_WASM_DIR")
        .expect("STAMPEDE_WASM_DIR is not set: run the tests with `cargo xtask test`");
    let wasm = Path::new(&dir).join("edge_testbed.wasm");
    assert!(wasm.exists(), "{} is missing: run `cargo xtask test`", wasm.display());
    wasm
}

fn wit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit")
}

/// A host process plus the folder holding its manifest.
struct Host {
    process: HostProcess,
    _dir: tempfile::TempDir,
}

impl Host {
    fn url(&self, path: &str) -> String {
        self.process.url(path)
    }

    fn pid(&self) -> u32 {
        self.process.child.id()
    }
}

/// Writes `manifest` (with `{wasm}` replaced) and starts a host on port 0.
fn start(manifest: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Host, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, manifest.replace("{wasm}", &testbed_wasm().display().to_string())).unwrap();
    let process =
        HostProcess::start(Path::new(env!("CARGO_BIN_EXE_edge-host")), &path, &wit_dir(), args, env)?;
    Ok(Host { process, _dir: dir })
}

fn testbed_manifest(allowed: &str) -> String {
    format!(
        r#"spin_manifest_version = 2
[application]
name = "testbed"
[variables]
greeting = {{ default = "hello" }}
[[trigger.http]]
route = "/..."
component = "testbed"
[component.testbed]
source = "{{wasm}}"
allowed_outbound_hosts = [{allowed}]
environment = {{ MODE = "test" }}
[component.testbed.variables]
greeting = "{{{{ greeting }}}} world"
"#
    )
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn variables_reach_the_component_through_wasi_config_and_not_the_environment() {
    let host = start(&testbed_manifest(""), &[], &[("SPIN_VARIABLE_GREETING", "bonjour")]).unwrap();
    assert_eq!(get(&host.url("/config/greeting")).await, (200, "bonjour world".into()));
    // As on Spin: variables are not environment variables, under any spelling.
    for name in ["GREETING", "greeting", "SPIN_VARIABLE_GREETING"] {
        assert_eq!(
            get(&host.url(&format!("/env/{name}"))).await.0,
            404,
            "{name} leaked into the environment"
        );
    }
    // Only the static `environment` table is.
    assert_eq!(get(&host.url("/env/MODE")).await, (200, "test".into()));
    assert_eq!(get(&host.url("/config/mode")).await.0, 404);
    assert_eq!(get(&host.url("/config/Greeting")).await.0, 404, "an invalid name reads as absent");
}

/// A keep-alive HTTP server that answers every request with a 204 and
/// counts the connections it accepts.
async fn counting_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    request.extend_from_slice(&buf[..n]);
                    // Answer each complete (bodiless) request and keep the connection.
                    while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        request.drain(..end + 4);
                        if stream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, connections)
}

#[tokio::test]
async fn outbound_requests_are_limited_to_allowed_hosts() {
    let (allowed, allowed_hits) = counting_server().await;
    let (denied, denied_hits) = counting_server().await;
    let host = start(&testbed_manifest(&format!("\"http://{allowed}\"")), &[], &[]).unwrap();

    assert_eq!(get(&host.url(&format!("/fetch?http://{allowed}/x"))).await, (200, "status 204".into()));
    let (status, body) = get(&host.url(&format!("/fetch?http://{denied}/x"))).await;
    assert_eq!(status, 502);
    assert!(body.contains("HttpRequestDenied"), "{body}");
    let other_scheme = get(&host.url(&format!("/fetch?https://{allowed}/x"))).await;
    assert!(other_scheme.1.contains("HttpRequestDenied"), "{other_scheme:?}");
    assert_eq!(allowed_hits.load(Ordering::SeqCst), 1);
    assert_eq!(denied_hits.load(Ordering::SeqCst), 0, "a denied request must not leave the host");
}

#[tokio::test]
async fn plain_http_calls_reuse_pooled_connections() {
    let (origin, connections) = counting_server().await;
    let host = start(&testbed_manifest(&format!("\"http://{origin}\"")), &[], &[]).unwrap();
    for _ in 0..5 {
        assert_eq!(get(&host.url(&format!("/fetch?http://{origin}/x"))).await, (200, "status 204".into()));
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1, "five calls, one connection");
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn large_bodies_stream_through_without_buffering() {
    const BYTES: usize = 300 << 20;
    let host = start(&testbed_manifest(""), &[], &[]).unwrap();
    let mut response = reqwest::get(host.url(&format!("/stream?{BYTES}"))).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut received = 0;
    while let Some(chunk) = response.chunk().await.unwrap() {
        assert!(chunk.iter().all(|b| *b == b'x'));
        received += chunk.len();
    }
    assert_eq!(received, BYTES);
    let peak = peak_rss_kib(host.pid());
    assert!(peak < 150 << 10, "host peaked at {peak} KiB for a {BYTES}-byte body: it buffered");
}

#[tokio::test]
async fn instances_are_reused_up_to_the_limit() {
    let reusing = start(&testbed_manifest(""), &["--max-reuse", "3"], &[]).unwrap();
    let mut counts = Vec::new();
    for _ in 0..4 {
        counts.push(get(&reusing.url("/counter")).await.1);
    }
    assert_eq!(counts, ["1", "2", "3", "1"]);

    let fresh = start(&testbed_manifest(""), &["--max-reuse", "1"], &[]).unwrap();
    for _ in 0..3 {
        assert_eq!(get(&fresh.url("/counter")).await.1, "1");
    }
}

#[tokio::test]
async fn requests_beyond_the_instance_limit_wait_for_a_free_instance() {
    const BYTES: usize = 4 << 20;
    let host = start(&testbed_manifest(""), &["--max-instances", "2"], &[]).unwrap();
    let mut downloads = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let url = host.url(&format!("/stream?{BYTES}"));
        downloads.spawn(async move {
            let response = reqwest::get(url).await.unwrap();
            (response.status().as_u16(), response.bytes().await.unwrap().len())
        });
    }
    while let Some(download) = downloads.join_next().await {
        assert_eq!(download.unwrap(), (200, BYTES), "every request is served, none refused");
    }
}

#[tokio::test]
async fn idle_instances_are_dropped_after_the_timeout() {
    // A second is far longer than two requests in a row take, even on a
    // loaded machine; an idle instance is gone within two (one sweep late).
    let host = start(&testbed_manifest(""), &["--idle-timeout-ms", "1000"], &[]).unwrap();
    assert_eq!(get(&host.url("/counter")).await.1, "1");
    assert_eq!(get(&host.url("/counter")).await.1, "2", "a warm instance is reused");
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(get(&host.url("/counter")).await.1, "1", "the idle instance was dropped");
}

#[test]
fn a_component_with_a_foreign_import_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let wat = dir.path().join("foreign.wat");
    std::fs::write(&wat, r#"(component (import "spin:variables/variables@3.0.0" (instance)))"#).unwrap();
    let manifest =
        testbed_manifest("").replace("{wasm}", &wat.display().to_string()).replace("testbed", "sneaky");
    let err = start(&manifest, &[], &[]).err().expect("the host must refuse to start");
    assert!(err.contains("component `sneaky`"), "{err}");
    assert!(err.contains("spin:variables/variables@3.0.0"), "{err}");
    assert!(err.contains("stampede:edge@0.1.0/edge-component"), "{err}");
}

#[tokio::test]
async fn unknown_paths_get_a_json_problem() {
    let manifest = testbed_manifest("").replace("route = \"/...\"", "route = \"/counter\"");
    let host = start(&manifest, &[], &[]).unwrap();
    let response = reqwest::get(host.url("/elsewhere")).await.unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["error"], "route_not_found");
    assert_eq!(get(&host.url("/counter")).await.0, 200);
    assert_eq!(get(&host.url("/counter/more")).await.0, 404, "an exact route matches only itself");
}

#[tokio::test]
async fn sigterm_lets_a_running_download_finish() {
    const BYTES: usize = 64 << 20;
    let host = start(&testbed_manifest(""), &[], &[]).unwrap();
    let mut response = reqwest::get(host.url(&format!("/stream?{BYTES}"))).await.unwrap();
    let mut received = response.chunk().await.unwrap().unwrap().len();
    Command::new("kill").args(["-TERM", &host.pid().to_string()]).status().unwrap();
    // Shutdown has begun once the listener refuses connections; the
    // download, mostly unread, is still under way then.
    let address = host.url("/").trim_start_matches("http://").trim_end_matches('/').to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(&address).await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "the host kept accepting connections after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(received < BYTES, "the download was still running when shutdown began");
    while let Some(chunk) = response.chunk().await.unwrap() {
        received += chunk.len();
    }
    assert_eq!(received, BYTES, "the running download finished");
}

/// The built edge components, as `spin.toml` deploys them: each reads its
/// configuration through `wasi:config/store` in Spin 3's version, and
/// imports nothing the world in `wit/` does not name: no `spin:*`, no
/// filesystem, no sockets.
#[test]
fn the_edge_components_import_wasi_config_and_nothing_outside_the_world() {
    let world = edge_host::world::EdgeWorld::load(&wit_dir(), None).unwrap();
    let engine = wasmtime::Engine::default();
    let dir = testbed_wasm().parent().unwrap().to_owned();
    for component in ["edge_catalog", "edge_queue"] {
        let wasm = dir.join(format!("{component}.wasm"));
        let loaded = wasmtime::component::Component::from_file(&engine, &wasm).unwrap();
        let ty = loaded.component_type();
        let imports: Vec<&str> = ty.imports(&engine).map(|(name, _)| name).collect();
        let exports: Vec<&str> = ty.exports(&engine).map(|(name, _)| name).collect();
        world.check(component, imports.iter().copied(), exports.iter().copied()).unwrap();
        assert!(imports.contains(&"wasi:config/store@0.2.0-draft-2024-09-27"), "{component}: {imports:?}");
        assert!(imports.iter().all(|i| i.starts_with("wasi:")), "{component}: {imports:?}");
    }
}

/// The bench's components "of the page's and the poll's shape" answer as
/// many bytes as asked, with the headers the services' answers carry.
#[tokio::test]
async fn a_component_answers_through_the_services_adapter_in_the_size_asked() {
    let host = start(&testbed_manifest(""), &[], &[]).unwrap();
    let response = reqwest::get(host.url("/adapted?314")).await.unwrap();
    assert_eq!(response.status(), 200);
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    assert_eq!(header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(response.bytes().await.unwrap().len(), 314);
    assert_eq!(reqwest::get(host.url("/adapted?many")).await.unwrap().status(), 400);
}
