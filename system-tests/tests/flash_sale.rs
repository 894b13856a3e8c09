//! A short flash sale through the whole stack with k6 (a few hundred
//! visitors in a few seconds), then the sales invariants straight from
//! Postgres; the other scenarios briefly. Latency thresholds are off here
//! (the benchmark measures speed); every correctness threshold is on.

mod support;

use std::path::Path;
use std::process::Command;

use origin_inventory::invariants;
use origin_inventory::test_support::TEST_TICKET_SECRET;
use support::{EdgeRuntime, Stack, queue};

/// Runs a scenario against `base` with `env`; its summary, or the log if
/// any threshold failed.
async fn k6(scenario: &str, base: &str, event: &str, env: &[&str]) -> serde_json::Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let script = root.join("load-tests/scenarios").join(scenario);
    let summary = tempfile_path("summary.json");
    let mut command = Command::new("k6");
    command
        .args(["run", "--quiet", "--no-usage-report", "--summary-export"])
        .arg(&summary)
        .args(["-e", &format!("BASE_URL={base}"), "-e", &format!("EVENT_ID={event}")])
        // Latency targets belong to the benchmark, not to a loaded CI
        // machine; every correctness threshold stays on.
        .args(["-e", "LATENCY=off"])
        // Every virtual user from its own loopback address: the edge's
        // per-address join limit sees a crowd, as in production.
        .args(["--local-ips", "127.1.0.0/16"]);
    for setting in env {
        command.args(["-e", setting]);
    }
    let k6 = tokio::task::spawn_blocking(move || {
        command.arg(script).output().expect("k6 is installed by `cargo xtask test`")
    })
    .await
    .unwrap();
    let log = String::from_utf8_lossy(&k6.stdout).into_owned() + &String::from_utf8_lossy(&k6.stderr);
    assert!(k6.status.success(), "{scenario}: k6 thresholds failed:\n{log}");
    serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap()
}

fn count(summary: &serde_json::Value, metric: &str) -> f64 {
    summary["metrics"][metric]["count"].as_f64().unwrap_or(0.0)
}

#[tokio::test]
async fn a_short_flash_sale_sells_no_seat_twice() {
    // The join limit as shipped (30 a minute per address): the crowd is real.
    let stack = Stack::start_with(EdgeRuntime::Host, 0, &[("QUEUE_JOINS_PER_MINUTE_PER_IP", "30")]).await;
    let event = stack.event(queue(6_000, 1_000), chrono::Utc::now() - chrono::Duration::hours(1)).await;
    let settings = ["PEAK_RATE=50", "RAMP=2", "HOLD=4", "MAX_WAIT=20"];
    let summary = k6("flash-sale.js", &stack.edge.url(""), &event.to_string(), &settings).await;
    let sold = count(&summary, "tickets_sold");
    assert!(count(&summary, "iterations") >= 150.0, "a few hundred visitors arrive: {summary}");
    assert!(sold > 0.0, "something was sold: {summary}");
    assert_eq!(count(&summary, "gate_refusals"), 0.0);

    let report = invariants::check(&stack.origin.db, &stack.origin.ledger, TEST_TICKET_SECRET).await.unwrap();
    println!("{report}");
    assert_eq!(report.violations(), 0, "{report}");
    assert_eq!(report.tickets as f64, sold, "every ticket k6 saw is in Postgres, and no other");
}

/// The other scenarios, briefly: they run, and their thresholds hold.
#[tokio::test]
async fn the_browse_and_soak_scenarios_run_green() {
    let stack = Stack::start(EdgeRuntime::Host).await;
    let event = stack.event(queue(6_000, 1_000), chrono::Utc::now() - chrono::Duration::hours(1)).await;
    let base = stack.edge.url("");
    let browse = k6("browse.js", &base, &event.to_string(), &["PEAK_RATE=40", "RAMP=1", "HOLD=3"]).await;
    assert!(count(&browse, "iterations") >= 50.0, "{browse}");
    let soak = k6("checkout-soak.js", &base, &event.to_string(), &["RATE=5", "DURATION=4"]).await;
    assert!(count(&soak, "iterations") >= 15.0, "{soak}");
    assert_eq!(count(&soak, "gate_refusals"), 0.0);
    assert!(count(&soak, "tickets_sold") > 0.0, "{soak}");
    let report = invariants::check(&stack.origin.db, &stack.origin.ledger, TEST_TICKET_SECRET).await.unwrap();
    assert_eq!(report.violations(), 0, "{report}");
}

fn tempfile_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{}-{name}", uuid::Uuid::new_v4()))
}

#[test]
fn every_scenario_is_valid_k6() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("load-tests/scenarios");
    let mut scenarios = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() == "lib.js" {
            continue;
        }
        let inspected = Command::new("k6").args(["inspect", "-e", "EVENT_ID=x"]).arg(&path).output().unwrap();
        assert!(
            inspected.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&inspected.stderr)
        );
        let options: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
        assert!(options["scenarios"].as_object().is_some_and(|s| !s.is_empty()), "{}", path.display());
        scenarios += 1;
    }
    assert_eq!(scenarios, 3, "browse, flash-sale, checkout-soak");
}
