//! Installs what a fresh Debian machine lacks. Every step checks first, so
//! running it again costs nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::build::run;

const WASM_TARGETS: &[&str] = &["wasm32-wasip2", "wasm32-unknown-unknown"];

pub fn install_prerequisites() -> anyhow::Result<()> {
    rust_targets()?;
    if !on_path("redis-server") {
        apt_install(&["redis-server"])?;
    }
    postgres_bin_dir()?;
    // The real browser of the end-to-end tests.
    if !on_path("chromedriver") {
        apt_install(&["chromium", "chromium-driver"])?;
    }
    if !on_path("npm") {
        apt_install(&["nodejs", "npm"])?;
    }
    // The official Upstash client, which proves the gateway's compatibility.
    let compat = std::path::Path::new("upstash-gateway/compat");
    if !compat.join("node_modules/@upstash/redis").exists() {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--prefix"]).arg(compat))?;
    }
    workers_toolchain()?;
    // Checks the origin's SQL against a real database (`cargo sqlx prepare --check`).
    let sqlx_version = Command::new("cargo").args(["sqlx", "--version"]).output();
    if !sqlx_version.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(SQLX_CLI)) {
        run(Command::new("cargo").args(["install", "sqlx-cli", "--version", SQLX_CLI, "--locked"]).args([
            "--no-default-features",
            "--features",
            "postgres,rustls",
        ]))?;
    }
    // k6, the load generator of `load-tests/`: PyPI ships the real binary.
    let k6_runs = || Command::new("k6").arg("version").output().is_ok_and(|o| o.status.success());
    if !k6_runs() {
        run(Command::new("python3").args(["-m", "pip", "install", "--quiet", "k6==1.1.0"]))?;
        // Under pyenv, a new executable needs a shim before it is on PATH.
        if !k6_runs() {
            let _ = Command::new("pyenv").arg("rehash").status();
        }
        if !k6_runs() {
            bail!("k6 was installed with pip but is not on PATH; add Python's scripts folder to PATH");
        }
    }
    Ok(())
}

/// The versions `Cargo.lock` pins: wasm-bindgen's CLI must match the
/// library exactly.
const WASM_BINDGEN: &str = "0.2.130";
const WORKER_BUILD: &str = "0.8.7";
/// The `sqlx` of `Cargo.lock`, whose offline query data the CLI writes.
const SQLX_CLI: &str = "0.8.6";

/// What builds and runs the Cloudflare Workers: worker-build and
/// wasm-bindgen from crates.io (worker-build would download them from
/// GitHub), and wrangler, workerd, esbuild and wasm-opt from npm
/// (`cloudflare/package-lock.json`). The cargo installs take about 20
/// minutes on two cores, once per machine.
pub fn workers_toolchain() -> anyhow::Result<()> {
    rust_targets()?;
    let version_of = |program: &str| {
        Command::new(program)
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    if !version_of("wasm-bindgen").is_some_and(|v| v.contains(WASM_BINDGEN)) {
        // `--locked` would ask for a dependency version the registry no longer has.
        run(Command::new("cargo").args(["install", "wasm-bindgen-cli", "--version", WASM_BINDGEN]))?;
    }
    if !version_of("worker-build").is_some_and(|v| v.contains(WORKER_BUILD)) {
        run(Command::new("cargo").args(["install", "worker-build", "--version", WORKER_BUILD]))?;
    }
    let cloudflare = std::path::Path::new("cloudflare");
    if !cloudflare.join("node_modules/.bin/wrangler").exists() {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--prefix"]).arg(cloudflare))?;
    }
    Ok(())
}

fn rust_targets() -> anyhow::Result<()> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    let missing: Vec<&str> =
        WASM_TARGETS.iter().copied().filter(|t| !installed.lines().any(|l| l.trim() == *t)).collect();
    if !missing.is_empty() {
        run(Command::new("rustup").args(["target", "add"]).args(&missing))?;
    }
    Ok(())
}

fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    let sudo = !is_root();
    let apt = |args: &[&str]| {
        let mut command = if sudo { Command::new("sudo") } else { Command::new("apt-get") };
        if sudo {
            command.arg("apt-get");
        }
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        command
    };
    // A fresh machine may have no package lists yet.
    if run(apt(&["install", "-y", "--no-install-recommends"]).args(packages)).is_err() {
        run(&mut apt(&["update"]))?;
        run(apt(&["install", "-y", "--no-install-recommends"]).args(packages))?;
    }
    Ok(())
}

/// Where `initdb`, `pg_ctl` and `postgres` live (Debian keeps them off PATH).
pub fn postgres_bin_dir() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = output(Command::new("pg_config").arg("--bindir")) {
        let dir = PathBuf::from(dir.trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.sort();
    match versions.into_iter().rev().find(|bin| bin.join("initdb").exists()) {
        Some(dir) => Ok(dir),
        None => bail!(
            "PostgreSQL server binaries not found: install postgresql-15 (apt-get install postgresql-15)"
        ),
    }
}

pub fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

fn on_path(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn output(command: &mut Command) -> anyhow::Result<String> {
    let out = command.output().with_context(|| format!("cannot run {command:?}"))?;
    if !out.status.success() {
        bail!("{command:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// What a cold `cargo xtask test` adds on disk at its peak: the build and
/// the test clusters took 6.4 GiB on a fresh clone here.
const TEST_DISK_BYTES: u64 = 7 << 30;

/// Warns when the build's or the scratch folder's file system has less
/// room than a cold test run takes: a full disk fails tests with errors
/// far from their cause ("could not extend file" from Postgres, a test
/// database that cannot start).
pub fn warn_if_disk_is_short(paths: &[&Path]) {
    for path in paths {
        let Some(free) = free_bytes(path) else { continue };
        if free < TEST_DISK_BYTES {
            eprintln!(
                "warning: {:.1} GiB free on the file system of {}; a cold test run takes about {} GiB",
                free as f64 / f64::from(1 << 30),
                path.display(),
                TEST_DISK_BYTES >> 30
            );
        }
    }
}

fn free_bytes(path: &Path) -> Option<u64> {
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is NUL-terminated and `stats` is written by a successful call.
    if unsafe { libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) } != 0 {
        return None;
    }
    let stats = unsafe { stats.assume_init() };
    Some(stats.f_bavail * stats.f_frsize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_is_read_from_the_file_system_of_a_path() {
        let free = free_bytes(&std::env::temp_dir()).expect("the temporary folder's file system");
        let df =
            output(Command::new("df").args(["--output=avail", "-B1"]).arg(std::env::temp_dir())).unwrap();
        let df: u64 = df.lines().nth(1).unwrap().trim().parse().unwrap();
        // Other processes write meanwhile: within a megabyte of `df`.
        assert!(free.abs_diff(df) < 1 << 20, "{free} against df's {df}");
        assert_eq!(free_bytes(Path::new("/no/such/folder")), None);
    }
}
