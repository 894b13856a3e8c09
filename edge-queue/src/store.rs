//! The waiting room's shared state in Redis, and the event settings it
//! caches from the origin. Every multi-key step is one Lua script, so each
//! is atomic; all decisions about *how much* to admit are made in
//! `queue_core::admission`, and the scripts only apply them.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use queue_core::admission::{Frontier, Limits, Proposal};
use queue_core::keys::EventKeys;
use queue_core::scripts;
use queue_core::settings::{RoomSettings, SaleClock as _};
use queue_core::shuffle::{Shuffle, parse_seed, seed_hex};
use serde_json::Value;

use edge_platform::Runtime;
use edge_platform::redis::{Redis, RedisError, Script, as_u64};

static JOIN: Script = Script::new(scripts::JOIN);
static ADMIT: Script = Script::new(scripts::ADMIT);
static JOIN_AND_ADMIT: Script = Script::new(scripts::JOIN_AND_ADMIT);
static END: Script = Script::new(scripts::END);

/// How long a finished visit is remembered: longer than a queue ticket's
/// cookie lives.
const ENDED_MEMORY_MS: i64 = 7 * 24 * 3600 * 1000;
/// How long a join counter lives: its minute and the next.
const JOIN_COUNTER_SECONDS: &str = "120";

/// How long an admitted position's slot waits for its visitor.
pub const SLOT_MS: i64 = 60_000;
/// How old a view read from this instance's memory may be. Staleness costs
/// nothing in fairness: whoever may have been reached meanwhile asks the
/// `ADMIT` script, which reads the real frontier.
const VIEW_CACHE_MS: i64 = 10_000;
/// How long a view read while Redis was down stands in for asking again.
const DEGRADED_CACHE_MS: i64 = 1_000;
/// While the active cap holds admissions back, how often one instance asks
/// again whether a session ended.
const CAPPED_RECHECK_MS: i64 = 1_000;

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
    /// When `frontier` was read (ms).
    pub read_ms: i64,
    /// When this instance last asked Redis to admit someone (ms; 0: not
    /// since it read the view).
    pub asked_ms: i64,
    pub prequeue: Option<Prequeue>,
    /// Pre-queue tickets issued so far (its size once fixed).
    pub prequeue_joined: u64,
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
            session_seconds: self.settings.session_duration_seconds,
        }
    }

    /// Whether asking Redis can change what the visitor at `position` is
    /// told now: they may have been admitted since this view was read,
    /// unless the active cap held the room back a moment ago.
    pub fn worth_asking(&self, now_ms: i64, position: u64) -> bool {
        let limits = self.limits();
        if position <= self.frontier.admitted {
            return true;
        }
        let capped_recently = self.frontier.capped && now_ms - self.asked_ms < CAPPED_RECHECK_MS;
        !capped_recently && self.frontier.may_have_reached(&limits, self.read_ms, now_ms, position)
    }
}

pub enum Ticket {
    Prequeue(u64),
    Queue(u64),
    /// A queue ticket taken while selling, with the pre-queue it comes
    /// after and where its first admission attempt left the visitor
    /// ([`Store::join_and_admit`]).
    Admitting {
        n: u64,
        prequeue: Prequeue,
        admission: Admission,
    },
    /// This address joined too often this minute.
    Limited,
}

/// What an admission attempt answered.
pub struct Admission {
    pub entry: Entry,
    /// The frontier as it now stands.
    pub frontier: Frontier,
    /// The proposal was not applied: someone else's move came after it was
    /// made, or spent all its credit.
    pub raced: bool,
}

/// Where an admission attempt left the visitor.
pub enum Entry {
    /// A session until this time (ms).
    Session(i64),
    /// Not admitted yet.
    Waiting,
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
    /// else one `MGET`. Settings are published to Redis by the origin; if
    /// they are missing (an origin without the edge's Redis, say) they come
    /// from the origin, and nothing is written. While Redis is unavailable
    /// the view is the origin's settings alone, marked [`View::degraded`].
    pub async fn view(&self, event: &str) -> Result<View, StoreError> {
        let now = self.runtime.now_ms();
        if let Some((at, view)) = view_cache().lock().expect("cache lock").get(event)
            && now - at < if view.degraded { DEGRADED_CACHE_MS } else { VIEW_CACHE_MS }
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
                &keys.prequeue_counter(),
            ])
            .await;
        let reply = match read {
            Ok(reply) => reply,
            Err(e) if e.is_unavailable() => {
                self.runtime.log(&format!("edge-queue: Redis unavailable, degraded view: {e}"));
                let settings = self.fetch_settings(event).await?;
                let view = View {
                    settings,
                    frontier: Frontier::default(),
                    read_ms: now,
                    asked_ms: 0,
                    prequeue: None,
                    prequeue_joined: 0,
                    degraded: true,
                };
                // Remembered only when Redis is known to be down: one slow
                // answer must not put every visitor here in the degraded mode.
                if !matches!(e, RedisError::TimedOut(_)) {
                    self.remember(event, &view);
                }
                return Ok(view);
            }
            Err(e) => return Err(e.into()),
        };
        let [settings, frontier, size, seed, joined] = reply
            .as_array()
            .and_then(|values| <[Value; 5]>::try_from(values.clone()).ok())
            .ok_or_else(|| StoreError::Corrupt(reply.to_string()))?;
        let settings = match settings.as_str() {
            Some(json) => serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            None => self.fetch_settings(event).await?,
        };
        let view = View {
            settings,
            frontier: parse_frontier(frontier.as_str())?,
            read_ms: now,
            asked_ms: 0,
            prequeue: prequeue(as_u64(&size), seed.as_str())?,
            prequeue_joined: count(&joined),
            degraded: false,
        };
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

    /// Changes this instance's view of `event` in place. It still expires
    /// when the view read from Redis does: what a script answered refreshes
    /// the frontier, never the settings read with it.
    fn amend(&self, event: &str, change: impl FnOnce(&mut View)) {
        if let Some((_, view)) = view_cache().lock().expect("cache lock").get_mut(event) {
            change(view);
        }
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

    /// A new ticket: numbered within the pre-queue while it is open, else
    /// FIFO; none if `client` joined more than `per_minute` times this minute.
    pub async fn issue_ticket(
        &self,
        event: &str,
        in_prequeue: bool,
        client: Option<&str>,
        per_minute: u64,
    ) -> Result<Ticket, StoreError> {
        let mode = if in_prequeue { "prequeue" } else { "queue" };
        let (counter, limit) = self.join_counter(event, client, per_minute);
        let reply = self.join(event, mode, counter, limit).await?;
        let number = || reply.get(1).and_then(as_u64).ok_or_else(|| StoreError::Corrupt(reply.to_string()));
        match reply[0].as_str() {
            Some("limited") => Ok(Ticket::Limited),
            Some("pre") => Ok(Ticket::Prequeue(number()?)),
            _ => Ok(Ticket::Queue(number()?)),
        }
    }

    /// A queue ticket for `visitor` while the sale is selling, and its
    /// admission in the same command: one write for a visitor let in on
    /// arrival. A new ticket is always beyond the frontier, so the move is
    /// proposed at once.
    pub async fn join_and_admit(
        &self,
        event: &str,
        view: &View,
        client: Option<&str>,
        per_minute: u64,
        visitor: &str,
    ) -> Result<Ticket, StoreError> {
        let (counter, limit) = self.join_counter(event, client, per_minute);
        let (mut keys, mut args) = self.join_keys_and_args(event, "queue", counter, limit);
        let event_keys = EventKeys::new(event);
        keys.extend([event_keys.frontier(), event_keys.active(), event_keys.settings()]);
        let now = self.runtime.now_ms();
        let proposal = view.frontier.propose(&view.limits(), now);
        // The script puts the new ticket's position in place of this 0.
        args.extend(admit_args(view, Some(&proposal), now, 0, visitor));
        let reply = self.redis.eval(&JOIN_AND_ADMIT, &keys, &args).await?;
        let corrupt = || StoreError::Corrupt(reply.to_string());
        let replies = reply.as_array().ok_or_else(corrupt)?;
        match replies.first().and_then(Value::as_str) {
            Some("limited") => return Ok(Ticket::Limited),
            Some("main") => {}
            _ => return Err(corrupt()),
        }
        let n = replies.get(1).and_then(as_u64).ok_or_else(corrupt)?;
        let frozen = prequeue(replies.get(2).and_then(as_u64), replies.get(3).and_then(Value::as_str))?
            .ok_or_else(corrupt)?;
        // The pre-queue came with the answer: this instance need not ask for it.
        self.amend(event, |cached| {
            cached.prequeue.get_or_insert_with(|| frozen.clone());
        });
        let admission = self.admission(event, &replies[4..], now)?;
        Ok(Ticket::Admitting { n, prequeue: frozen, admission })
    }

    /// The per-address join counter of this minute, and the limit it keeps
    /// (none without an address).
    fn join_counter(&self, event: &str, client: Option<&str>, per_minute: u64) -> (String, u64) {
        let minute = self.runtime.now_ms() / 60_000;
        let counter = EventKeys::new(event).joins(client.unwrap_or("-"), minute);
        (counter, if client.is_some() { per_minute } else { 0 })
    }

    /// Fixes the pre-queue (if nobody has yet) and returns it; this
    /// instance's view keeps it, so it asks once.
    pub async fn freeze_prequeue(&self, event: &str) -> Result<Prequeue, StoreError> {
        let keys = EventKeys::new(event);
        let reply = self.join(event, "freeze", keys.prequeue_counter(), 0).await?;
        let frozen = prequeue(reply.get(1).and_then(as_u64), reply.get(2).and_then(Value::as_str))?
            .ok_or_else(|| StoreError::Corrupt(reply.to_string()))?;
        self.amend(event, |view| view.prequeue = Some(frozen.clone()));
        Ok(frozen)
    }

    async fn join(&self, event: &str, mode: &str, counter: String, limit: u64) -> Result<Value, StoreError> {
        let (keys, args) = self.join_keys_and_args(event, mode, counter, limit);
        Ok(self.redis.eval(&JOIN, &keys, &args).await?)
    }

    /// `JOIN`'s keys and arguments, which `JOIN_AND_ADMIT`'s begin with: a
    /// fresh seed, kept only if this call fixes the pre-queue.
    fn join_keys_and_args(
        &self,
        event: &str,
        mode: &str,
        counter: String,
        limit: u64,
    ) -> (Vec<String>, Vec<String>) {
        let keys = EventKeys::new(event);
        let seed = seed_hex(&self.runtime.random());
        (
            vec![
                counter,
                keys.prequeue_counter(),
                keys.queue_counter(),
                keys.prequeue_size(),
                keys.prequeue_seed(),
            ],
            vec![mode.to_owned(), seed, limit.to_string(), JOIN_COUNTER_SECONDS.to_owned()],
        )
    }

    /// Lets the visitor at `position` in if their turn has come: moves the
    /// frontier as far as the rules allow (while the sale is `selling`),
    /// then starts their session. Returns where that left them and the
    /// frontier as it now stands (someone else's if they moved it first).
    pub async fn admit(
        &self,
        event: &str,
        view: &View,
        selling: bool,
        position: u64,
        visitor: &str,
    ) -> Result<(Entry, Frontier), StoreError> {
        let keys = EventKeys::new(event);
        let limits = view.limits();
        let mut frontier = view.frontier.clone();
        for _ in 0..3 {
            let now = self.runtime.now_ms();
            let proposal = (selling && position > frontier.admitted).then(|| frontier.propose(&limits, now));
            let args = admit_args(view, proposal.as_ref(), now, position, visitor);
            let reply = self
                .redis
                .eval(
                    &ADMIT,
                    &[
                        keys.frontier(),
                        keys.active(),
                        keys.queue_counter(),
                        keys.prequeue_counter(),
                        keys.settings(),
                    ],
                    &args,
                )
                .await?;
            let replies = reply.as_array().ok_or_else(|| StoreError::Corrupt(reply.to_string()))?;
            let admission = self.admission(event, replies, now)?;
            frontier = admission.frontier.clone();
            // Someone else moved the frontier first: try again from theirs
            // if the visitor would now be let in.
            if admission.is_worth_retrying(&limits, now, position) {
                continue;
            }
            return Ok((admission.entry, frontier));
        }
        Ok((Entry::Waiting, frontier))
    }

    /// `ADMIT`'s reply (`{state, until, frontier, stale}`), and this
    /// instance's view of the frontier refreshed from it.
    fn admission(&self, event: &str, reply: &[Value], now: i64) -> Result<Admission, StoreError> {
        let corrupt = || StoreError::Corrupt(Value::from(reply.to_vec()).to_string());
        let state = reply.first().and_then(Value::as_str).ok_or_else(corrupt)?;
        let frontier = parse_frontier(reply.get(2).and_then(Value::as_str).filter(|s| !s.is_empty()))?;
        self.amend(event, |cached| {
            (cached.frontier, cached.read_ms, cached.asked_ms) = (frontier.clone(), now, now);
        });
        let entry = match state {
            "session" => Entry::Session(reply.get(1).and_then(as_u64).ok_or_else(corrupt)? as i64),
            "full" => Entry::Full,
            "ended" => Entry::Ended,
            _ => Entry::Waiting,
        };
        Ok(Admission { entry, frontier, raced: reply.get(3).and_then(as_u64) == Some(1) })
    }

    /// Ends a visit (order placed, hold released, left): frees its slot and
    /// keeps its ticket from being admitted again.
    pub async fn end_session(&self, event: &str, visitor: &str) -> Result<(), StoreError> {
        let now = self.runtime.now_ms().to_string();
        self.redis.eval(&END, &[EventKeys::new(event).active()], &[visitor.to_owned(), now]).await?;
        // A slot just freed: whoever waits on the cap here asks again at once.
        self.amend(event, |view| view.asked_ms = 0);
        Ok(())
    }

    /// When the visitor's checkout session ends (ms), if it is running.
    pub async fn session_until(&self, event: &str, visitor: &str) -> Result<Option<i64>, StoreError> {
        let reply =
            self.redis.command(&["ZSCORE", &EventKeys::new(event).active(), &format!("v:{visitor}")]).await?;
        let until = reply.as_str().and_then(|s| s.parse::<f64>().ok()).or_else(|| reply.as_f64());
        Ok(until.map(|until| until as i64).filter(|until| *until > self.runtime.now_ms()))
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

impl Admission {
    /// Waiting only because someone else's move came first, while a fresh
    /// proposal would let the visitor at `position` in.
    pub fn is_worth_retrying(&self, limits: &Limits, now_ms: i64, position: u64) -> bool {
        matches!(self.entry, Entry::Waiting) && self.raced && self.frontier.is_due(limits, now_ms, position)
    }
}

/// `ADMIT`'s arguments (see `scripts::ADMIT`).
fn admit_args(
    view: &View,
    proposal: Option<&Proposal>,
    now: i64,
    position: u64,
    visitor: &str,
) -> Vec<String> {
    let session_until = now + i64::from(view.settings.session_duration_seconds) * 1000;
    let mut args = scripts::proposal_args(proposal).to_vec();
    args.extend([
        view.limits().max_active.to_string(),
        now.to_string(),
        (now + SLOT_MS).to_string(),
        position.to_string(),
        visitor.to_owned(),
        session_until.to_string(),
        ENDED_MEMORY_MS.to_string(),
    ]);
    args
}

fn parse_frontier(json: Option<&str>) -> Result<Frontier, StoreError> {
    match json {
        Some(json) => serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string())),
        None => Ok(Frontier::default()),
    }
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
