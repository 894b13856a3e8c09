//! The waiting room's shared state in Redis, and the event settings it
//! caches from the origin. Every multi-key step is one Lua script, so each
//! is atomic; all decisions about *how much* to admit are made in
//! `queue_core::admission`, and the scripts only apply them.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use queue_core::admission::{Frontier, Limits};
use queue_core::keys::{EventKeys, join_rate};
use queue_core::settings::RoomSettings;
use queue_core::shuffle::{Shuffle, parse_seed, seed_hex};
use serde_json::Value;

use edge_platform::Runtime;
use edge_platform::redis::{Redis, RedisError, Script, as_u64};

/// Issues ticket numbers. In the pre-queue it counts pre-queue tickets;
/// the first call after the sale start fixes the pre-queue's size and
/// draws the shuffle seed, exactly once; `freeze` does only that.
const TICKETS: Script = Script {
    source: r#"
local size = redis.call('GET', KEYS[3])
if not size and ARGV[1] == 'prequeue' then return {'pre', redis.call('INCR', KEYS[1])} end
if not size then
  size = redis.call('GET', KEYS[1]) or '0'
  redis.call('SET', KEYS[3], size)
  redis.call('SET', KEYS[4], ARGV[2])
end
if ARGV[1] == 'freeze' then return {'size', tonumber(size), redis.call('GET', KEYS[4])} end
return {'main', redis.call('INCR', KEYS[2])}
"#,
};

/// Replaces the frontier if nobody moved it meanwhile and the newly
/// admitted fit under the active limit; reserves an entry slot for each.
const ADVANCE: Script = Script {
    source: r#"
local current = redis.call('GET', KEYS[1])
local version = 0
if current then version = cjson.decode(current).version end
if version ~= tonumber(ARGV[1]) then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
local admitted = tonumber(ARGV[3])
if redis.call('ZCARD', KEYS[2]) + admitted > tonumber(ARGV[4]) then return -1 end
redis.call('SET', KEYS[1], ARGV[2])
local first = tonumber(ARGV[7])
for position = first, first + admitted - 1 do
  redis.call('ZADD', KEYS[2], ARGV[6], 'slot:' .. position)
end
return 1
"#,
};

/// Turns an admitted position's reserved slot into the visitor's session,
/// or takes a free slot if the reservation lapsed. An existing session is
/// returned as it is; a visitor whose visit ended (KEYS[2]) gets none.
const CLAIM: Script = Script {
    source: r#"
if redis.call('EXISTS', KEYS[2]) == 1 then return {'ended'} end
local member = 'v:' .. ARGV[1]
local current = redis.call('ZSCORE', KEYS[1], member)
if current and tonumber(current) > tonumber(ARGV[3]) then return {'session', current} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZREM', KEYS[1], 'slot:' .. ARGV[2]) == 0
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[5]) then
  return {'full'}
end
redis.call('ZADD', KEYS[1], ARGV[4], member)
return {'session', ARGV[4]}
"#,
};

/// Ends a visit in one step: frees the visitor's slot and marks the visitor
/// so their queue ticket is never admitted again.
const END_SESSION: Script = Script {
    source: r#"
redis.call('ZREM', KEYS[1], 'v:' .. ARGV[1])
redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
return 1
"#,
};

/// How long an ended visit is remembered: longer than a queue ticket's
/// cookie lives.
const ENDED_TTL_SECONDS: &str = "604800";

/// How long an admitted position's slot waits for its visitor.
pub const SLOT_MS: i64 = 60_000;
/// How long the origin's settings are cached in Redis.
const SETTINGS_TTL_SECONDS: &str = "2";
/// How old a view read from this instance's memory may be.
const VIEW_CACHE_MS: i64 = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Redis(#[from] RedisError),
    #[error("no such event")]
    EventNotFound,
    #[error("the origin cannot be reached: {0}")]
    Origin(String),
    #[error("unexpected stored data: {0}")]
    Corrupt(String),
    #[error("the waiting room's store is unavailable")]
    Unavailable,
}

impl StoreError {
    /// Redis is away (rather than refusing what we asked).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable => true,
            StoreError::Redis(e) => e.is_unavailable(),
            _ => false,
        }
    }
}

/// The pre-queue, fixed at the sale start.
#[derive(Debug, Clone)]
pub struct Prequeue {
    pub size: u64,
    pub shuffle: Shuffle,
}

/// Everything a status poll needs, read in one round trip.
#[derive(Debug, Clone)]
pub struct View {
    pub settings: RoomSettings,
    pub frontier: Frontier,
    pub prequeue: Option<Prequeue>,
    /// Read while Redis was unavailable: the settings came straight from
    /// the origin and nothing about the queue itself is known.
    pub degraded: bool,
}

impl View {
    /// This view, if the queue's own state is behind it: what joins,
    /// polls and admissions need.
    pub fn live(self) -> Result<Self, StoreError> {
        if self.degraded { Err(StoreError::Unavailable) } else { Ok(self) }
    }

    pub fn limits(&self) -> Limits {
        Limits {
            per_minute: self.settings.new_users_per_minute,
            max_active: self.settings.total_active_users,
            opens_ms: self.settings.admissions_open_ms(),
        }
    }
}

pub enum Ticket {
    Prequeue(u64),
    Queue(u64),
}

pub enum Claim {
    /// A session until this time (ms).
    Session(i64),
    /// Admitted, but every slot is taken right now.
    Full,
    /// This visitor's visit is over; they may queue again with a new ticket.
    Ended,
}

/// Per-instance memory of recent views: warm instances (and Worker
/// isolates) answer most polls without a Redis round trip.
fn view_cache() -> &'static Mutex<HashMap<String, (i64, View)>> {
    static CACHE: OnceLock<Mutex<HashMap<String, (i64, View)>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

pub struct Store<'a, R> {
    runtime: &'a R,
    redis: Redis<'a, R>,
    origin_url: &'a str,
}

impl<'a, R: Runtime> Store<'a, R> {
    pub fn new(runtime: &'a R, redis: Redis<'a, R>, origin_url: &'a str) -> Self {
        Self { runtime, redis, origin_url }
    }

    /// The event's settings, frontier and pre-queue: from memory if fresh,
    /// else one `MGET`; settings missing from Redis come from the origin.
    /// While Redis is unavailable the view is the origin's settings alone,
    /// marked [`View::degraded`].
    pub async fn view(&self, event: &str) -> Result<View, StoreError> {
        let now = self.runtime.now_ms();
        if let Some((at, view)) = view_cache().lock().expect("cache lock").get(event)
            && now - at < VIEW_CACHE_MS
        {
            return Ok(view.clone());
        }
        let keys = EventKeys::new(event);
        let read = self
            .redis
            .command(&[
                "MGET",
                &keys.settings(),
                &keys.frontier(),
                &keys.prequeue_size(),
                &keys.prequeue_seed(),
            ])
            .await;
        let reply = match read {
            Ok(reply) => reply,
            Err(e) if e.is_unavailable() => {
                self.runtime.log(&format!("edge-queue: Redis unavailable, degraded view: {e}"));
                let settings = self.fetch_settings(event).await?;
                let view = View { settings, frontier: Frontier::default(), prequeue: None, degraded: true };
                // Remembered only when Redis is known to be down: one slow
                // answer must not put every visitor here in the degraded mode.
                if !matches!(e, RedisError::TimedOut(_)) {
                    self.remember(event, &view);
                }
                return Ok(view);
            }
            Err(e) => return Err(e.into()),
        };
        let [settings, frontier, size, seed] = reply
            .as_array()
            .and_then(|values| <[Value; 4]>::try_from(values.clone()).ok())
            .ok_or_else(|| StoreError::Corrupt(reply.to_string()))?;
        let settings = match settings.as_str() {
            Some(json) => serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            None => self.settings_from_origin(event).await?,
        };
        let frontier = match frontier.as_str() {
            Some(json) => serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            None => Frontier::default(),
        };
        let prequeue = prequeue(as_u64(&size), seed.as_str())?;
        let view = View { settings, frontier, prequeue, degraded: false };
        self.remember(event, &view);
        Ok(view)
    }

    fn remember(&self, event: &str, view: &View) {
        let mut cache = view_cache().lock().expect("cache lock");
        if cache.len() > 1_000 {
            cache.clear();
        }
        cache.insert(event.to_owned(), (self.runtime.now_ms(), view.clone()));
    }

    /// The origin's settings, kept in Redis for a moment for every instance.
    async fn settings_from_origin(&self, event: &str) -> Result<RoomSettings, StoreError> {
        let settings = self.fetch_settings(event).await?;
        let json = serde_json::to_string(&settings).expect("settings serialize");
        self.redis
            .command(&["SET", &EventKeys::new(event).settings(), &json, "EX", SETTINGS_TTL_SECONDS])
            .await?;
        Ok(settings)
    }

    async fn fetch_settings(&self, event: &str) -> Result<RoomSettings, StoreError> {
        let url = format!("{}/api/v1/events/{event}/waiting-room", self.origin_url);
        let request = http::Request::get(url).body(Vec::new()).expect("a valid request");
        let response = self.runtime.send(request).await.map_err(|e| StoreError::Origin(e.to_string()))?;
        match response.status().as_u16() {
            200 => {}
            404 => return Err(StoreError::EventNotFound),
            status => return Err(StoreError::Origin(format!("waiting-room settings answered {status}"))),
        }
        serde_json::from_slice(response.body()).map_err(|e| StoreError::Origin(e.to_string()))
    }

    /// A new ticket: numbered within the pre-queue while it is open, else FIFO.
    pub async fn issue_ticket(&self, event: &str, in_prequeue: bool) -> Result<Ticket, StoreError> {
        let mode = if in_prequeue { "prequeue" } else { "queue" };
        let reply = self.tickets(event, mode).await?;
        let number = reply.get(1).and_then(as_u64).ok_or_else(|| StoreError::Corrupt(reply.to_string()))?;
        match reply[0].as_str() {
            Some("pre") => Ok(Ticket::Prequeue(number)),
            _ => Ok(Ticket::Queue(number)),
        }
    }

    /// Fixes the pre-queue (if nobody has yet) and returns it.
    pub async fn freeze_prequeue(&self, event: &str) -> Result<Prequeue, StoreError> {
        let reply = self.tickets(event, "freeze").await?;
        prequeue(reply.get(1).and_then(as_u64), reply.get(2).and_then(Value::as_str))?
            .ok_or_else(|| StoreError::Corrupt(reply.to_string()))
    }

    async fn tickets(&self, event: &str, mode: &str) -> Result<Value, StoreError> {
        let keys = EventKeys::new(event);
        let seed = seed_hex(&self.runtime.random());
        let reply = self
            .redis
            .eval(
                &TICKETS,
                &[keys.prequeue_counter(), keys.queue_counter(), keys.prequeue_size(), keys.prequeue_seed()],
                &[mode.to_owned(), seed],
            )
            .await?;
        Ok(reply)
    }

    /// Moves the frontier as far as the rules allow now. Returns the
    /// frontier as it stands afterwards (someone else's if they won a race).
    pub async fn advance(&self, event: &str, view: &View) -> Result<Frontier, StoreError> {
        let keys = EventKeys::new(event);
        let limits = view.limits();
        let prequeue_size = view.prequeue.as_ref().map_or(0, |p| p.size);
        let mut frontier = view.frontier.clone();
        for _ in 0..3 {
            let now = self.runtime.now_ms();
            let reads = self
                .redis
                .pipeline(&[
                    vec!["GET".into(), keys.queue_counter()],
                    vec!["ZCOUNT".into(), keys.active(), format!("({now}"), "+inf".into()],
                ])
                .await?;
            let mut reads = reads.into_iter();
            let issued = prequeue_size + count(&reads.next().expect("two replies")?);
            let active = count(&reads.next().expect("two replies")?);
            let step = frontier.step(&limits, now, issued, active);
            if step.newly_admitted == 0 {
                return Ok(frontier);
            }
            let applied = self
                .redis
                .eval(
                    &ADVANCE,
                    &[keys.frontier(), keys.active()],
                    &[
                        frontier.version.to_string(),
                        serde_json::to_string(&step.next).expect("frontier serializes"),
                        step.newly_admitted.to_string(),
                        limits.max_active.to_string(),
                        now.to_string(),
                        (now + SLOT_MS).to_string(),
                        (frontier.admitted + 1).to_string(),
                    ],
                )
                .await?;
            match applied.as_i64() {
                Some(1) => {
                    self.remember(event, &View { frontier: step.next.clone(), ..view.clone() });
                    return Ok(step.next);
                }
                // Full: sessions ended between our read and the write; try later.
                Some(-1) => return Ok(frontier),
                _ => frontier = self.frontier(event).await?,
            }
        }
        Ok(frontier)
    }

    async fn frontier(&self, event: &str) -> Result<Frontier, StoreError> {
        match self.redis.command(&["GET", &EventKeys::new(event).frontier()]).await? {
            Value::String(json) => {
                serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))
            }
            _ => Ok(Frontier::default()),
        }
    }

    /// Starts (or returns) the session of an admitted visitor.
    pub async fn claim(
        &self,
        event: &str,
        view: &View,
        visitor: &str,
        position: u64,
    ) -> Result<Claim, StoreError> {
        let now = self.runtime.now_ms();
        let expiry = now + i64::from(view.settings.session_duration_seconds) * 1000;
        let reply = self
            .redis
            .eval(
                &CLAIM,
                &[EventKeys::new(event).active(), EventKeys::new(event).ended(visitor)],
                &[
                    visitor.to_owned(),
                    position.to_string(),
                    now.to_string(),
                    expiry.to_string(),
                    view.settings.total_active_users.to_string(),
                ],
            )
            .await?;
        match (reply.get(0).and_then(Value::as_str), reply.get(1).and_then(as_u64)) {
            (Some("session"), Some(until)) => Ok(Claim::Session(until as i64)),
            (Some("full"), _) => Ok(Claim::Full),
            (Some("ended"), _) => Ok(Claim::Ended),
            _ => Err(StoreError::Corrupt(reply.to_string())),
        }
    }

    /// Ends a visit (order placed, hold released, left): frees its slot and
    /// keeps its ticket from being admitted again.
    pub async fn end_session(&self, event: &str, visitor: &str) -> Result<(), StoreError> {
        let keys = EventKeys::new(event);
        self.redis
            .eval(
                &END_SESSION,
                &[keys.active(), keys.ended(visitor)],
                &[visitor.to_owned(), ENDED_TTL_SECONDS.to_owned()],
            )
            .await?;
        Ok(())
    }

    /// Whether the visitor's checkout session is still running (not ended,
    /// not expired): an access token alone outlives a session that ended.
    pub async fn session_is_live(&self, event: &str, visitor: &str) -> Result<bool, StoreError> {
        let reply =
            self.redis.command(&["ZSCORE", &EventKeys::new(event).active(), &format!("v:{visitor}")]).await?;
        let until = reply.as_str().and_then(|s| s.parse::<f64>().ok()).or_else(|| reply.as_f64());
        Ok(until.is_some_and(|until| until > self.runtime.now_ms() as f64))
    }

    /// Counts a join from `client`; returns the count in this minute.
    pub async fn count_join(&self, client: &str) -> Result<u64, StoreError> {
        let key = join_rate(client, self.runtime.now_ms() / 60_000);
        let replies = self
            .redis
            .pipeline(&[vec!["INCR".into(), key.clone()], vec!["EXPIRE".into(), key, "120".into()]])
            .await?;
        Ok(count(&replies.into_iter().next().expect("two replies")?))
    }

    /// Marks a proof-of-work challenge spent; false if it already was.
    pub async fn spend_challenge(&self, event: &str, jti: &str) -> Result<bool, StoreError> {
        let key = EventKeys::new(event).spent_challenge(jti);
        Ok(!self.redis.command(&["SET", &key, "1", "NX", "EX", "600"]).await?.is_null())
    }

    pub async fn count_rejected(&self, event: &str, reason: &str) {
        if let Err(e) = self.redis.command(&["HINCRBY", &EventKeys::new(event).rejected(), reason, "1"]).await
        {
            self.runtime.log(&format!("cannot count a rejected token: {e}"));
        }
    }

    /// Figures for the organizer: tickets issued, sessions, refusals.
    pub async fn stats(&self, event: &str) -> Result<Stats, StoreError> {
        let keys = EventKeys::new(event);
        let now = self.runtime.now_ms();
        let active = keys.active();
        let replies = self
            .redis
            .pipeline(&[
                vec!["GET".into(), keys.queue_counter()],
                vec!["GET".into(), keys.prequeue_counter()],
                vec!["ZCOUNT".into(), active.clone(), format!("({now}"), "+inf".into()],
                vec!["ZRANGEBYSCORE".into(), active, format!("({now}"), "+inf".into()],
                vec!["HGETALL".into(), keys.rejected()],
            ])
            .await?;
        let mut replies = replies.into_iter().map(|r| r.map_err(StoreError::from));
        let mut next = || replies.next().expect("five replies");
        let queued = count(&next()?);
        let prequeued = count(&next()?);
        let reserved = count(&next()?);
        let members = next()?;
        let sessions = members.as_array().map_or(0, |m| {
            m.iter().filter(|v| v.as_str().is_some_and(|s| s.starts_with("v:"))).count() as u64
        });
        let rejected = next()?
            .as_array()
            .map(|flat| {
                flat.chunks(2)
                    .filter_map(|pair| Some((pair[0].as_str()?.to_owned(), as_u64(pair.get(1)?)?)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Stats {
            issued: queued + prequeued,
            sessions,
            reserved_slots: reserved - sessions.min(reserved),
            rejected,
        })
    }
}

pub struct Stats {
    pub issued: u64,
    pub sessions: u64,
    pub reserved_slots: u64,
    pub rejected: HashMap<String, u64>,
}

fn prequeue(size: Option<u64>, seed: Option<&str>) -> Result<Option<Prequeue>, StoreError> {
    match (size, seed) {
        (Some(size), Some(seed)) => {
            let seed = parse_seed(seed).ok_or_else(|| StoreError::Corrupt(format!("seed {seed}")))?;
            Ok(Some(Prequeue { size, shuffle: Shuffle::new(seed, size) }))
        }
        _ => Ok(None),
    }
}

/// A count that may be missing (`nil` counts as zero).
fn count(value: &Value) -> u64 {
    as_u64(value).unwrap_or(0)
}
