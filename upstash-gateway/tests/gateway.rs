//! The gateway in front of the real Redis that `cargo xtask test` starts.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use upstash_gateway::Gateway;

const TOKEN: &str = "test-token";

/// A gateway on port 0; returns its base URL and a key prefix of its own.
async fn spawn_gateway() -> (String, String) {
    let redis = std::env::var("STAMPEDE_TEST_REDIS_URL")
        .expect("STAMPEDE_TEST_REDIS_URL is not set: run `cargo xtask test`");
    let gateway = Gateway::connect(&redis, TOKEN).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, gateway.router()).await });
    (base, format!("test:{}", uuid::Uuid::new_v4().simple()))
}

async fn post(base: &str, path: &str, body: Value, base64: bool) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(format!("{base}{path}")).bearer_auth(TOKEN).json(&body);
    if base64 {
        request = request.header("upstash-encoding", "base64");
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn single_commands_pipelines_and_transactions() {
    let (base, p) = spawn_gateway().await;
    assert_eq!(
        post(&base, "/", json!(["SET", format!("{p}:k"), "v", "EX", 60]), false).await,
        (200, json!({"result": "OK"}))
    );
    assert_eq!(
        post(&base, "/", json!(["GET", format!("{p}:k")]), false).await,
        (200, json!({"result": "v"}))
    );
    assert_eq!(
        post(&base, "/", json!(["GET", format!("{p}:k")]), true).await,
        (200, json!({"result": "dg=="}))
    );
    assert_eq!(
        post(&base, "/", json!(["GET", format!("{p}:none")]), false).await,
        (200, json!({"result": null}))
    );
    let (status, error) = post(&base, "/", json!(["INCR", format!("{p}:k")]), false).await;
    assert_eq!(status, 400);
    assert!(error["error"].as_str().unwrap().starts_with("ERR value is not an integer"), "{error}");
    // Errors read as Redis words them: clients fall back from EVALSHA on `NOSCRIPT`.
    let unknown = "0".repeat(40);
    let (status, error) = post(&base, "/", json!(["EVALSHA", unknown, 0]), false).await;
    assert_eq!(status, 400);
    assert!(error["error"].as_str().unwrap().starts_with("NOSCRIPT "), "{error}");

    let (status, replies) = post(
        &base,
        "/pipeline",
        json!([["INCR", format!("{p}:n")], ["INCR", format!("{p}:k")], ["INCR", format!("{p}:n")]]),
        false,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(replies[0], json!({"result": 1}));
    assert!(replies[1]["error"].is_string(), "errors stay per command");
    assert_eq!(replies[2], json!({"result": 2}));

    let (status, replies) = post(
        &base,
        "/multi-exec",
        json!([["SET", format!("{p}:t"), "a"], ["APPEND", format!("{p}:t"), "b"], ["GET", format!("{p}:t")]]),
        false,
    )
    .await;
    assert_eq!((status, replies), (200, json!([{"result": "OK"}, {"result": 2}, {"result": "ab"}])));

    let response =
        reqwest::Client::new().get(format!("{base}/get/{p}:t")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"result": "ab"}));
}

#[tokio::test]
async fn requests_need_the_token_and_well_formed_commands() {
    let (base, _) = spawn_gateway().await;
    let anonymous = reqwest::Client::new().post(&base).json(&json!(["PING"])).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(post(&base, "/", json!([]), false).await.0, 400);
    assert_eq!(post(&base, "/", json!(["SET", "k", {"nested": true}]), false).await.0, 400);
    assert_eq!(post(&base, "/pipeline", json!("PING"), false).await.0, 400);
}

#[tokio::test]
async fn commands_are_counted_by_name() {
    let (base, p) = spawn_gateway().await;
    for _ in 0..3 {
        post(&base, "/", json!(["get", format!("{p}:x")]), false).await;
    }
    post(&base, "/pipeline", json!([["SET", format!("{p}:x"), "1"]]), false).await;
    let stats: Value = reqwest::get(format!("{base}/stats")).await.unwrap().json().await.unwrap();
    assert_eq!(stats["commands"], json!({"GET": 3, "SET": 1}));
}

#[tokio::test]
async fn the_official_upstash_client_works_against_the_gateway() {
    let (base, p) = spawn_gateway().await;
    let compat = Path::new(env!("CARGO_MANIFEST_DIR")).join("compat");
    assert!(
        compat.join("node_modules/@upstash/redis").exists(),
        "run `cargo xtask test` (it runs npm ci in {})",
        compat.display()
    );
    let base_for_node = base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(compat.join("client.mjs"))
            .args([&base_for_node, TOKEN, &p])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && stdout.trim() == "ok", "{stdout}\n{stderr}");
}
