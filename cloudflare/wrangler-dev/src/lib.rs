//! Stampede's edge as its Cloudflare Worker under `wrangler dev --local`
//! (workerd), configured by the project's own top-level `wrangler.toml`
//! with local values in place of the production ones.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub struct Wrangler {
    child: Child,
    base: String,
    state: PathBuf,
}

/// Local values for one session.
pub struct Settings<'a> {
    /// Vars and secrets by their Worker names.
    pub vars: &'a [(&'a str, &'a str)],
    /// A Postgres URL for the catalog's `HYPERDRIVE` binding.
    pub hyperdrive: Option<&'a str>,
}

impl Wrangler {
    /// Starts the Worker prebuilt in `root` (the project's checkout) and
    /// waits until it serves. workerd now and then fails to come up on a
    /// busy machine ("The Workers runtime failed to start"); a fresh session
    /// on fresh ports gets a second and a third chance.
    pub fn start(root: &Path, settings: &Settings) -> Result<Self, String> {
        let mut failures = Vec::new();
        for _ in 0..3 {
            match Self::start_once(root, settings) {
                Ok(wrangler) => return Ok(wrangler),
                Err(failure) => failures.push(failure),
            }
        }
        Err(failures.join("\n---- next attempt ----\n"))
    }

    fn start_once(root: &Path, settings: &Settings) -> Result<Self, String> {
        static SESSIONS: AtomicU32 = AtomicU32::new(0);
        let session = SESSIONS.fetch_add(1, Ordering::Relaxed);
        let state = std::env::temp_dir().join(format!("stampede-wrangler-{}-{session}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).map_err(|e| format!("{}: {e}", state.display()))?;
        let config = state.join("wrangler.toml");
        std::fs::write(&config, local_config(root, settings)?)
            .map_err(|e| format!("{}: {e}", config.display()))?;
        let port = free_port()?;
        let wrangler = root.join("cloudflare/node_modules/.bin/wrangler");
        let mut command = Command::new(wrangler);
        command
            .args(["dev", "--local", "--ip", "127.0.0.1", "--log-level", "warn"])
            .args(["--port", &port.to_string(), "--inspector-port", &free_port()?.to_string()])
            .args(["--show-interactive-dev-session=false", "--persist-to"])
            .arg(state.join("persist"))
            .arg("-c")
            .arg(&config)
            .current_dir(&state)
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CI", "true")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            // The debug log, which says why workerd did not start, stays
            // with the session instead of under ~/.config.
            .env("WRANGLER_LOG_PATH", state.join("debug.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(state.join("wrangler.log")).map_err(|e| e.to_string())?);
        // Its own process group, so stopping it stops workerd too.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start wrangler (`cargo xtask test` installs it): {e}"))?;
        let mut wrangler = Self { child, base: format!("http://127.0.0.1:{port}"), state };
        wrangler.wait_until_serving()?;
        Ok(wrangler)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn wait_until_serving(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let address = self.base.trim_start_matches("http://").to_owned();
        let log = |name: &str| std::fs::read_to_string(self.state.join(name)).unwrap_or_default();
        while started.elapsed() < Duration::from_secs(90) {
            // The port opens before the Worker is loaded; the waiting
            // room's JWKS means it is.
            if answers_ok(&address, "/.well-known/jwks.json") {
                return Ok(());
            }
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if exited || log("wrangler.log").contains("failed to start") {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let debug = log("debug.log");
        let lines: Vec<&str> = debug.lines().collect();
        let debug_tail = lines[lines.len().saturating_sub(60)..].join("\n");
        Err(format!(
            "wrangler dev did not serve after {:.0?}:\n{}\ndebug log (tail):\n{debug_tail}",
            started.elapsed(),
            log("wrangler.log")
        ))
    }
}

impl Drop for Wrangler {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// The project's `wrangler.toml` for local use: the prebuilt Worker (no
/// `[build]`, which would build it again), no routes or deploy
/// environments, local vars, and Hyperdrive only when asked for.
fn local_config(root: &Path, settings: &Settings) -> Result<String, String> {
    let path = root.join("wrangler.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut config: toml::Table = text.parse().map_err(|e| format!("{}: {e}", path.display()))?;
    for local_only in ["routes", "env", "build", "hyperdrive"] {
        config.remove(local_only);
    }
    let main = config.get("main").and_then(|m| m.as_str()).ok_or("wrangler.toml has no `main`")?;
    let main = root.join(main);
    config.insert("main".into(), main.display().to_string().into());
    let vars: toml::Table = settings.vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).into())).collect();
    config.insert("vars".into(), vars.into());
    if let Some(url) = settings.hyperdrive {
        let mut binding = toml::Table::new();
        binding.insert("binding".into(), "HYPERDRIVE".into());
        binding.insert("id".into(), "local".into());
        binding.insert("localConnectionString".into(), url.into());
        config.insert("hyperdrive".into(), toml::Value::Array(vec![binding.into()]));
    }
    toml::to_string(&config).map_err(|e| e.to_string())
}

fn answers_ok(address: &str, path: &str) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(address) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n");
    let mut status = [0; 12];
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_exact(&mut status).is_ok()
        && status.ends_with(b" 200")
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}
