//! Who may use a checkout resource. The decision is made by the
//! [`Checkout`] extractor every checkout handler takes, on the same decoded,
//! typed path parameter the handler uses, so no spelling of a path can reach
//! a handler around it (fail closed: an id that does not parse or names
//! nothing is a 404, a database error a 5xx, never a pass). The two steps
//! of every order, hold and pay, take [`DeferredCheckout`] instead: what
//! the request presents is verified here, and their own statement checks
//! the rest of the gate before it does anything else (the event's waiting
//! room, the session's end); whatever it cannot decide goes through the
//! same gate first.
//!
//! For a queue-protected event the request needs an access token from the
//! edge's waiting room ([`crate::access`]); its `sub` is the buyer. For other
//! events the buyer is the origin's own buyer session ([`crate::buyers`]).

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use queue_tokens::AccessClaims;
use sqlx::PgPool;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::access::{AccessKeys, GateCheck, Refusal, check, claimed_sessions, end, presented_tokens};
use crate::error::{ApiError, ApiPath, Problem, SessionEnded, session_ended_header};
use crate::state::AppState;

/// What a checkout route's `{id}` names: the event, or a reservation of it.
#[derive(Clone, Copy)]
pub enum IdOf {
    Event,
    Reservation,
}

impl IdOf {
    /// Named in the 404 when nothing has the id.
    fn what(self) -> &'static str {
        match self {
            IdOf::Event => "event",
            IdOf::Reservation => "reservation",
        }
    }

    /// The event `id` belongs to, whether it is queue-protected, and which
    /// of `sessions` have ended: one round trip.
    async fn gate(self, db: &PgPool, id: Uuid, sessions: &[String]) -> Result<Option<Gate>, sqlx::Error> {
        match self {
            IdOf::Event => {
                sqlx::query_as!(
                    Gate,
                    r#"SELECT id AS event_id, queue_enabled,
                              ARRAY(SELECT jti FROM ended_access_sessions WHERE jti = ANY($2)) AS "ended!"
                       FROM events WHERE id = $1"#,
                    id,
                    sessions,
                )
                .fetch_optional(db)
                .await
            }
            IdOf::Reservation => {
                sqlx::query_as!(
                    Gate,
                    r#"SELECT e.id AS event_id, e.queue_enabled,
                              ARRAY(SELECT jti FROM ended_access_sessions WHERE jti = ANY($2)) AS "ended!"
                       FROM reservations r JOIN events e ON e.id = r.event_id WHERE r.id = $1"#,
                    id,
                    sessions,
                )
                .fetch_optional(db)
                .await
            }
        }
    }
}

/// A checkout route's `{id}`, typed by what it names.
pub trait CheckoutTarget: Send {
    const ID_OF: IdOf;
    /// Whether an ended session still gets through, to be answered from
    /// saved results only (a commit retried after its answer was lost).
    const REPLAYS_AFTER_END: bool = false;
    fn new(id: Uuid) -> Self;
}

/// `/api/v1/events/{id}/…`, `/events/{id}/checkout…`: the id is the event.
pub struct EventId(pub Uuid);

impl CheckoutTarget for EventId {
    const ID_OF: IdOf = IdOf::Event;
    fn new(id: Uuid) -> Self {
        Self(id)
    }
}

/// `/api/v1/reservations/{id}…`: the event is the reservation's.
pub struct ReservationId(pub Uuid);

impl CheckoutTarget for ReservationId {
    const ID_OF: IdOf = IdOf::Reservation;
    fn new(id: Uuid) -> Self {
        Self(id)
    }
}

/// `/api/v1/reservations/{id}/commit`: a reservation whose commit may be
/// retried with the same `Idempotency-Key` after the order ended the session.
pub struct CommitOf(pub Uuid);

impl CheckoutTarget for CommitOf {
    const ID_OF: IdOf = IdOf::Reservation;
    const REPLAYS_AFTER_END: bool = true;
    fn new(id: Uuid) -> Self {
        Self(id)
    }
}

/// A checkout request the access rules let through.
pub struct Checkout<T> {
    pub target: T,
    pub event: Uuid,
    buyer: Option<String>,
    /// The waiting-room session, on queue-protected events.
    session: Option<AccessClaims>,
    /// The session has ended: only saved answers may be replayed
    /// ([`CheckoutTarget::REPLAYS_AFTER_END`]).
    ended: bool,
}

struct Gate {
    event_id: Uuid,
    queue_enabled: bool,
    /// The presented sessions that have ended.
    ended: Vec<String>,
}

impl<T: CheckoutTarget> FromRequestParts<AppState> for Checkout<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ApiPath(id) = ApiPath::<Uuid>::from_request_parts(parts, state).await?;
        Self::check(id, &parts.headers, state).await
    }
}

impl<T: CheckoutTarget> Checkout<T> {
    /// The gate: who the buyer is on `id`'s event, or why nobody is.
    async fn check(id: Uuid, headers: &HeaderMap, state: &AppState) -> Result<Self, ApiError> {
        let presented = presented_tokens(headers);
        let gate = T::ID_OF
            .gate(&state.db, id, &claimed_sessions(&presented))
            .await?
            .ok_or_else(|| ApiError::not_found(T::ID_OF.what()))?;
        let now = chrono::Utc::now().timestamp();
        if !gate.queue_enabled {
            let buyer = state.buyers.buyer_of(headers, now);
            return Ok(Self { target: T::new(id), event: gate.event_id, buyer, session: None, ended: false });
        }
        let verdict = match check(state.access.verifier(), &presented, gate.event_id, &gate.ended, now) {
            Err(Refusal::Ended) if T::REPLAYS_AFTER_END => {
                check(state.access.verifier(), &presented, gate.event_id, &[], now)
                    .map(|claims| (claims, true))
            }
            verdict => verdict.map(|claims| (claims, false)),
        };
        match verdict {
            Ok((claims, ended)) => Ok(Self {
                target: T::new(id),
                event: gate.event_id,
                buyer: Some(claims.sub.clone()),
                session: Some(claims),
                ended,
            }),
            Err(refusal) => {
                state.metrics.count(refusal.outcome());
                // The edge keeps no list of ended sessions: it learns here.
                let ended = matches!(refusal, Refusal::Ended);
                let error = refusal.into_error();
                Err(if ended { error.session_ended(gate.event_id) } else { error })
            }
        }
    }
}

/// A checkout request whose gate may be checked by the statement that does
/// the work, saving the gate's own round trip. What the request presents
/// is verified here: a buyer session, or else an access token for the
/// event (the path's, or for a reservation the one the token names). The
/// statement then checks the rest before it reads or writes anything else
/// ([`GateCheck`]): for a buyer session that the event has no waiting room,
/// for an access token that it has one and that the token's session has
/// not ended. Whatever is left undecided goes through the full gate
/// ([`DeferredCheckout::check`]); with nothing verified, the gate runs here,
/// as [`Checkout`]'s does, so its refusals come before the body is read.
pub struct DeferredCheckout<T> {
    id: Uuid,
    gate: Deferred<T>,
}

enum Deferred<T> {
    /// Who the statement may take the buyer to be; the request's headers,
    /// for the gate.
    ToStatement {
        buyer: Provisional,
        headers: HeaderMap,
    },
    Checked(Checkout<T>),
}

enum Provisional {
    BuyerSession(String),
    /// An access token verified for `event`.
    Admitted {
        event: Uuid,
        claims: AccessClaims,
    },
}

impl<T: CheckoutTarget> FromRequestParts<AppState> for DeferredCheckout<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ApiPath(id) = ApiPath::<Uuid>::from_request_parts(parts, state).await?;
        let now = chrono::Utc::now().timestamp();
        let buyer = match state.buyers.buyer_of(&parts.headers, now) {
            Some(buyer) => Some(Provisional::BuyerSession(buyer)),
            None => admitted(T::ID_OF, id, &parts.headers, state, now),
        };
        let gate = match buyer {
            Some(buyer) => Deferred::ToStatement { buyer, headers: parts.headers.clone() },
            None => Deferred::Checked(Checkout::check(id, &parts.headers, state).await?),
        };
        Ok(Self { id, gate })
    }
}

/// A presented access token that verifies for the event it is for: the
/// path's, or for a reservation the one the token names (the statement
/// then checks that the reservation is that event's).
fn admitted(id_of: IdOf, id: Uuid, headers: &HeaderMap, state: &AppState, now: i64) -> Option<Provisional> {
    let presented = presented_tokens(headers);
    let event = match id_of {
        IdOf::Event => id,
        IdOf::Reservation => {
            presented.iter().find_map(|token| queue_tokens::unverified_audience(token)?.parse().ok())?
        }
    };
    let claims = check(state.access.verifier(), &presented, event, &[], now).ok()?;
    Some(Provisional::Admitted { event, claims })
}

impl<T: CheckoutTarget> DeferredCheckout<T> {
    /// The path's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The buyer, and what the statement must check of the gate; `None` if
    /// the gate has decided already.
    pub fn provisional(&self) -> Option<(&str, GateCheck<'_>)> {
        match &self.gate {
            Deferred::ToStatement { buyer: Provisional::BuyerSession(buyer), .. } => {
                Some((buyer, GateCheck::BuyerSession))
            }
            Deferred::ToStatement { buyer: Provisional::Admitted { event, claims }, .. } => {
                Some((&claims.sub, GateCheck::AccessSession { event: *event, session: &claims.jti }))
            }
            Deferred::Checked(_) => None,
        }
    }

    /// The waiting-room session of a step its statement may let through.
    pub fn access_session(&self) -> Option<&AccessClaims> {
        self.verified_token().map(|(_, claims)| claims)
    }

    /// Tells the edge that the order its statement let through ended the
    /// waiting-room session (the settle ended it: migration 0013).
    pub fn ended_by_order(&self) -> Option<SessionEnded> {
        self.verified_token().map(|(event, _)| session_ended_header(event))
    }

    /// The verified access token the statement may take the buyer from, and its event.
    fn verified_token(&self) -> Option<(Uuid, &AccessClaims)> {
        match &self.gate {
            Deferred::ToStatement { buyer: Provisional::Admitted { event, claims }, .. } => {
                Some((*event, claims))
            }
            _ => None,
        }
    }

    /// The full gate, when the statement could not decide.
    pub async fn check(self, state: &AppState) -> Result<Checkout<T>, ApiError> {
        match self.gate {
            Deferred::ToStatement { headers, .. } => Checkout::check(self.id, &headers, state).await,
            Deferred::Checked(checkout) => Ok(checkout),
        }
    }
}

impl<T> Checkout<T> {
    /// The buyer: the access token's subject, or the buyer session.
    pub fn buyer(&self) -> Result<&str, ApiError> {
        self.buyer.as_deref().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "buyer_session_required",
                "start a buyer session first: POST /api/v1/buyer-sessions, then send its buyer_token as a bearer token",
            )
        })
    }

    /// Whether the request's session has ended (only on targets that
    /// [replay after the end](CheckoutTarget::REPLAYS_AFTER_END)).
    pub fn session_ended(&self) -> bool {
        self.ended
    }

    /// The waiting-room session this request came with (none on events
    /// without a queue).
    pub fn access_session(&self) -> Option<&AccessClaims> {
        self.session.as_ref()
    }

    /// Ends the waiting-room session this request came with; returns the
    /// header that tells the edge.
    pub async fn end_session(&self, db: &PgPool) -> Result<Option<SessionEnded>, sqlx::Error> {
        match &self.session {
            Some(session) => end(db, session).await.map(|()| Some(session_ended_header(self.event))),
            None => Ok(None),
        }
    }

    /// Tells the edge that the order this request paid for ended its
    /// waiting-room session (the settle ended it: migration 0013).
    pub fn ended_by_order(&self) -> Option<SessionEnded> {
        self.session.as_ref().map(|_| session_ended_header(self.event))
    }
}

/// End the caller's waiting-room session: the edge calls it when a visitor
/// leaves the queue. Idempotent.
#[utoipa::path(delete, path = "/api/v1/events/{id}/access", tag = "queue", security(("accessToken" = [])),
    params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Ended (also when it had already)"),
    (status = 401, body = Problem, description = "No valid access token"),
    (status = 403, body = Problem, description = "`access_token_wrong_event`"),
    (status = 404, body = Problem, description = "Not an event id"),
))]
async fn delete_access(
    State(db): State<PgPool>,
    State(access): State<AccessKeys>,
    ApiPath(event): ApiPath<Uuid>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let now = chrono::Utc::now().timestamp();
    let claims = check(access.verifier(), &presented_tokens(&headers), event, &[], now)
        .map_err(Refusal::into_error)?;
    end(&db, &claims).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(delete_access))
}
