//! The waiting room's HTTP surface, independent of the runtime:
//!
//! - `POST /api/v1/events/{id}/queue/join`, `GET .../queue/status`,
//!   `GET .../queue/challenge`, `POST .../queue/leave`, `GET .../queue/stats`
//! - `GET /.well-known/jwks.json`
//! - the gatekeeper: `/events/{id}/checkout...`, `/api/v1/events/{id}/seatmap`,
//!   `/api/v1/events/{id}/reservations`, `/api/v1/reservations/...`,
//!   `/api/v1/orders/...` and the order pages `/orders/...` reach the origin
//!   only with a valid access token;
//! - passed through to the origin as they are: the organizer API
//!   (`/api/v1/organizer/...`), payment webhooks (`/webhooks/payments/{provider}`),
//!   `POST /api/v1/buyer-sessions`, `/api/v1/tickets/{code}/qr.svg` and
//!   `/api/openapi.json`, so the edge is the site's one public hostname.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};

use edge_platform::redis::Redis;
use edge_platform::{Body, Incoming, IntoReply, Reply, Runtime};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use queue_core::page::{Puzzle, waiting_room};
use queue_core::pow;
use queue_core::settings::Phase;
use queue_core::status::{
    State, Status, WaitReason, checkout_path, prequeue_refresh_after_seconds, prequeue_wait_range_seconds,
    refresh_after_seconds,
};
use queue_tokens::{
    ACCESS_COOKIE_PREFIX, AccessClaims, ChallengeClaims, Claims, Kind, QueueClaims, SESSION_ENDED_HEADER,
    TokenError,
};
use serde::Deserialize;

use crate::config::Config;
use crate::store::{Entry, Store, StoreError, Ticket, View};

type Response = http::Response<Vec<u8>>;

/// How long a proof-of-work challenge may take to solve.
const CHALLENGE_SECONDS: i64 = 120;

/// Every way a request can fail, mapped once to a problem response.
#[derive(Debug, thiserror::Error)]
enum Problem {
    #[error("this edge is misconfigured: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no such page")]
    NotFound,
    /// The path exists; `allow` lists the methods it takes.
    #[error("this address takes {allow} only")]
    MethodNotAllowed { allow: &'static str },
    #[error("{0}")]
    BadRequest(String),
    #[error("you are not in this event's queue; join first")]
    NotInQueue,
    #[error("your visit has ended (order placed, seats released or queue left): join the queue again")]
    SessionEnded,
    #[error("too many joins from your address; try again in a minute")]
    RateLimited,
    #[error("this sale asks for a proof of work: get a challenge and solve it")]
    ProofOfWorkRequired,
    #[error("the proof of work does not solve its challenge")]
    ProofOfWorkInvalid,
    #[error("the access token was refused: {0}")]
    InvalidToken(TokenError),
    #[error("{0}")]
    Organizer(String, StatusCode),
}

impl Problem {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Problem::Config(_) => (StatusCode::INTERNAL_SERVER_ERROR, "misconfigured"),
            Problem::Store(StoreError::EventNotFound) | Problem::NotFound => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            Problem::Store(StoreError::Origin(_)) => (StatusCode::BAD_GATEWAY, "origin_unavailable"),
            Problem::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "queue_unavailable"),
            Problem::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Problem::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            Problem::NotInQueue => (StatusCode::NOT_FOUND, "not_in_queue"),
            Problem::SessionEnded => (StatusCode::GONE, "session_ended"),
            Problem::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Problem::ProofOfWorkRequired => (StatusCode::FORBIDDEN, "proof_of_work_required"),
            Problem::ProofOfWorkInvalid => (StatusCode::FORBIDDEN, "proof_of_work_invalid"),
            Problem::InvalidToken(_) => (StatusCode::UNAUTHORIZED, "invalid_access_token"),
            Problem::Organizer(_, status) => (*status, "organizer_key_refused"),
        }
    }

    fn into_response(self, runtime: &impl Runtime) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            runtime.log(&format!("edge-queue: {self}"));
        }
        let mut response = json(status, &serde_json::json!({ "error": code, "message": self.to_string() }));
        if let Problem::MethodNotAllowed { allow } = self {
            set(&mut response, header::ALLOW, allow);
        }
        match status {
            StatusCode::UNAUTHORIZED => {
                set(&mut response, header::WWW_AUTHENTICATE, "Bearer realm=\"stampede\"")
            }
            StatusCode::TOO_MANY_REQUESTS => set(&mut response, header::RETRY_AFTER, "60"),
            // The store or origin is briefly away: a few seconds, not a storm.
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY => {
                set(&mut response, header::RETRY_AFTER, "5");
            }
            _ => {}
        }
        response
    }
}

/// Read once per instance: deriving the signing keys is not free, and a warm
/// instance serves many requests.
fn config(runtime: &impl Runtime) -> Result<&'static Config, Problem> {
    static CONFIG: OnceLock<Result<Config, String>> = OnceLock::new();
    match CONFIG.get_or_init(|| Config::from_runtime(runtime).map_err(|e| e.to_string())) {
        Ok(config) => Ok(config),
        Err(e) => Err(Problem::Config(e.clone())),
    }
}

pub async fn handle<R: Runtime>(runtime: &R, incoming: Incoming) -> Reply<R> {
    let config = match config(runtime) {
        Ok(config) => config,
        Err(problem) => return problem.into_response(runtime).into_reply(),
    };
    let redis = Redis::new(runtime, &config.redis_url, &config.redis_token);
    let room = Room { runtime, config, store: Store::new(runtime, redis, &config.origin_url), incoming };
    room.route().await.unwrap_or_else(|problem| problem.into_response(runtime).into_reply())
}

struct Room<'a, R> {
    runtime: &'a R,
    config: &'a Config,
    store: Store<'a, R>,
    incoming: Incoming,
}

/// Body of a join: the solved puzzle when the sale asks for one.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    challenge: Option<String>,
    nonce: Option<String>,
}

impl<R: Runtime> Room<'_, R> {
    async fn route(&self) -> Result<Reply<R>, Problem> {
        let path = self.incoming.request.uri().path().to_owned();
        let method = self.incoming.request.method().clone();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            (Method::GET, [".well-known", "jwks.json"]) => {
                let mut response = json(StatusCode::OK, &self.config.keys.jwks());
                set(&mut response, header::CACHE_CONTROL, "public, max-age=300");
                Ok(response.into_reply())
            }
            (_, [".well-known", "jwks.json"]) => Err(Problem::MethodNotAllowed { allow: "GET" }),
            (method, ["api", "v1", "events", event, "queue", action]) => {
                let event = event_id(event)?;
                match (method, *action) {
                    (Method::POST, "join") => self.join(&event).await,
                    (Method::GET, "status") => self.status(&event).await,
                    (Method::GET, "challenge") => self.challenge(&event).await,
                    (Method::POST, "leave") => self.leave(&event).await,
                    (Method::GET, "stats") => self.stats(&event).await,
                    (_, "join" | "leave") => Err(Problem::MethodNotAllowed { allow: "POST" }),
                    (_, "status" | "challenge" | "stats") => Err(Problem::MethodNotAllowed { allow: "GET" }),
                    _ => Err(Problem::NotFound),
                }
                .map(IntoReply::into_reply)
            }
            (_, ["events", event, "checkout", ..])
            | (_, ["api", "v1", "events", event, "seatmap" | "reservations"])
            | (_, ["api", "v1", "events", event, "reservations", "current"]) => {
                let event = event_id(event)?;
                self.gate(&event).await
            }
            (_, ["api", "v1", "reservations", id, rest @ ..]) => {
                if event_id(id).is_err() || !matches!(rest, [] | ["commit" | "extend"]) {
                    return Err(Problem::NotFound);
                }
                self.gate_by_origin().await
            }
            // Orders are not queue-protected (the buyer's session or the
            // order's secret link opens them); only well-formed ones go on.
            (_, ["api", "v1", "orders", number, secret @ ..] | ["orders", number, secret @ ..]) => {
                if !is_order_number(number)
                    || !matches!(secret, [] | [_])
                    || !secret.iter().all(|s| is_order_secret(s))
                {
                    return Err(Problem::NotFound);
                }
                self.forward(&[]).await
            }
            (_, ["api", "v1", "organizer", _, ..] | ["organizer", ..])
            | (_, ["webhooks", "payments", _])
            | (_, ["api", "v1", "buyer-sessions"])
            | (_, ["api", "v1", "tickets", _, "qr.svg"])
            | (_, ["api", "openapi.json"]) => self.forward(&[]).await,
            _ => Err(Problem::NotFound),
        }
    }

    fn now_s(&self) -> i64 {
        self.runtime.now_ms() / 1000
    }

    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.runtime.now_ms()).expect("the clock is within chrono's range")
    }

    // ---- credentials -------------------------------------------------------

    fn bearer(&self) -> Option<String> {
        let authorization = self.incoming.request.headers().get(header::AUTHORIZATION)?;
        authorization.to_str().ok()?.strip_prefix("Bearer ").map(str::to_owned)
    }

    /// Tokens the visitor presented: the bearer token, then the cookie.
    fn presented(&self, cookie: &str) -> Vec<String> {
        self.bearer().into_iter().chain(cookie_value(self.incoming.request.headers(), cookie)).collect()
    }

    /// The first presented token of `kind` for `event` that verifies.
    /// Refusals other than a token of another kind are counted.
    async fn verified<C: Claims + serde::de::DeserializeOwned>(
        &self,
        event: &str,
        kind: Kind,
        cookie: &str,
    ) -> Result<Option<C>, TokenError> {
        let mut refusal = None;
        for token in self.presented(cookie) {
            match self.config.keys.verifier().verify::<C>(&token, kind, event, self.now_s()) {
                Ok(claims) => return Ok(Some(claims)),
                Err(TokenError::WrongKind) => {}
                Err(e) => {
                    self.store.count_rejected(event, e.code()).await;
                    refusal = Some(e);
                }
            }
        }
        refusal.map_or(Ok(None), Err)
    }

    async fn ticket(&self, event: &str) -> Option<QueueClaims> {
        self.verified(event, Kind::Queue, &queue_cookie(event)).await.ok().flatten()
    }

    async fn access(&self, event: &str) -> Result<Option<AccessClaims>, TokenError> {
        self.verified(event, Kind::Access, &access_cookie(event)).await
    }

    // ---- the queue ---------------------------------------------------------

    async fn join(&self, event: &str) -> Result<Response, Problem> {
        let view = self.store.view(event).await?.live()?;
        if let Some(ticket) = self.ticket(event).await {
            // One place per visitor: joining again changes nothing, unless
            // that visit is over; then the visitor queues anew.
            match self.answer(event, &view, &ticket, None).await {
                Err(Problem::SessionEnded) => {}
                answer => return answer,
            }
        }
        let body: JoinBody = if self.incoming.request.body().is_empty() {
            JoinBody::default()
        } else {
            serde_json::from_slice(self.incoming.request.body())
                .map_err(|e| Problem::BadRequest(format!("invalid join body: {e}")))?
        };
        let (ticket, view) = self.take_ticket(event, view, &body).await?;
        match ticket {
            Some(ticket) => {
                let token = self.config.keys.sign(Kind::Queue, &ticket);
                self.answer(event, &view, &ticket, Some(token)).await
            }
            None => Ok(json(StatusCode::OK, &self.phase_status(event, &view, None))),
        }
    }

    /// Issues a ticket if the sale takes joins now; checks the per-address
    /// limit and the proof of work first.
    async fn take_ticket(
        &self,
        event: &str,
        view: View,
        body: &JoinBody,
    ) -> Result<(Option<QueueClaims>, View), Problem> {
        let phase = view.settings.phase(self.now());
        if !matches!(phase, Phase::Prequeue | Phase::Selling | Phase::Paused) {
            return Ok((None, view));
        }
        let view = view.live()?;
        if view.settings.pow_difficulty > 0 {
            self.check_proof_of_work(event, view.settings.pow_difficulty, body).await?;
        }
        let client = self.incoming.client_ip.as_deref();
        let limit = self.config.joins_per_minute;
        let (n, pre) = match self.store.issue_ticket(event, phase == Phase::Prequeue, client, limit).await? {
            Ticket::Prequeue(n) => (n, true),
            Ticket::Queue(n) => (n, false),
            Ticket::Limited => return Err(Problem::RateLimited),
        };
        let visitor = hex(&self.runtime.random()[..16]);
        let claims = QueueClaims {
            iss: self.config.keys.issuer().to_owned(),
            sub: visitor,
            aud: event.to_owned(),
            n,
            pre,
            iat: self.now_s(),
        };
        Ok((Some(claims), view))
    }

    async fn check_proof_of_work(&self, event: &str, bits: u8, body: &JoinBody) -> Result<(), Problem> {
        let (Some(challenge), Some(nonce)) = (&body.challenge, &body.nonce) else {
            return Err(Problem::ProofOfWorkRequired);
        };
        let claims: ChallengeClaims = self
            .config
            .keys
            .verifier()
            .verify(challenge, Kind::Challenge, event, self.now_s())
            .map_err(|_| Problem::ProofOfWorkInvalid)?;
        if !pow::is_solved(challenge, nonce, claims.bits.max(bits))
            || !self.store.spend_challenge(event, &claims.jti).await?
        {
            return Err(Problem::ProofOfWorkInvalid);
        }
        Ok(())
    }

    async fn challenge(&self, event: &str) -> Result<Response, Problem> {
        let view = self.store.view(event).await?;
        let bits = view.settings.pow_difficulty.min(pow::MAX_BITS);
        let challenge = self.challenge_token(event, bits);
        Ok(json(StatusCode::OK, &serde_json::json!({ "challenge": challenge, "bits": bits })))
    }

    async fn status(&self, event: &str) -> Result<Response, Problem> {
        let view = self.store.view(event).await?;
        if let Ok(Some(_)) = self.access(event).await {
            let status =
                Status { checkout_url: Some(checkout_path(event)), ..Status::new(State::Admitted, event) };
            return Ok(json(StatusCode::OK, &status));
        }
        match self.ticket(event).await {
            Some(ticket) => self.answer(event, &view, &ticket, None).await,
            None if view.settings.phase(self.now()) == Phase::Open => {
                Ok(json(StatusCode::OK, &self.phase_status(event, &view, None)))
            }
            None => Err(Problem::NotInQueue),
        }
    }

    /// The visitor's standing as JSON, with cookies for new tokens.
    async fn answer(
        &self,
        event: &str,
        view: &View,
        ticket: &QueueClaims,
        new_queue_token: Option<String>,
    ) -> Result<Response, Problem> {
        let mut status = self.standing(event, view, ticket).await?;
        status.queue_token = new_queue_token.clone();
        let mut response = json(StatusCode::OK, &status);
        self.set_cookies(
            &mut response,
            event,
            view,
            new_queue_token.as_deref(),
            status.access_token.as_deref(),
        );
        Ok(response)
    }

    /// Where a ticket holder stands now, admitting them if it is their turn.
    async fn standing(&self, event: &str, view: &View, ticket: &QueueClaims) -> Result<Status, Problem> {
        let now = self.now();
        let phase = view.settings.phase(now);
        let mut status = self.phase_status(event, view, Some(ticket));
        if !matches!(phase, Phase::Selling | Phase::Paused) {
            return Ok(status);
        }
        let mut view = view.clone().live()?;
        if view.prequeue.is_none() {
            view.prequeue = Some(self.store.freeze_prequeue(event).await?);
        }
        let prequeue = view.prequeue.as_ref().expect("frozen above");
        let position = if ticket.pre {
            if ticket.n == 0 || ticket.n > prequeue.size {
                return Err(Problem::BadRequest("this ticket is not part of the pre-queue".into()));
            }
            prequeue.shuffle.place(ticket.n - 1) + 1
        } else {
            prequeue.size + ticket.n
        };
        let limits = view.limits();
        let now_ms = self.runtime.now_ms();
        // Admitted before a pause still counts: the pause stops new admissions only.
        let entry = if view.worth_asking(now_ms, position) {
            let selling = phase == Phase::Selling;
            let (entry, frontier) = self.store.admit(event, &view, selling, position, &ticket.sub).await?;
            view.frontier = frontier;
            entry
        } else {
            Entry::Waiting
        };
        if let Entry::Ended = entry {
            return Err(Problem::SessionEnded);
        }
        if let Entry::Session(until) = entry {
            let access = AccessClaims {
                iss: self.config.keys.issuer().to_owned(),
                sub: ticket.sub.clone(),
                aud: event.to_owned(),
                iat: self.now_s(),
                exp: until / 1000,
                // One id per session, whichever poll issued the token: ending
                // the session at the origin ends every token of it.
                jti: format!("{}.{until}", ticket.sub),
            };
            status.state = State::Admitted;
            status.access_token = Some(self.config.keys.sign(Kind::Access, &access));
            status.checkout_url = Some(checkout_path(event));
            status.position = Some(position);
            status.ahead = Some(0);
            return Ok(status);
        }
        let ahead = position.saturating_sub(view.frontier.admitted + 1);
        let wait = view.frontier.estimated_wait_seconds(&limits, now_ms, position);
        status.position = Some(position);
        status.ahead = Some(ahead);
        status.reason =
            Some(if view.frontier.capped { WaitReason::CheckoutFull } else { WaitReason::InLine });
        status.estimated_wait_seconds = Some(wait);
        status.refresh_after_seconds = Some(refresh_after_seconds(ahead, wait, self.jitter()));
        Ok(status)
    }

    /// What everyone is told in this phase, before any position is known.
    fn phase_status(&self, event: &str, view: &View, ticket: Option<&QueueClaims>) -> Status {
        let now = self.now();
        let mut status = Status::new(State::Waiting, event);
        status.ticket = ticket.map(|t| t.n);
        status.sale_starts_at = view.settings.sale_starts_at.map(|s| s.to_rfc3339());
        match view.settings.phase(now) {
            Phase::Open => {
                status.state = State::Admitted;
                status.checkout_url = Some(checkout_path(event));
            }
            Phase::NotYetOpen | Phase::Closed => status.state = State::Closed,
            Phase::SoldOut => status.state = State::SoldOut,
            Phase::Prequeue => {
                let until_start_ms = view.settings.admissions_open_ms() - self.runtime.now_ms();
                let joined = view.prequeue_joined.max(ticket.filter(|t| t.pre).map_or(0, |t| t.n));
                let range =
                    prequeue_wait_range_seconds(until_start_ms, joined, view.settings.new_users_per_minute);
                status.state = State::Prequeue;
                status.estimated_wait_seconds = Some(range[0]);
                status.wait_range_seconds = Some(range);
                // Everyone is drawn at the start: come back then, spread out.
                status.refresh_after_seconds =
                    Some(prequeue_refresh_after_seconds(until_start_ms, joined, self.jitter()));
            }
            Phase::Paused => {
                status.state = State::Paused;
                status.refresh_after_seconds = Some(refresh_after_seconds(500, 60, self.jitter()));
            }
            Phase::Selling => {}
        }
        if status.state == State::Closed || status.state == State::SoldOut {
            status.refresh_after_seconds = None;
        }
        if !view.settings.message.trim().is_empty() {
            status.message = Some(view.settings.message.clone());
        }
        status
    }

    fn jitter(&self) -> f64 {
        f64::from(self.runtime.random()[0]) / 255.0
    }

    /// Ends the visit: the slot is freed, the queue ticket cannot be
    /// admitted again, and the origin refuses the access token from now on.
    async fn leave(&self, event: &str) -> Result<Response, Problem> {
        if let Ok(Some(access)) = self.access(event).await {
            self.store.end_session(event, &access.sub).await?;
            self.end_at_origin(event).await?;
        } else if let Some(ticket) = self.ticket(event).await {
            self.store.end_session(event, &ticket.sub).await?;
        }
        let mut response = json(StatusCode::OK, &serde_json::json!({ "state": "left", "event_id": event }));
        for name in [queue_cookie(event), access_cookie(event)] {
            append_cookie(&mut response, &format!("{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"));
        }
        Ok(response)
    }

    /// Tells the origin the presented access token's session is over.
    async fn end_at_origin(&self, event: &str) -> Result<(), Problem> {
        let mut request =
            http::Request::delete(format!("{}/api/v1/events/{event}/access", self.config.origin_url));
        // The origin finds the verified token among what the visitor presented.
        for name in [header::AUTHORIZATION, header::COOKIE] {
            for value in self.incoming.request.headers().get_all(&name) {
                request = request.header(&name, value);
            }
        }
        let answer = self
            .runtime
            .send(request.body(Vec::new()).expect("a valid request"))
            .await
            .map_err(|e| StoreError::Origin(e.to_string()))?;
        match answer.status() {
            StatusCode::NO_CONTENT => Ok(()),
            status => {
                Err(Problem::Store(StoreError::Origin(format!("ending the session answered {status}"))))
            }
        }
    }

    /// Queue figures for the event's organizer; the origin checks the key.
    async fn stats(&self, event: &str) -> Result<Response, Problem> {
        let authorization = self.incoming.request.headers().get(header::AUTHORIZATION).cloned();
        let mut check =
            http::Request::get(format!("{}/api/v1/organizer/events/{event}", self.config.origin_url));
        if let Some(value) = authorization {
            check = check.header(header::AUTHORIZATION, value);
        }
        let answer = self
            .runtime
            .send(check.body(Vec::new()).expect("a valid request"))
            .await
            .map_err(|e| StoreError::Origin(e.to_string()))?;
        match answer.status() {
            StatusCode::OK => {}
            // The origin failing is not the key being refused.
            status if status.is_server_error() => {
                return Err(StoreError::Origin(format!("the origin answered {status}")).into());
            }
            status => {
                return Err(Problem::Organizer(
                    "the organizer API key was refused for this event".into(),
                    status,
                ));
            }
        }
        let view = self.store.view(event).await?.live()?;
        let stats = self.store.stats(event).await?;
        let waiting = stats.issued.saturating_sub(view.frontier.admitted);
        let limits = view.limits();
        let last_in_line = view.frontier.estimated_wait_seconds(&limits, self.runtime.now_ms(), stats.issued);
        Ok(json(
            StatusCode::OK,
            &serde_json::json!({
                "event_id": event,
                "issued": stats.issued,
                "waiting": waiting,
                "admitted": view.frontier.admitted,
                "active_sessions": stats.sessions,
                "reserved_slots": stats.reserved_slots,
                "admission_rate_per_minute": (view.frontier.rate * 60.0).round(),
                "configured_rate_per_minute": view.settings.new_users_per_minute,
                "total_active_users": view.settings.total_active_users,
                "paused": view.settings.paused,
                "estimated_wait_seconds_for_last": last_in_line,
                "rejected_tokens": stats.rejected,
            }),
        ))
    }

    // ---- the gatekeeper ----------------------------------------------------

    /// Without Redis (a degraded view), an event that is not queuing passes
    /// as always and a valid access token is enough: the origin still
    /// refuses sessions that ended. Everyone else is told to come back.
    async fn gate(&self, event: &str) -> Result<Reply<R>, Problem> {
        let view = self.store.view(event).await?;
        if view.settings.phase(self.now()) == Phase::Open {
            return self.forward(&[]).await;
        }
        if let Ok(Some(access)) = self.access(event).await
            && (view.degraded || self.session_is_live(event, &access.sub).await?)
        {
            return self.forward(&[access]).await;
        }
        if self.wants_html() {
            return self.waiting_page(event, view).await.map(IntoReply::into_reply);
        }
        let status = match self.ticket(event).await {
            Some(ticket) => self.standing(event, &view, &ticket).await?,
            None => Status {
                message: Some(format!("join the queue: POST /api/v1/events/{event}/queue/join")),
                ..self.phase_status(event, &view, None)
            },
        };
        let code = StatusCode::from_u16(self.config.blocked_status).expect("checked at start-up");
        let mut response =
            json(code, &serde_json::json!({ "error": "access_token_required", "queue": status }));
        self.set_cookies(&mut response, event, &view, None, status.access_token.as_deref());
        Ok(response.into_reply())
    }

    /// Whether the session is live in Redis; `true` if Redis has just gone
    /// away (the token is valid, and the origin checks for ended sessions).
    async fn session_is_live(&self, event: &str, visitor: &str) -> Result<bool, Problem> {
        match self.store.session_is_live(event, visitor).await {
            Err(e) if e.is_unavailable() => Ok(true),
            live => Ok(live?),
        }
    }

    /// Reservation and order paths name no event: the origin knows it and
    /// checks the token's event itself. Here a presented token must verify.
    async fn gate_by_origin(&self) -> Result<Reply<R>, Problem> {
        let access_cookies = cookies(self.incoming.request.headers())
            .filter(|(name, _)| name.starts_with(ACCESS_COOKIE_PREFIX))
            .map(|(_, value)| value);
        let presented: Vec<String> = self.bearer().into_iter().chain(access_cookies).collect();
        let verifier = self.config.keys.verifier();
        let mut valid = Vec::new();
        let mut refusal = None;
        for token in presented {
            // The event is unknown here, so read it from the token itself,
            // then verify everything against it.
            let Some(event) = unverified_audience(&token) else { continue };
            match verifier.verify::<AccessClaims>(&token, Kind::Access, &event, self.now_s()) {
                Ok(claims) => valid.push(claims),
                Err(TokenError::WrongKind) => {}
                Err(e) => {
                    self.store.count_rejected(&event, e.code()).await;
                    refusal = Some(e);
                }
            }
        }
        match (valid.is_empty(), refusal) {
            (true, Some(e)) => Err(Problem::InvalidToken(e)),
            _ => self.forward(&valid).await,
        }
    }

    fn wants_html(&self) -> bool {
        let request = &self.incoming.request;
        let accept = request.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
        request.method() == Method::GET && accept.contains("text/html")
    }

    /// The waiting room for a browser at a checkout URL: joins it on the
    /// way in (unless a puzzle must be solved first) and, once admitted,
    /// sends it back to the same URL with the access cookie.
    async fn waiting_page(&self, event: &str, view: View) -> Result<Response, Problem> {
        // A ticket whose visit has ended counts as none: the visitor queues anew.
        let mut standing = None;
        if let Some(ticket) = self.ticket(event).await {
            match self.standing(event, &view, &ticket).await {
                Err(Problem::SessionEnded) => {}
                status => standing = Some((ticket, status?)),
            }
        }
        let (ticket, new_token, view, status) = match standing {
            Some((ticket, status)) => (Some(ticket), None, view, status),
            None if view.settings.pow_difficulty > 0 => {
                let status = self.phase_status(event, &view, None);
                (None, None, view, status)
            }
            None => {
                let (ticket, view) = self.take_ticket(event, view, &JoinBody::default()).await?;
                let token = ticket.as_ref().map(|t| self.config.keys.sign(Kind::Queue, t));
                let status = match &ticket {
                    Some(ticket) => self.standing(event, &view, ticket).await?,
                    None => self.phase_status(event, &view, None),
                };
                (ticket, token, view, status)
            }
        };
        let mut response = if status.state == State::Admitted {
            let mut redirect = empty(StatusCode::SEE_OTHER);
            let target = self.incoming.request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
            set(&mut redirect, header::LOCATION, &target);
            redirect
        } else {
            let challenge;
            let puzzle = if ticket.is_none() && view.settings.pow_difficulty > 0 {
                challenge = self.challenge_token(event, view.settings.pow_difficulty);
                Some(Puzzle { challenge: &challenge, bits: view.settings.pow_difficulty })
            } else {
                None
            };
            let html = waiting_room(&view.settings, &status, puzzle);
            let mut page = with_body(StatusCode::OK, "text/html; charset=utf-8", html.into_bytes());
            set(&mut page, header::CACHE_CONTROL, "no-store");
            page
        };
        self.set_cookies(&mut response, event, &view, new_token.as_deref(), status.access_token.as_deref());
        Ok(response)
    }

    fn challenge_token(&self, event: &str, bits: u8) -> String {
        let claims = ChallengeClaims {
            iss: self.config.keys.issuer().to_owned(),
            aud: event.to_owned(),
            exp: self.now_s() + CHALLENGE_SECONDS,
            jti: hex(&self.runtime.random()[..16]),
            bits: bits.min(pow::MAX_BITS),
        };
        self.config.keys.sign(Kind::Challenge, &claims)
    }

    /// Passes the request to the origin and its answer back, the body
    /// relayed as it arrives (the live seat map is a stream that does not
    /// end); frees the session slot when the origin says the session is over.
    async fn forward(&self, sessions: &[AccessClaims]) -> Result<Reply<R>, Problem> {
        let request = &self.incoming.request;
        let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let mut outbound = http::Request::builder()
            .method(request.method())
            .uri(format!("{}{target}", self.config.origin_url));
        let headers = outbound.headers_mut().expect("a fresh builder");
        for (name, value) in request.headers() {
            if !is_hop_by_hop(name.as_str()) && !name.as_str().starts_with("spin-") && name != header::HOST {
                headers.append(name, value.clone());
            }
        }
        if let Some(client) = &self.incoming.client_ip {
            headers.insert("x-forwarded-for", header_value(client));
        }
        headers.insert(
            "x-forwarded-proto",
            HeaderValue::from_static(if self.incoming.https { "https" } else { "http" }),
        );
        if let Some(host) = request.headers().get(header::HOST) {
            headers.insert("x-forwarded-host", host.clone());
        }
        // A GET or HEAD body means nothing, and the Fetch API refuses to send
        // one: it is dropped, with its length, on every runtime alike.
        let body = if matches!(*request.method(), Method::GET | Method::HEAD) {
            let headers = outbound.headers_mut().expect("a fresh builder");
            headers.remove(header::CONTENT_LENGTH);
            Vec::new()
        } else {
            request.body().clone()
        };
        let outbound = outbound.body(body).expect("a valid request");
        let mut answer = self.runtime.open(outbound).await.map_err(|e| StoreError::Origin(e.to_string()))?;
        if let Some(ended) = answer.headers_mut().remove(SESSION_ENDED_HEADER)
            && let Some(session) = sessions.iter().find(|s| ended.as_bytes() == s.aud.as_bytes())
        {
            self.store.end_session(&session.aud, &session.sub).await?;
            let expired =
                format!("{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax", access_cookie(&session.aud));
            answer.headers_mut().append(header::SET_COOKIE, header_value(&expired));
        }
        answer.headers_mut().retain_hop_by_hop_free();
        Ok(answer.map(Body::Relayed))
    }

    fn set_cookies(
        &self,
        response: &mut Response,
        event: &str,
        view: &View,
        queue_token: Option<&str>,
        access_token: Option<&str>,
    ) {
        let secure = if self.incoming.https { "; Secure" } else { "" };
        if let Some(token) = queue_token {
            let cookie = format!(
                "{}={token}; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax{secure}",
                queue_cookie(event)
            );
            append_cookie(response, &cookie);
        }
        if let Some(token) = access_token {
            let age = view.settings.session_duration_seconds;
            let cookie = format!(
                "{}={token}; Path=/; Max-Age={age}; HttpOnly; SameSite=Lax{secure}",
                access_cookie(event)
            );
            append_cookie(response, &cookie);
        }
    }
}

fn queue_cookie(event: &str) -> String {
    format!("stampede_queue_{event}")
}

fn access_cookie(event: &str) -> String {
    format!("{ACCESS_COOKIE_PREFIX}{event}")
}

fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (String, String)> + '_ {
    edge_core::cookies::cookies(headers).map(|(name, value)| (name.to_owned(), value.to_owned()))
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    cookies(headers).find(|(n, _)| n == name).map(|(_, value)| value)
}

/// The `aud` of a token before verification, only to choose what to verify against.
fn unverified_audience(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("aud")?.as_str().map(str::to_owned)
}

/// Order numbers as the origin makes them: `STM-` and ten base-32 characters.
fn is_order_number(text: &str) -> bool {
    text.strip_prefix("STM-").is_some_and(|s| s.len() == 10 && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Order secrets: lowercase hex, as long as the origin makes them.
fn is_order_secret(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Event ids are UUIDs; anything else never reaches Redis or the origin.
fn event_id(segment: &str) -> Result<String, Problem> {
    let valid = segment.len() == 36
        && segment.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if valid { Ok(segment.to_ascii_lowercase()) } else { Err(Problem::NotFound) }
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

trait HopByHop {
    fn retain_hop_by_hop_free(&mut self);
}

impl HopByHop for HeaderMap {
    fn retain_hop_by_hop_free(&mut self) {
        let names: Vec<_> = self.keys().filter(|n| is_hop_by_hop(n.as_str())).cloned().collect();
        for name in names {
            self.remove(name);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn set(response: &mut Response, name: header::HeaderName, value: &str) {
    response.headers_mut().insert(name, header_value(value));
}

fn append_cookie(response: &mut Response, cookie: &str) {
    response.headers_mut().append(header::SET_COOKIE, header_value(cookie));
}

fn empty(status: StatusCode) -> Response {
    let mut response = http::Response::new(Vec::new());
    *response.status_mut() = status;
    set(&mut response, header::CACHE_CONTROL, "no-store");
    response
}

fn with_body(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response {
    let length = body.len().to_string();
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    set(&mut response, header::CONTENT_TYPE, content_type);
    set(&mut response, header::CONTENT_LENGTH, &length);
    response
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(value).expect("JSON serializes");
    let mut response = with_body(status, "application/json", body);
    set(&mut response, header::CACHE_CONTROL, "no-store");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_must_be_uuids() {
        assert_eq!(
            event_id("0B7C6C1E-5F2A-4C55-9D1E-2F1F3C1D9A01").unwrap(),
            "0b7c6c1e-5f2a-4c55-9d1e-2f1f3c1d9a01"
        );
        for bad in ["", "x", "0b7c6c1e_5f2a-4c55-9d1e-2f1f3c1d9a01", "0b7c6c1e-5f2a-4c55-9d1e-2f1f3c1d9a0z"] {
            assert!(event_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_well_formed_order_paths_go_on() {
        assert!(is_order_number("STM-0123456789") && is_order_number("STM-ABCDEFGHJK"));
        for bad in ["STM-012345678", "STM-01234567890", "stm-0123456789", "STM-01234/6789", "X"] {
            assert!(!is_order_number(bad), "{bad}");
        }
        assert!(is_order_secret(&"ab12".repeat(16)));
        assert!(!is_order_secret(&"AB12".repeat(16)) && !is_order_secret(&"ab1".repeat(16)));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; stampede_access_e=tok; b=2"));
        assert_eq!(cookie_value(&headers, "stampede_access_e").as_deref(), Some("tok"));
        assert_eq!(cookie_value(&headers, "c"), None);
    }
}
