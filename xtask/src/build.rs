//! Cargo invocations. Wasmtime alone takes minutes to compile on two cores,
//! so every native build is the same one: `--release`, the whole workspace,
//! tests included. Cargo unifies features per invocation; building a
//! different selection of packages (or leaving out dev-dependencies) would
//! change feature sets and recompile Wasmtime. `up` builds the test targets
//! too, which costs little and keeps `up` and `test` sharing one build.

use std::path::{Path, PathBuf};
use std::process::Command;

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
/// the edge host (orders come through it too) and the load generators.
pub fn origin_binaries() -> anyhow::Result<()> {
    cargo(&["build", "--release"], &["origin-inventory", "upstash-gateway", "edge-host", "load-tests"])
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

pub fn tests(env: &[(&str, String)]) -> anyhow::Result<()> {
    let mut command = Command::new("cargo");
    command.args(["test", "--release", "--workspace", "--no-fail-fast"]);
    command.envs(env.iter().map(|(k, v)| (k, v)));
    run(&mut command)
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
