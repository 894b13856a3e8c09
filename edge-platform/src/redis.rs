//! A Redis client speaking the Upstash REST protocol: each command is a
//! JSON array POSTed with a bearer token, several at once to `/pipeline`.
//! Plain HTTPS, so it works from any edge runtime.

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
}

pub struct Redis<'a, R> {
    runtime: &'a R,
    url: &'a str,
    token: &'a str,
}

/// A Lua script, called by its SHA-1 and loaded on first use.
pub struct Script {
    pub source: &'static str,
}

impl Script {
    fn sha(&self) -> String {
        Sha1::digest(self.source.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
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
        let by_sha = call("EVALSHA", script.sha());
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
        let request = http::Request::post(format!("{}{path}", self.url))
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
            .expect("a valid request");
        let response = self.runtime.send(request).await?;
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
