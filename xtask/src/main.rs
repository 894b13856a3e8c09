//! Stampede's developer commands, run as `cargo xtask <command>`:
//!
//! - `up`: build everything, start Postgres, Redis, the origin and the edge
//!   host with demo data, print the URLs, stop cleanly on Ctrl-C;
//! - `test`: the same set-up on private ports, then formatting, clippy and
//!   every test. Exits non-zero on any failure;
//! - `bench`: the same set-up again, then the benchmark report
//!   (`load-tests/reports/latest.md`); `bench origin` measures the origin
//!   alone (`latest-origin.md`), `bench edge` the edge alone (`latest-edge.md`);
//! - `worker`: build the Cloudflare Worker (`wrangler.toml`'s `[build]`);
//! - `keys`: draw a waiting-room signing key and print it with the JWKS the
//!   origin needs; `keys --rotate CURRENT` prints the three rotation steps.
//!
//! They install what a fresh Debian machine lacks (rustup targets,
//! `redis-server`) before anything else.

mod bench;
mod build;
mod keys;
mod services;
mod setup;

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use anyhow::{Context as _, bail};

use services::{
    Edge, EdgeKeys, Origin, OriginDatabases, OriginPeers, Postgres, Redis, Smtp, UpstashGateway, env_port,
};

fn main() -> anyhow::Result<()> {
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    let command = std::env::args().nth(1).unwrap_or_default();
    match command.as_str() {
        "up" => up(&root),
        "test" => {
            services::stop_everything_on_interrupt()?;
            test(&root)
        }
        "bench" => {
            services::stop_everything_on_interrupt()?;
            let scope = bench::Scope::parse(std::env::args().nth(2).as_deref())?;
            setup::install_prerequisites()?;
            if scope != bench::Scope::Origin {
                build::components()?;
                build::worker(&root)?;
                build::native()?;
            } else {
                build::components()?;
                build::origin_binaries()?;
            }
            bench::bench(&root, scope)
        }
        "worker" => {
            setup::workers_toolchain()?;
            build::worker(&root)
        }
        "keys" => keys::print(&std::env::args().skip(2).collect::<Vec<_>>()),
        _ => bail!("usage: cargo xtask <up|test|bench [origin|edge]|worker|keys [--rotate CURRENT_KEYS]>"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_owned()
}

fn up(root: &Path) -> anyhow::Result<()> {
    setup::install_prerequisites()?;
    build::components()?;
    build::native()?;

    let state = root.join(".stampede");
    let logs = state.join("logs");
    std::fs::create_dir_all(&logs)?;
    let postgres = Postgres::start(&state.join("postgres"), env_port("STAMPEDE_PG_PORT", 55432)?, true)?;
    let databases = OriginDatabases::create(&postgres)?;
    let redis = Redis::start(&state.join("redis"), env_port("STAMPEDE_REDIS_PORT", 56379)?, true)?;

    let smtp = Smtp::start(root, &state.join("smtp"), env_port("STAMPEDE_SMTP_PORT", 2525)?)?;
    let upstash_token =
        std::env::var("STAMPEDE_UPSTASH_TOKEN").unwrap_or_else(|_| services::LOCAL_UPSTASH_TOKEN.to_owned());
    let upstash =
        UpstashGateway::start(root, &redis, env_port("STAMPEDE_UPSTASH_PORT", 8079)?, &upstash_token, &logs)?;

    let demo = services::seed_demo(root, &databases.sales)?;
    let keys = EdgeKeys::load_or_create(&state.join("edge-signing-keys"))?;
    let edge_port = env_port("STAMPEDE_EDGE_PORT", 3000)?;
    let peers = OriginPeers {
        smtp: &smtp,
        keys: &keys,
        upstash: &upstash,
        public_url: Some(format!("http://127.0.0.1:{edge_port}")),
    };
    let mut origin =
        Origin::start(root, &databases, &peers, env_port("STAMPEDE_ORIGIN_PORT", 8080)?, &[], &logs)?;
    let mut edge = Edge::start(root, edge_port, &origin.url(), &upstash, &keys, &[], &logs)?;

    println!();
    println!("Stampede is up.");
    println!("  catalog (edge):      {}/", edge.url());
    println!("  on-sale demo event:  {}/events/{}", edge.url(), demo.on_sale_event);
    println!("  its waiting room:    {}/events/{}/checkout", edge.url(), demo.on_sale_event);
    println!(
        "  queue stats:         curl -H 'Authorization: Bearer {}' {}/api/v1/events/{}/queue/stats",
        demo.api_key,
        edge.url(),
        demo.on_sale_event
    );
    println!("  organizer dashboard: {}/organizer (sign in with the demo organizer key)", edge.url());
    println!("  origin API:          {}/api/v1/events", origin.url());
    println!("  Postgres:            {}", databases.sales);
    println!("  sandbox payments:    {} (the test card provider's ledger)", databases.ledger);
    println!("  Redis:               {}", redis.url());
    println!("  Redis (Upstash REST): {} (token {upstash_token})", upstash.url());
    println!("  emails (maildir):    {}", smtp.maildir().join("new").display());
    println!("  demo organizer key:  {}", demo.api_key);
    println!("  logs:                {}", logs.display());
    println!("Ctrl-C stops everything; data stays in .stampede/.");

    let (stop, stopped) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })
    .context("cannot install the Ctrl-C handler")?;
    services::wait_for_exit_or(&mut [&mut edge.process, &mut origin.process], stopped)?;
    println!("stopping…");
    Ok(())
}

fn test(root: &Path) -> anyhow::Result<()> {
    setup::warn_if_disk_is_short(&[root, &std::env::temp_dir()]);
    setup::install_prerequisites()?;
    build::check_formatting()?;
    build::components()?;
    build::native()?;
    build::clippy()?;

    // Outside the checkout: the `postgres` user must reach the cluster's folder.
    let scratch = std::env::temp_dir().join(format!("stampede-test-{}", std::process::id()));
    let postgres = Postgres::start(&scratch.join("postgres"), services::free_port()?, false)?;
    let redis = Redis::start(&scratch.join("redis"), services::free_port()?, false)?;
    let smtp = Smtp::start(root, &scratch.join("smtp"), services::free_port()?)?;
    let env = [
        ("STAMPEDE_TEST_SMTP_URL", smtp.url()),
        ("STAMPEDE_TEST_MAILDIR", smtp.maildir().display().to_string()),
        ("STAMPEDE_TEST_DATABASE_URL", postgres.url("postgres")),
        ("STAMPEDE_TEST_REDIS_URL", redis.url()),
        ("STAMPEDE_BIN_DIR", build::binary_dir(root).display().to_string()),
        ("STAMPEDE_WASM_DIR", build::component_dir(root).display().to_string()),
        // Fault tests run Postgres clusters of their own, stopped and started.
        ("STAMPEDE_PG_BIN_DIR", setup::postgres_bin_dir()?.display().to_string()),
    ];
    // The dry run builds the Worker through wrangler.toml's `[build]`, as a
    // real deploy would; the workerd tests then run that build.
    let result = build::worker_deploy_dry_run(root, &scratch.join("worker"))
        .and_then(|()| build::tests(&env))
        .and_then(|()| postgres.create_database("checked_sql"))
        .and_then(|()| build::checked_sql(&postgres.url("checked_sql")));
    drop((smtp, redis, postgres));
    let _ = std::fs::remove_dir_all(&scratch);
    result?;
    println!("all checks passed");
    Ok(())
}
