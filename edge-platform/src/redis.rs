//! A Redis client speaking the Upstash REST protocol: each command is a
//! JSON array POSTed with a bearer token, several at once to `/pipeline`.
//! Plain HTTPS, so it works from any edge runtime.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::Value;
use sha1::{Digest, Sha1};

use crate::{Runtime, SendError};

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error(transparent)]
    Unreachable(#[from] SendError),
    #[error("the Redis REST endpoint answered {status}: {body}")]
    Http { status: u16, body: String },
    #[error("Redis: {0}")]
    Command(String),
    #[error("unexpected Redis reply: {0}")]
    Reply(String),
    #[error("Redis did not answer within {0} ms")]
    TimedOut(u64),
}

impl RedisError {
    /// Redis is away (not answering, or its endpoint says so), as opposed
    /// to refusing a command: callers fall back to what works without it.
    pub fn is_unavailable(&self) -> bool {
        match self {
            RedisError::Unreachable(_) | RedisError::TimedOut(_) => true,
            RedisError::Http { status, .. } => *status >= 500,
            RedisError::Command(_) | RedisError::Reply(_) => false,
        }
    }
}

/// How long one call may take: the last resort against an endpoint that
/// hangs. A Redis that is down is reported faster than this: the REST
/// endpoint answers 5xx (our gateway at once, or after 1.5 s if Redis hangs). A busy edge or
/// endpoint can be slow without being down, so this is not tight.
pub const TIMEOUT_MS: u64 = 2_000;

/// After the endpoint reported Redis unavailable (or could not be
/// reached), calls fail at once for this long instead of each finding out
/// again (per instance or isolate). A timeout does not trip it: slow is
/// not down, and failing everyone for a second would turn a latency spike
/// into an outage.
pub const BREAK_MS: i64 = 1_000;

/// Until when (ms since the epoch) calls are not tried.
static BROKEN_UNTIL_MS: AtomicI64 = AtomicI64::new(0);

pub struct Redis<'a, R> {
    runtime: &'a R,
    url: &'a str,
    token: &'a str,
}

/// A Lua script, called by its SHA-1 and loaded on first use.
pub struct Script {
    source: &'static str,
    /// Worked out once per instance (or isolate) that reuses the script:
    /// hashing a few kilobytes of Lua at every call was 1% of the edge
    /// host's CPU in `cargo xtask bench`'s orders through the edge.
    sha: OnceLock<String>,
}

impl Script {
    pub const fn new(source: &'static str) -> Self {
        Self { source, sha: OnceLock::new() }
    }

    fn sha(&self) -> &str {
        self.sha
            .get_or_init(|| Sha1::digest(self.source.as_bytes()).iter().map(|b| format!("{b:02x}")).collect())
    }
}

impl<'a, R: Runtime> Redis<'a, R> {
    pub fn new(runtime: &'a R, url: &'a str, token: &'a str) -> Self {
        Self { runtime, url, token }
    }

    /// One command; the reply's `result`.
    pub async fn command(&self, args: &[&str]) -> Result<Value, RedisError> {
        let reply = self.post("", serde_json::json!(args)).await?;
        result(reply)
    }

    /// Several commands in one round trip (not atomic); one result each.
    pub async fn pipeline(
        &self,
        commands: &[Vec<String>],
    ) -> Result<Vec<Result<Value, RedisError>>, RedisError> {
        match self.post("/pipeline", serde_json::json!(commands)).await? {
            Value::Array(replies) if replies.len() == commands.len() => {
                Ok(replies.into_iter().map(result).collect())
            }
            other => Err(RedisError::Reply(other.to_string())),
        }
    }

    /// Runs a script atomically: `EVALSHA`, falling back to `EVAL` when
    /// this Redis has not seen it yet.
    pub async fn eval(&self, script: &Script, keys: &[String], args: &[String]) -> Result<Value, RedisError> {
        let call = |verb: &str, body: String| {
            let mut command = vec![verb.to_owned(), body, keys.len().to_string()];
            command.extend(keys.iter().cloned());
            command.extend(args.iter().cloned());
            command
        };
        let by_sha = call("EVALSHA", script.sha().to_owned());
        let by_sha: Vec<&str> = by_sha.iter().map(String::as_str).collect();
        match self.command(&by_sha).await {
            Err(RedisError::Command(message)) if message.starts_with("NOSCRIPT") => {
                let full = call("EVAL", script.source.to_owned());
                self.command(&full.iter().map(String::as_str).collect::<Vec<_>>()).await
            }
            other => other,
        }
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, RedisError> {
        if self.runtime.now_ms() < BROKEN_UNTIL_MS.load(Ordering::Relaxed) {
            return Err(RedisError::Unreachable(SendError(
                "Redis failed moments ago; not retried yet".into(),
            )));
        }
        let answer = self.send(path, body).await;
        if answer.as_ref().is_err_and(|e| e.is_unavailable() && !matches!(e, RedisError::TimedOut(_))) {
            BROKEN_UNTIL_MS.store(self.runtime.now_ms() + BREAK_MS, Ordering::Relaxed);
        }
        answer
    }

    async fn send(&self, path: &str, body: Value) -> Result<Value, RedisError> {
        let request = http::Request::post(format!("{}{path}", self.url))
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
            .expect("a valid request");
        let response = crate::within(self.runtime, TIMEOUT_MS, self.runtime.send(request))
            .await
            .ok_or(RedisError::TimedOut(TIMEOUT_MS))??;
        let status = response.status().as_u16();
        let text = String::from_utf8_lossy(response.body()).into_owned();
        let json: Value =
            serde_json::from_str(&text).map_err(|_| RedisError::Http { status, body: text.clone() })?;
        if status >= 500 || status == 401 || status == 403 {
            return Err(RedisError::Http { status, body: text });
        }
        Ok(json)
    }
}

fn result(reply: Value) -> Result<Value, RedisError> {
    match reply {
        Value::Object(mut fields) => {
            if let Some(error) = fields.remove("error") {
                return Err(RedisError::Command(
                    error.as_str().map_or_else(|| error.to_string(), str::to_owned),
                ));
            }
            fields.remove("result").ok_or_else(|| RedisError::Reply("no result".into()))
        }
        other => Err(RedisError::Reply(other.to_string())),
    }
}

/// An integer reply, whether Redis sent a number or a numeric string.
pub fn as_u64(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| value.as_str()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_is_named_by_the_sha1_redis_gives_it_worked_out_once() {
        // `SCRIPT LOAD "return 1"` answers e0e1f9fa…
        let script = Script::new("return 1");
        assert_eq!(script.sha(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
        assert!(std::ptr::eq(script.sha(), script.sha()), "the digest is kept, not made again");
    }
}
