//! `origin-inventory [serve]` runs the service; `origin-inventory seed-demo`
//! applies migrations, loads demo data once and prints `api_key=` and
//! `on_sale_event=` lines; `origin-inventory check` checks the sales
//! invariants and exits non-zero on any violation. Configuration: see
//! `config.rs` and README.md.

use anyhow::bail;
use origin_inventory::app::{Application, connect};
use origin_inventory::config::Settings;
use origin_inventory::{demo, invariants};

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
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {
            let app = Application::build(&settings, db).await?;
            tracing::info!(addr = %app.address(), "origin listening");
            app.start_workers(&settings)?;
            app.run_until(shutdown_signal()).await?;
        }
        Some("seed-demo") => {
            let key =
                std::env::var("STAMPEDE_DEMO_API_KEY").unwrap_or_else(|_| demo::DEFAULT_DEMO_KEY.into());
            let demo = demo::seed(&db, &key).await.map_err(|e| anyhow::anyhow!("seeding failed: {e:?}"))?;
            println!("api_key={}", demo.api_key);
            println!("on_sale_event={}", demo.on_sale_event);
        }
        Some("check") => {
            let report = invariants::check(&db, settings.ticket_secret.as_bytes()).await?;
            println!("{report}");
            if report.violations() > 0 {
                bail!("{} invariant violations", report.violations());
            }
        }
        Some(other) => bail!("unknown command `{other}`; use `serve`, `seed-demo` or `check`"),
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
