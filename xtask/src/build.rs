//! Cargo invocations. Wasmtime alone takes minutes to compile on two cores,
//! so every native build is the same one: `--release`, the whole workspace,
//! tests included. Cargo unifies features per invocation; building a
//! different selection of packages (or leaving out dev-dependencies) would
//! change feature sets and recompile Wasmtime. `up` builds the test targets
//! too, which costs little and keeps `up` and `test` sharing one build.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

/// The edge components, built for `wasm32-wasip2`.
pub const COMPONENTS: &[&str] = &["edge-catalog", "edge-queue", "edge-testbed"];
pub fn component_dir(root: &Path) -> PathBuf {
    root.join("target/wasm32-wasip2/release")
}

pub fn binary_dir(root: &Path) -> PathBuf {
    root.join("target/release")
}

pub fn components() -> anyhow::Result<()> {
    cargo(&["build", "--release", "--target", "wasm32-wasip2"], COMPONENTS)
}

/// The edge as one Cloudflare Worker (`edge-worker/build/`), built by
/// worker-build with the tools `setup` installed: the `[build]` command of
/// `wrangler.toml`, so `wrangler deploy` and `wrangler dev` build it too.
pub fn worker(root: &Path) -> anyhow::Result<()> {
    let npm_bin = root.join("cloudflare/node_modules/.bin");
    let cargo_bin = home_cargo_bin();
    run(Command::new(cargo_bin.join("worker-build"))
        .arg("--release")
        .current_dir(root.join("edge-worker"))
        .env("WASM_BINDGEN_BIN", cargo_bin.join("wasm-bindgen"))
        .env("WASM_OPT_BIN", npm_bin.join("wasm-opt"))
        .env("ESBUILD_BIN", npm_bin.join("esbuild")))
}

/// `wrangler deploy --dry-run` of the Worker from the top-level
/// `wrangler.toml`: it runs the `[build]` command, then checks that the
/// configuration and bundle are what Cloudflare would accept.
pub fn worker_deploy_dry_run(root: &Path, out: &Path) -> anyhow::Result<()> {
    run(wrangler(root).args(["deploy", "--dry-run", "--outdir"]).arg(out).current_dir(root))
}

/// The project's wrangler (`cloudflare/package-lock.json`), quiet and offline-minded.
pub fn wrangler(root: &Path) -> Command {
    let mut command = Command::new(root.join("cloudflare/node_modules/.bin/wrangler"));
    command
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CI", "true")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false");
    command
}

/// Where `cargo install` put worker-build and wasm-bindgen.
fn home_cargo_bin() -> PathBuf {
    match std::env::var_os("CARGO_HOME") {
        Some(home) => PathBuf::from(home).join("bin"),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo/bin"),
    }
}

/// Every native binary and test executable, in one build.
pub fn native() -> anyhow::Result<()> {
    cargo(&["test", "--release", "--workspace", "--no-run"], &[])
}

/// What `cargo xtask bench origin` runs: the origin, the Upstash gateway,
/// the local SMTP server, the edge host (orders come through it too) and the load generators.
pub fn origin_binaries() -> anyhow::Result<()> {
    cargo(
        &["build", "--release"],
        &["origin-inventory", "upstash-gateway", "smtp-sink", "edge-host", "load-tests"],
    )
}

pub fn check_formatting() -> anyhow::Result<()> {
    cargo(&["fmt", "--all", "--check"], &[])
}

pub fn clippy() -> anyhow::Result<()> {
    cargo(&["clippy", "--release", "--workspace", "--all-targets", "--", "-D", "warnings"], &[])?;
    // The Worker and the services' Workers halves compile only for its target.
    let mut command = Command::new("cargo");
    command.args(["clippy", "--release", "--target", "wasm32-unknown-unknown"]);
    command.args(["-p", "edge-worker", "-p", "edge-catalog", "-p", "edge-queue", "--no-default-features"]);
    command.args(["--features", "edge-catalog/workers,edge-queue/workers"]);
    run(command.args(["--", "-D", "warnings"]))
}

/// `cargo sqlx prepare --check`: every query of the origin, checked at
/// compile time against a database migrated afresh at `database_url`, and
/// the offline data (`origin-inventory/.sqlx/`, which every other build
/// compiles against) in step with them. After `clippy`, whose dependencies
/// it reuses.
pub fn checked_sql(database_url: &str) -> anyhow::Result<()> {
    let sqlx = || {
        let mut command = Command::new("cargo");
        command.current_dir("origin-inventory").arg("sqlx");
        command
    };
    run(sqlx().args(["migrate", "run", "--source", "migrations", "--database-url", database_url]))?;
    run(sqlx().args(["prepare", "--check", "--database-url", database_url, "--", "--release"]))
}

/// Every test against the services in `env`. The reports of whatever
/// failed are repeated at the end: a long run's log is often read only by
/// its tail, where otherwise only the names of the failed tests stand.
pub fn tests(env: &[(&str, String)]) -> anyhow::Result<()> {
    let mut command = Command::new("cargo");
    command.args(["test", "--release", "--workspace", "--no-fail-fast"]);
    command.envs(env.iter().map(|(k, v)| (k, v)));
    let shown = format!("{command:?}");
    eprintln!("xtask: {shown}");
    let mut child = command.stdout(Stdio::piped()).spawn().with_context(|| format!("cannot run {shown}"))?;
    let mut output = std::io::BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut reports = FailureReports::default();
    let mut line = Vec::new();
    while output.read_until(b'\n', &mut line)? > 0 {
        let text = String::from_utf8_lossy(&line);
        print!("{text}");
        reports.read(text.trim_end_matches(['\n', '\r']));
        line.clear();
    }
    let status = child.wait()?;
    if !status.success() {
        for report in &reports.reports {
            eprintln!("xtask: failed, as the test reported it:\n{}", report.join("\n"));
        }
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

/// The failure reports in libtest's output: from a failed test's
/// `---- name stdout ----` to the next one or the list of names that ends
/// them, the first lines of each (the message; not the whole backtrace).
#[derive(Default)]
struct FailureReports {
    reports: Vec<Vec<String>>,
    reading: bool,
}

impl FailureReports {
    const LINES_KEPT: usize = 25;

    fn read(&mut self, line: &str) {
        if line.starts_with("---- ") && line.ends_with(" stdout ----") {
            self.reports.push(vec![line.to_owned()]);
            self.reading = true;
        } else if line == "failures:" || line.starts_with("test result:") {
            self.reading = false;
        } else if self.reading
            && let Some(report) = self.reports.last_mut()
            && report.len() < Self::LINES_KEPT
        {
            report.push(line.to_owned());
        }
    }
}

fn cargo(args: &[&str], packages: &[&str]) -> anyhow::Result<()> {
    let mut command = Command::new("cargo");
    command.args(args);
    for package in packages {
        command.args(["-p", package]);
    }
    run(&mut command)
}

pub fn run(command: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{command:?}");
    eprintln!("xtask: {shown}");
    let status = command.status().with_context(|| format!("cannot run {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failed_test_keeps_its_message_and_nothing_after_its_report() {
        let output = "running 3 tests
test a ... ok
test b ... FAILED
test c ... FAILED

failures:

---- b stdout ----

thread 'b' panicked at src/lib.rs:1:1:
no statement measured
note: run with `RUST_BACKTRACE=1`

---- c stdout ----
thread 'c' panicked at src/lib.rs:2:2:
left == right

failures:
    b
    c

test result: FAILED. 1 passed; 2 failed
test d ... ok";
        let mut reports = FailureReports::default();
        output.lines().for_each(|line| reports.read(line));
        assert_eq!(reports.reports.len(), 2);
        assert_eq!(reports.reports[0][0], "---- b stdout ----");
        assert!(reports.reports[0].contains(&"no statement measured".to_owned()));
        assert_eq!(reports.reports[1].last().map(String::as_str), Some(""));
        assert!(reports.reports[1].contains(&"left == right".to_owned()));
        assert!(!reports.reports.concat().iter().any(|line| line.contains("test d") || line.trim() == "c"));

        let mut long = FailureReports::default();
        long.read("---- e stdout ----");
        (0..100).for_each(|n| long.read(&format!("frame {n}")));
        assert_eq!(long.reports[0].len(), FailureReports::LINES_KEPT);
    }
}
