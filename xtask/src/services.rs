//! The processes of a local stack. Each is a value whose `Drop` stops it,
//! so declaring them in start order stops them in reverse order, also when
//! set-up fails half-way.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::build::{binary_dir, run};
use crate::setup::{is_root, output, postgres_bin_dir};

/// A port from the environment, or the default.
pub fn env_port(name: &str, default: u16) -> anyhow::Result<u16> {
    match std::env::var(name) {
        Ok(value) => value.parse().with_context(|| format!("{name}={value} is not a port number")),
        Err(_) => Ok(default),
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for_port(port: u16, what: &str, child: &mut Child, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited with {status} during start-up; see {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not listen on port {port} within 60 s; see {}", log.display())
}

/// The clusters this process started and has not stopped yet: their
/// binaries and data folders.
static CLUSTERS: Mutex<Vec<(PathBuf, PathBuf)>> = Mutex::new(Vec::new());

fn clusters() -> std::sync::MutexGuard<'static, Vec<(PathBuf, PathBuf)>> {
    CLUSTERS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// On Ctrl-C (or SIGTERM), stops everything started under this process and
/// exits, as `Drop` would have. A terminal's Ctrl-C reaches only our own
/// process group, and several things leave it: `pg_ctl` starts each
/// postmaster in a session of its own, `wrangler dev` and chromedriver run
/// in groups of their own so that one signal stops their children, and a
/// test binary killed by Ctrl-C orphans what it started. As the children's
/// subreaper this process stays the ancestor of all of them, so they can
/// be found and stopped.
pub fn stop_everything_on_interrupt() -> anyhow::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer and touches no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        bail!("cannot become the subreaper of this run's processes: {}", std::io::Error::last_os_error());
    }
    ctrlc::set_handler(|| {
        // A fast shutdown first: a postmaster told to stop by SIGTERM waits for its sessions.
        for (bin, data) in std::mem::take(&mut *clusters()) {
            stop_cluster(&bin, &data);
        }
        let deadline = Instant::now() + STOP_GRACE;
        let mut running = descendants();
        for &pid in &running {
            signal("-TERM", pid);
        }
        while !running.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            running = descendants();
        }
        for pid in running {
            signal("-KILL", pid);
        }
        std::process::exit(130);
    })
    .context("cannot install the Ctrl-C handler")
}

/// How long a process told to stop (SIGTERM) has before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// Sends `kill`'s signal `name` to `pid`. The process may be gone already
/// (it stopped on its own, or on the terminal's signal): nothing is said.
fn signal(name: &str, pid: u32) {
    let _ = Command::new("kill").args([name, &pid.to_string()]).stderr(Stdio::null()).status();
}

/// The live processes started under this one, at any depth (zombies are
/// already stopped and left out).
fn descendants() -> Vec<u32> {
    // (pid, parent) of every live process, from `/proc/<pid>/stat`:
    // "pid (comm) state ppid …", where comm may hold spaces and parentheses.
    let processes: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let mut after_comm = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
            let state = after_comm.next()?;
            let parent = after_comm.next()?.parse().ok()?;
            (state != "Z").then_some((pid, parent))
        })
        .collect();
    let mut found = vec![std::process::id()];
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        found.extend(processes.iter().filter(|(_, p)| *p == parent).map(|(pid, _)| *pid));
        next += 1;
    }
    found.split_off(1)
}

/// A child process stopped with SIGTERM (then SIGKILL) when dropped.
pub struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `command` and waits until it listens on `port`.
    pub fn spawn_listening(
        name: &'static str,
        command: &mut Command,
        log: PathBuf,
        port: u16,
    ) -> anyhow::Result<Self> {
        let mut process = Self::spawn(name, command, log)?;
        process.wait_for_port(port)?;
        Ok(process)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn spawn(name: &'static str, command: &mut Command, log: PathBuf) -> anyhow::Result<Self> {
        let out = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {name}: {command:?}"))?;
        Ok(Self { name, child, log })
    }

    fn wait_for_port(&mut self, port: u16) -> anyhow::Result<()> {
        wait_for_port(port, self.name, &mut self.child, &self.log)
    }

    /// `Err` if the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited with {status}; see {}", self.name, self.log.display());
        }
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        signal("-TERM", self.child.id());
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Blocks until `stop` fires, or fails as soon as one of `processes` dies.
pub fn wait_for_exit_or(processes: &mut [&mut Process], stop: Receiver<()>) -> anyhow::Result<()> {
    loop {
        match stop.recv_timeout(Duration::from_millis(500)) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
            Err(RecvTimeoutError::Timeout) => {
                for process in processes.iter_mut() {
                    process.check_alive()?;
                }
            }
        }
    }
}

/// A private PostgreSQL cluster in a folder of ours, on its own port.
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
}

impl Postgres {
    /// Creates the cluster on first use and starts it. `durable = false`
    /// makes a throw-away test cluster: fsync off, and `pg_stat_statements`
    /// loaded for the tests that read what statements cost
    /// (`origin-inventory/tests/api/crowds.rs`).
    pub fn start(home: &Path, port: u16, durable: bool) -> anyhow::Result<Self> {
        let bin = postgres_bin_dir()?;
        let data = home.join("data");
        std::fs::create_dir_all(home)?;
        // PostgreSQL refuses to run as root; the Debian package's `postgres` user owns the cluster.
        if is_root() {
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(home))?;
        }
        if !data.join("PG_VERSION").exists() {
            run(pg_command(&bin, "initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", "stampede", "--auth=trust", "--encoding=UTF8", "--no-locale"])
                .stdout(Stdio::null()))?;
        }
        let mut options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections=300"
        );
        if !durable {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
            // Every test's database runs its migrations: thousands of
            // statements in all. Past `pg_stat_statements.max` Postgres
            // evicts the least-called entries, which are the few a
            // measuring test has just run once.
            options
                .push_str(" -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.max=100000");
        }
        run(pg_command(&bin, "pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(home.join("postgres.log"))
            .args(["-o", &options, "-w", "-t", "60", "start"])
            .stdout(Stdio::null()))
        .with_context(|| format!("PostgreSQL did not start; see {}", home.join("postgres.log").display()))?;
        clusters().push((bin.clone(), data.clone()));
        Ok(Self { bin, data, port })
    }

    /// The postmaster's process id (the first line of `postmaster.pid`).
    pub fn pid(&self) -> anyhow::Result<u32> {
        let file = std::fs::read_to_string(self.data.join("postmaster.pid"))?;
        file.lines().next().and_then(|l| l.trim().parse().ok()).context("a pid in postmaster.pid")
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://stampede@127.0.0.1:{}/{database}", self.port)
    }

    /// `pgbench` of the same PostgreSQL version (a client: any user may run it).
    pub fn pgbench(&self) -> Command {
        Command::new(self.bin.join("pgbench"))
    }

    /// `pg_waldump --stats=record` of the WAL between two positions: how
    /// many records of each kind (row inserted, index entry, row lock …)
    /// were written there. Run as the cluster's owner, who may read `pg_wal`.
    pub fn wal_records(&self, from: &str, to: &str) -> anyhow::Result<String> {
        output(pg_command(&self.bin, "pg_waldump").arg("-p").arg(self.data.join("pg_wal")).args([
            "-s",
            from,
            "-e",
            to,
            "--stats=record",
        ]))
    }

    pub fn create_database(&self, name: &str) -> anyhow::Result<()> {
        let exists = output(Command::new("psql").args([
            &self.url("postgres"),
            "-tAc",
            &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
        ]))?;
        if exists.trim() != "1" {
            run(Command::new("psql").args([
                &self.url("postgres"),
                "-qc",
                &format!("CREATE DATABASE {name}"),
            ]))?;
        }
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        clusters().retain(|(_, data)| *data != self.data);
        stop_cluster(&self.bin, &self.data);
    }
}

fn stop_cluster(bin: &Path, data: &Path) {
    let _ = pg_command(bin, "pg_ctl")
        .arg("-D")
        .arg(data)
        .args(["-m", "fast", "-w", "stop"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn pg_command(bin: &Path, program: &str) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(bin.join(program));
        command
    } else {
        Command::new(bin.join(program))
    }
}

/// A private `redis-server`.
pub struct Redis {
    pub process: Process,
    port: u16,
}

impl Redis {
    /// `durable` keeps an append-only file in `home` across restarts.
    pub fn start(home: &Path, port: u16, durable: bool) -> anyhow::Result<Self> {
        std::fs::create_dir_all(home)?;
        let mut command = Command::new("redis-server");
        command.args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", ""]);
        command.args(["--appendonly", if durable { "yes" } else { "no" }]).arg("--dir").arg(home);
        let mut process = Process::spawn("redis-server", &mut command, home.join("redis.log"))?;
        process.wait_for_port(port)?;
        Ok(Self { process, port })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// The local SMTP server (`smtp-sink`): every message filed into a maildir
/// as received.
pub struct Smtp {
    pub process: Process,
    port: u16,
    maildir: PathBuf,
}

impl Smtp {
    pub fn start(root: &Path, home: &Path, port: u16) -> anyhow::Result<Self> {
        std::fs::create_dir_all(home)?;
        let maildir = home.join("maildir");
        let mut command = Command::new(binary_dir(root).join("smtp-sink"));
        command.arg(format!("127.0.0.1:{port}")).arg(&maildir);
        let mut process = Process::spawn("smtp-sink", &mut command, home.join("smtp.log"))?;
        process.wait_for_port(port)?;
        Ok(Self { process, port, maildir })
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn maildir(&self) -> &Path {
        &self.maildir
    }
}

/// The Upstash-REST gateway in front of Redis, as edge components reach it.
pub struct UpstashGateway {
    pub process: Process,
    port: u16,
    pub token: String,
}

/// The gateway's bearer token in local runs, unless `STAMPEDE_UPSTASH_TOKEN` sets one.
pub const LOCAL_UPSTASH_TOKEN: &str = "stampede-local-token";

impl UpstashGateway {
    pub fn start(root: &Path, redis: &Redis, port: u16, token: &str, logs: &Path) -> anyhow::Result<Self> {
        let mut command = Command::new(binary_dir(root).join("upstash-gateway"));
        command
            .env("STAMPEDE_REDIS_URL", redis.url())
            .env("STAMPEDE_UPSTASH_TOKEN", token)
            .env("STAMPEDE_UPSTASH_LISTEN", format!("127.0.0.1:{port}"));
        let mut process = Process::spawn("upstash-gateway", &mut command, logs.join("upstash-gateway.log"))?;
        process.wait_for_port(port)?;
        Ok(Self { process, port, token: token.to_owned() })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Who signs the waiting room's tokens in local runs.
pub const EDGE_ISSUER: &str = "stampede-edge";

/// The waiting room's signing key (for the edge) and its public JWKS (for
/// the origin). Drawn once and kept in the state folder, so tokens survive
/// a restart of the stack.
pub struct EdgeKeys {
    pub signing: String,
    pub jwks: String,
}

impl EdgeKeys {
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            std::fs::write(path, format!("{}\n", crate::keys::draw("local-1")?))?;
        }
        let signing = std::fs::read_to_string(path)?.trim().to_owned();
        let jwks = crate::keys::jwks(&signing)
            .with_context(|| format!("{} holds no valid signing key", path.display()))?;
        Ok(Self { jwks, signing })
    }
}

/// The origin service binary.
pub struct Origin {
    pub process: Process,
    port: u16,
}

/// What the origin talks to besides Postgres.
pub struct OriginPeers<'a> {
    pub smtp: &'a Smtp,
    pub keys: &'a EdgeKeys,
    pub upstash: &'a UpstashGateway,
    /// Where buyers reach the site (the edge), for the links in emails;
    /// `None` keeps the origin's local default.
    pub public_url: Option<String>,
}

/// An origin's databases, on one cluster: its own, and the sandbox payment
/// provider's ledger. The sandbox stands for another company, so its
/// transactions stay out of the origin's database (and its figures).
pub struct OriginDatabases {
    pub sales: String,
    pub ledger: String,
}

impl OriginDatabases {
    pub const SALES: &str = "stampede";
    pub const LEDGER: &str = "stampede_sandbox";

    pub fn create(postgres: &Postgres) -> anyhow::Result<Self> {
        postgres.create_database(Self::SALES)?;
        postgres.create_database(Self::LEDGER)?;
        Ok(Self { sales: postgres.url(Self::SALES), ledger: postgres.url(Self::LEDGER) })
    }

    /// Tells an `origin-inventory` process where both are.
    pub fn give_to<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        command.env("DATABASE_URL", &self.sales).env("STAMPEDE_SANDBOX_DATABASE_URL", &self.ledger)
    }
}

impl Origin {
    pub fn start(
        root: &Path,
        databases: &OriginDatabases,
        peers: &OriginPeers,
        port: u16,
        settings: &[(&str, &str)],
        logs: &Path,
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(binary_dir(root).join("origin-inventory"));
        if let Some(url) = &peers.public_url {
            command.env("STAMPEDE_PUBLIC_URL", url);
        }
        databases
            .give_to(&mut command)
            .envs(settings.iter().copied())
            .env("STAMPEDE_ORIGIN_LISTEN", format!("127.0.0.1:{port}"))
            .env("STAMPEDE_SMTP_URL", peers.smtp.url())
            .env("STAMPEDE_ACCESS_JWKS", &peers.keys.jwks)
            .env("STAMPEDE_ACCESS_ISSUER", EDGE_ISSUER)
            .env("UPSTASH_REDIS_REST_URL", peers.upstash.url())
            .env("UPSTASH_REDIS_REST_TOKEN", &peers.upstash.token);
        let mut process = Process::spawn("origin-inventory", &mut command, logs.join("origin.log"))?;
        process.wait_for_port(port)?;
        wait_until_ready(port, "/health/ready", &mut process)?;
        Ok(Self { process, port })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The edge host serving the components of `spin.toml`.
pub struct Edge {
    pub process: Process,
    port: u16,
}

impl Edge {
    pub fn start(
        root: &Path,
        port: u16,
        origin_url: &str,
        upstash: &UpstashGateway,
        keys: &EdgeKeys,
        variables: &[(&str, &str)],
        logs: &Path,
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(binary_dir(root).join("edge-host"));
        command
            .current_dir(root)
            .args(["--manifest", "spin.toml", "--wit", "wit", "--listen", &format!("127.0.0.1:{port}")])
            .env("SPIN_VARIABLE_ORIGIN_URL", origin_url)
            .env("SPIN_VARIABLE_UPSTASH_REDIS_REST_URL", upstash.url())
            .env("SPIN_VARIABLE_UPSTASH_REDIS_REST_TOKEN", &upstash.token)
            .env("SPIN_VARIABLE_QUEUE_SIGNING_KEYS", &keys.signing)
            .env("SPIN_VARIABLE_QUEUE_ISSUER", EDGE_ISSUER)
            .envs(variables.iter().copied());
        let mut process = Process::spawn("edge-host", &mut command, logs.join("edge.log"))?;
        process.wait_for_port(port)?;
        Ok(Self { process, port })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn wait_until_ready(port: u16, path: &str, process: &mut Process) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if http_status(port, path).is_ok_and(|status| status == 200) {
            return Ok(());
        }
        process.check_alive()?;
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("{} was not ready within 60 s", process.name)
}

/// A minimal HTTP/1.0 GET, enough for readiness probes without an HTTP client.
fn http_status(port: u16, path: &str) -> anyhow::Result<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    let status = std::str::from_utf8(&head[9..12])?.parse()?;
    Ok(status)
}

/// What `origin-inventory seed-demo` reports.
pub struct Demo {
    pub api_key: String,
    pub on_sale_event: String,
}

/// Applies migrations and loads demo data (idempotent).
pub fn seed_demo(root: &Path, database_url: &str) -> anyhow::Result<Demo> {
    let out = output(
        Command::new(binary_dir(root).join("origin-inventory"))
            .arg("seed-demo")
            .env("DATABASE_URL", database_url),
    )?;
    let field = |name: &str| {
        out.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
            .with_context(|| format!("seed-demo did not print {name}: {out}"))
    };
    Ok(Demo { api_key: field("api_key")?, on_sale_event: field("on_sale_event")? })
}
