//! An Upstash-REST-compatible gateway in front of `redis-server`.
//!
//! Edge components reach Redis over plain HTTPS with Upstash's REST
//! protocol, which works from any edge runtime. Locally, this gateway
//! speaks that protocol to a real Redis:
//!
//! - `POST /` with a JSON command array, `["SET", "k", "v"]` → `{"result": "OK"}`;
//! - `POST /pipeline` with an array of commands → an array of `{"result"}`/`{"error"}`;
//! - `POST /multi-exec`: the same, atomically (MULTI/EXEC);
//! - `GET|POST /<command>/<arg>/...`: the path form;
//! - `Authorization: Bearer <token>`; `Upstash-Encoding: base64` returns
//!   strings base64-encoded (except `OK`), as Upstash does.
//!
//! `GET /stats` counts the commands served by name, so tests can prove that
//! a hot path issues no writes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde_json::{Value, json};

#[derive(Clone)]
pub struct Gateway {
    redis: ConnectionManager,
    token: Arc<str>,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl Gateway {
    pub async fn connect(redis_url: &str, token: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(redis_url)?;
        let redis = ConnectionManager::new_with_config(client, redis_config()).await?;
        Ok(Self { redis, token: token.into(), counts: Arc::default() })
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/", post(single))
            .route("/pipeline", post(pipeline))
            .route("/multi-exec", post(multi_exec))
            .route("/stats", get(stats))
            .route("/{*command}", get(path_form).post(path_form))
            .with_state(self)
    }

    fn count(&self, command: &[Value]) {
        if let Some(name) = command.first().and_then(Value::as_str) {
            *self.counts.lock().expect("counts poisoned").entry(name.to_uppercase()).or_default() += 1;
        }
    }
}

/// Fails fast while Redis is away and finds it again soon after it is
/// back: by default the manager waits without limit for an answer and backs
/// off reconnects towards a minute, so a short outage stalled the edge for
/// minutes. A stopped Redis refuses connections at once; the response
/// timeout is for one that hangs, and is shorter than the edge's own (2 s)
/// so the edge hears "unavailable" rather than nothing.
fn redis_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_millis(500))
        .set_response_timeout(Duration::from_millis(1500))
        // Reconnect after 50, 100, 200, 400 ms, then every 500 ms.
        .set_factor(50)
        .set_exponent_base(2)
        .set_max_delay(500)
        .set_number_of_retries(3)
}

/// A refused request, answered as Upstash does: `{"error": "..."}`.
struct Rejection(StatusCode, String);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad_request(error: impl Into<String>) -> Rejection {
    Rejection(StatusCode::BAD_REQUEST, error.into())
}

/// Checks the bearer token and reads the encoding the client asked for.
fn authorize(gateway: &Gateway, headers: &HeaderMap) -> Result<bool, Rejection> {
    let token =
        headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if token != Some(&*gateway.token) {
        return Err(Rejection(StatusCode::UNAUTHORIZED, "Unauthorized".into()));
    }
    let base64 =
        headers.get("upstash-encoding").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"base64"));
    Ok(base64)
}

/// A JSON command array as a Redis command; strings and numbers only.
fn to_command(command: &[Value]) -> Result<redis::Cmd, String> {
    let (name, args) = command.split_first().ok_or("ERR empty command")?;
    let mut cmd = redis::cmd(name.as_str().ok_or("ERR command name must be a string")?);
    for arg in args {
        match arg {
            Value::String(s) => cmd.arg(s.as_str()),
            Value::Number(n) => cmd.arg(n.to_string()),
            Value::Bool(b) => cmd.arg(if *b { "1" } else { "0" }),
            _ => return Err("ERR arguments must be strings or numbers".into()),
        };
    }
    Ok(cmd)
}

/// Redis's answer as Upstash's JSON.
fn to_json(value: redis::Value, base64: bool) -> Value {
    let text = |bytes: Vec<u8>| {
        if base64 {
            Value::String(BASE64.encode(bytes))
        } else {
            Value::String(String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    match value {
        redis::Value::Nil => Value::Null,
        redis::Value::Int(n) => json!(n),
        redis::Value::BulkString(bytes) => text(bytes),
        redis::Value::SimpleString(s) if s == "OK" => json!("OK"),
        redis::Value::SimpleString(s) => text(s.into_bytes()),
        redis::Value::Okay => json!("OK"),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            Value::Array(items.into_iter().map(|v| to_json(v, base64)).collect())
        }
        redis::Value::Map(pairs) => Value::Array(
            pairs.into_iter().flat_map(|(k, v)| [to_json(k, base64), to_json(v, base64)]).collect(),
        ),
        redis::Value::Double(d) => text(d.to_string().into_bytes()),
        redis::Value::Boolean(b) => json!(i64::from(b)),
        redis::Value::VerbatimString { text: s, .. } => text(s.into_bytes()),
        redis::Value::BigNumber(n) => text(n.to_string().into_bytes()),
        other => Value::String(format!("{other:?}")),
    }
}

/// One command's `{"result"}` or `{"error"}`; unreachable Redis refuses
/// the whole request instead.
async fn run(gateway: &Gateway, command: &[Value], base64: bool) -> Result<Value, Rejection> {
    gateway.count(command);
    let cmd = match to_command(command) {
        Ok(cmd) => cmd,
        Err(e) => return Ok(json!({ "error": e })),
    };
    let mut redis = gateway.redis.clone();
    match cmd.query_async::<redis::Value>(&mut redis).await {
        Ok(value) => Ok(json!({ "result": to_json(value, base64) })),
        Err(e) => refuse_if_unreachable(e).map(|e| json!({ "error": redis_message(&e) })),
    }
}

/// A Redis that cannot be reached is the gateway's 503, not a command's
/// error: clients tell "try later" from "this command is wrong".
fn refuse_if_unreachable(error: redis::RedisError) -> Result<redis::RedisError, Rejection> {
    if error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
    {
        Err(Rejection(StatusCode::SERVICE_UNAVAILABLE, format!("Redis is unreachable: {error}")))
    } else {
        Ok(error)
    }
}

/// An error as Redis words it (`NOSCRIPT No matching script...`), which is
/// what Upstash returns and what clients match on.
fn redis_message(error: &redis::RedisError) -> String {
    match (error.code(), error.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => error.to_string(),
    }
}

fn parse_commands(body: &[u8]) -> Result<Vec<Vec<Value>>, Rejection> {
    serde_json::from_slice(body).map_err(|_| bad_request("ERR body must be an array of command arrays"))
}

async fn single(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let base64 = authorize(&gateway, &headers)?;
    let command: Vec<Value> =
        serde_json::from_slice(&body).map_err(|_| bad_request("ERR body must be a command array"))?;
    Ok(answer(run(&gateway, &command, base64).await?))
}

/// One answer: 200 with `result`, 400 with `error`.
fn answer(reply: Value) -> Response {
    let status = if reply.get("error").is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    (status, axum::Json(reply)).into_response()
}

async fn pipeline(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let base64 = authorize(&gateway, &headers)?;
    let mut replies = Vec::new();
    for command in &parse_commands(&body)? {
        replies.push(run(&gateway, command, base64).await?);
    }
    Ok(axum::Json(Value::Array(replies)).into_response())
}

async fn multi_exec(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let base64 = authorize(&gateway, &headers)?;
    let mut transaction = redis::pipe();
    transaction.atomic();
    for command in &parse_commands(&body)? {
        gateway.count(command);
        transaction.add_command(to_command(command).map_err(bad_request)?);
    }
    let mut redis = gateway.redis.clone();
    let values: Vec<redis::Value> = match transaction.query_async(&mut redis).await {
        Ok(values) => values,
        Err(e) => return Err(bad_request(redis_message(&refuse_if_unreachable(e)?))),
    };
    let replies: Vec<Value> = values.into_iter().map(|v| json!({ "result": to_json(v, base64) })).collect();
    Ok(axum::Json(replies).into_response())
}

/// `/get/key` and friends: each path segment is an argument.
async fn path_form(
    State(gateway): State<Gateway>,
    Path(command): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Rejection> {
    let base64 = authorize(&gateway, &headers)?;
    let command: Vec<Value> = command.split('/').filter(|s| !s.is_empty()).map(|s| json!(s)).collect();
    Ok(answer(run(&gateway, &command, base64).await?))
}

async fn stats(State(gateway): State<Gateway>) -> axum::Json<Value> {
    axum::Json(json!({ "commands": *gateway.counts.lock().expect("counts poisoned") }))
}
