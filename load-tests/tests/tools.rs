//! The benchmark's own tools, run as the benchmark runs them: the load
//! generator against the baseline server, over loopback, for one second.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

#[test]
fn the_load_generator_measures_the_static_server() {
    let body = std::env::temp_dir().join(format!("stampede-tools-{}", std::process::id()));
    std::fs::write(&body, "<p>hello</p>").unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_static-server"))
        .args(["127.0.0.1:0", body.to_str().unwrap(), "text/html"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut first_line).unwrap();
    let address = first_line.trim().strip_prefix("listening on ").expect("the server prints its address");

    let run = Command::new(env!("CARGO_BIN_EXE_http-load"))
        .args([&format!("http://{address}/page"), "2", "1", "accept: text/html"])
        .output()
        .unwrap();
    server.kill().unwrap();
    let _ = server.wait();
    let _ = std::fs::remove_file(&body);

    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["rps"].as_f64().unwrap() > 10.0, "{report}");
    assert!(report["p50_ms"].as_f64().unwrap() <= report["p99_ms"].as_f64().unwrap(), "{report}");
}
