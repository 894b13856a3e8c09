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

/// Every native binary and test executable, in one build.
pub fn native() -> anyhow::Result<()> {
    cargo(&["test", "--release", "--workspace", "--no-run"], &[])
}

pub fn check_formatting() -> anyhow::Result<()> {
    cargo(&["fmt", "--all", "--check"], &[])
}

pub fn clippy() -> anyhow::Result<()> {
    cargo(&["clippy", "--release", "--workspace", "--all-targets", "--", "-D", "warnings"], &[])
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
