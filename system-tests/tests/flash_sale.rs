//! A short flash sale through the whole stack with k6 (a few hundred
//! visitors in a few seconds), then the sales invariants straight from
//! Postgres. The full scenarios and the benchmark run outside the tests.

mod support;

use std::path::Path;
use std::process::Command;

use origin_inventory::invariants;
use origin_inventory::test_support::TEST_TICKET_SECRET;
use support::{EdgeRuntime, Stack, queue};

#[tokio::test]
async fn a_short_flash_sale_sells_no_seat_twice() {
    let stack = Stack::start(EdgeRuntime::Host).await;
    let event = stack.event(queue(6_000, 1_000), chrono::Utc::now() - chrono::Duration::hours(1)).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let summary = tempfile_path("flash-sale-summary.json");
    let k6 = tokio::task::spawn_blocking({
        let (base, event, summary) = (stack.edge.url(""), event.to_string(), summary.clone());
        let script = root.join("load-tests/scenarios/flash-sale.js");
        move || {
            Command::new("k6")
                .args(["run", "--quiet", "--no-usage-report", "--summary-export"])
                .arg(&summary)
                .args(["-e", &format!("BASE_URL={base}"), "-e", &format!("EVENT_ID={event}")])
                .args(["-e", "PEAK_RATE=50", "-e", "RAMP=2", "-e", "HOLD=4", "-e", "MAX_WAIT=20"])
                // Latency targets belong to the benchmark, not to a loaded CI machine.
                .args(["-e", "P95_MS=10000"])
                .arg(script)
                .output()
                .expect("k6 is installed by `cargo xtask test`")
        }
    })
    .await
    .unwrap();
    let log = String::from_utf8_lossy(&k6.stdout).into_owned() + &String::from_utf8_lossy(&k6.stderr);
    assert!(k6.status.success(), "k6 thresholds failed:\n{log}");

    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let sold = summary["metrics"]["tickets_sold"]["count"].as_f64().unwrap_or(0.0);
    let iterations = summary["metrics"]["iterations"]["count"].as_f64().unwrap_or(0.0);
    assert!(iterations >= 150.0, "a few hundred visitors arrive: {iterations}\n{log}");
    assert!(sold > 0.0, "something was sold\n{log}");

    let report = invariants::check(&stack.origin.db, TEST_TICKET_SECRET).await.unwrap();
    println!("{report}");
    assert_eq!(report.violations(), 0, "{report}");
    assert_eq!(report.tickets as f64, sold, "every ticket k6 saw is in Postgres, and no other");
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
