//! `origin-inventory [serve]` runs the service; `origin-inventory seed-demo`
//! applies migrations, loads demo data once and prints `api_key=` and
//! `on_sale_event=` lines; `origin-inventory organizer create --name NAME`
//! provisions an organizer and prints its API key, once (only its hash is
//! stored); `origin-inventory check [--maildir DIR]` checks the sales
//! invariants (and, given the mail server's maildir, that no email arrived
//! twice) and exits non-zero on any violation. Configuration: see
//! `config.rs` and README.md.

use std::time::Duration;

use anyhow::bail;
use origin_inventory::app::{Application, connect};
use origin_inventory::config::Settings;
use origin_inventory::{auth, demo, invariants, payments, text};
use secrecy::ExposeSecret as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let settings = Settings::from_env()?;
    let db = connect(&settings).await?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => {
            let app = Application::build(&settings, db).await?;
            tracing::info!(addr = %app.address(), "origin listening");
            let workers = app.start_workers(&settings)?;
            app.run_until(shutdown_signal()).await?;
            // Requests are done; background work finishes its step and stops.
            workers.drain(Duration::from_secs(30)).await;
            tracing::info!("origin stopped");
        }
        Some("seed-demo") => {
            let key =
                std::env::var("STAMPEDE_DEMO_API_KEY").unwrap_or_else(|_| demo::DEFAULT_DEMO_KEY.into());
            let demo = demo::seed(&db, &key).await.map_err(|e| anyhow::anyhow!("seeding failed: {e:?}"))?;
            println!("api_key={}", demo.api_key);
            println!("on_sale_event={}", demo.on_sale_event);
        }
        Some("check") => {
            let ledger = payments::open_ledger(settings.provider.sandbox_ledger_url(), &db).await?;
            let mut report =
                invariants::check(&db, &ledger, settings.ticket_secret.expose_secret().as_bytes()).await?;
            match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
                ["check"] => {}
                ["check", "--maildir", maildir] => {
                    report.findings.push(invariants::duplicate_deliveries(std::path::Path::new(maildir))?);
                }
                _ => bail!("usage: origin-inventory check [--maildir DIR]"),
            }
            println!("{report}");
            if report.violations() > 0 {
                bail!("{} invariant violations", report.violations());
            }
        }
        Some("organizer") => {
            let name = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
                ["organizer", "create", "--name", name] => name.trim().to_owned(),
                _ => bail!("usage: origin-inventory organizer create --name NAME"),
            };
            if name.is_empty() || name.chars().count() > 200 || text::check("name", &name).is_err() {
                bail!("the organizer name must be 1 to 200 characters without control characters");
            }
            let key = auth::generate_api_key();
            let id = auth::create_organizer(&db, &name, &key).await?;
            println!("organizer_id={id}");
            println!("api_key={key}");
            eprintln!("keep the key now: only its hash is stored");
        }
        Some(other) => {
            bail!("unknown command `{other}`; use `serve`, `seed-demo`, `organizer create` or `check`")
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
