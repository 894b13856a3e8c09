//! The waiting room's Redis scripts against a real Redis, held to the rules
//! they apply: `ADMIT` moves the frontier exactly as
//! `admission::Proposal::apply` specifies, for every combination of credit,
//! waiting tickets and free slots, and then lets in only admitted positions.

mod support;

use queue_core::admission::{Frontier, Limits, Proposal};
use queue_core::keys::EventKeys;
use queue_core::scripts::{ADMIT, END, proposal_args};
use serde_json::{Value, json};
use uuid::Uuid;

struct Redis {
    gateway: String,
}

impl Redis {
    async fn run(&self, command: Value) -> Value {
        let reply = support::client()
            .post(format!("{}/", self.gateway))
            .bearer_auth(support::UPSTASH_TOKEN)
            .json(&command)
            .send()
            .await
            .unwrap();
        let body: Value = reply.json().await.unwrap();
        assert!(body.get("error").is_none(), "{command}: {body}");
        body["result"].clone()
    }
}

const NOW: i64 = 1_900_000_000_000;
const CAP: u32 = 10;
const LIMITS: Limits = Limits { per_minute: 600, max_active: CAP, opens_ms: 0, session_seconds: 600 };

/// One event's state: a frontier, `issued` tickets, `live` sessions and one
/// finished visit.
async fn event(redis: &Redis, frontier: &Frontier, issued: u64, live: u64) -> EventKeys {
    let keys = EventKeys::new(&Uuid::new_v4().to_string());
    redis.run(json!(["SET", keys.frontier(), serde_json::to_string(frontier).unwrap()])).await;
    redis.run(json!(["SET", keys.queue_counter(), issued.to_string()])).await;
    for n in 0..live {
        redis.run(json!(["ZADD", keys.active(), NOW + 60_000, format!("v:live-{n}")])).await;
    }
    redis.run(json!(["ZADD", keys.active(), NOW - 1, "v:lapsed"])).await;
    redis.run(json!(["ZADD", keys.active(), -(NOW - 5_000), "v:finished"])).await;
    keys
}

/// Runs `ADMIT` for `visitor` at `position` with `proposal` (or none).
async fn admit(
    redis: &Redis,
    keys: &EventKeys,
    proposal: Option<&Proposal>,
    position: u64,
    visitor: &str,
) -> Value {
    let proposed = proposal_args(proposal);
    let mut command = vec![
        json!("EVAL"),
        json!(ADMIT),
        json!(5),
        json!(keys.frontier()),
        json!(keys.active()),
        json!(keys.queue_counter()),
        json!(keys.prequeue_counter()),
        json!(keys.settings()),
    ];
    command.extend(proposed.into_iter().map(Value::from));
    for arg in [
        CAP.to_string(),
        NOW.to_string(),
        (NOW + 60_000).to_string(),
        position.to_string(),
        visitor.to_owned(),
        (NOW + 600_000).to_string(),
        (7 * 24 * 3600 * 1000_i64).to_string(),
    ] {
        command.push(arg.into());
    }
    redis.run(Value::Array(command)).await
}

fn frontier_of(reply: &Value) -> Frontier {
    serde_json::from_str(reply[2].as_str().unwrap()).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * (1.0 + b.abs())
}

#[tokio::test]
async fn admit_moves_the_frontier_exactly_as_the_rules_say() {
    let redis = Redis { gateway: support::gateway(13).await };
    let before = Frontier {
        version: 4,
        admitted: 20,
        credit: 0.5,
        at_ms: NOW - 3_000,
        rate: 2.0,
        backlog: true,
        capped: false,
    };
    // Credit 1 to 9, few to many waiting, slots free to none.
    for credit in [1.0, 3.7, 9.2] {
        for issued in [20, 22, 40] {
            for live in [0, 7, 10] {
                let proposal = Proposal {
                    version: before.version,
                    admitted: before.admitted,
                    credit,
                    at_ms: NOW,
                    rate_base: 1.5,
                    rate_per_admission: 0.25,
                    capped: false,
                    rate_when_capped: 0.125,
                };
                let keys = event(&redis, &before, issued, live).await;
                let reply = admit(&redis, &keys, Some(&proposal), 1_000, "far-back").await;
                // The one lapsed entry is gone; sessions are what is live.
                let expected = proposal.apply(issued, live, CAP);
                let got = frontier_of(&reply);
                let case =
                    format!("credit {credit}, issued {issued}, live {live}: {got:?} vs {:?}", expected.next);
                if expected.newly_admitted == 0 && !expected.next.capped {
                    assert_eq!(got, before, "nothing to do, nothing written: {case}");
                    continue;
                }
                assert_eq!(
                    (got.version, got.admitted, got.at_ms),
                    (5, expected.next.admitted, NOW),
                    "{case}"
                );
                assert!(
                    close(got.credit, expected.next.credit) && close(got.rate, expected.next.rate),
                    "{case}"
                );
                assert_eq!(
                    (got.backlog, got.capped),
                    (expected.next.backlog, expected.next.capped),
                    "{case}"
                );
                let slots = redis.run(json!(["ZCOUNT", keys.active(), NOW + 60_000, NOW + 60_000])).await;
                assert_eq!(slots.as_u64().unwrap(), live + expected.newly_admitted, "{case}");
                assert_eq!(reply[0], "waiting", "{case}");
            }
        }
    }
}

#[tokio::test]
async fn admit_lets_in_admitted_positions_once_and_finished_visits_never() {
    let redis = Redis { gateway: support::gateway(13).await };
    let frontier = Frontier { version: 1, admitted: 5, at_ms: NOW, ..Frontier::default() };
    let keys = event(&redis, &frontier, 30, 0).await;
    // A reserved slot becomes the visitor's session; asking again returns it.
    redis.run(json!(["ZADD", keys.active(), NOW + 1_000, "r:3"])).await;
    let entered = admit(&redis, &keys, None, 3, "third").await;
    assert_eq!((entered[0].as_str(), entered[1].as_i64()), (Some("session"), Some(NOW + 600_000)));
    assert_eq!(
        redis.run(json!(["ZSCORE", keys.active(), "r:3"])).await,
        Value::Null,
        "the slot became the session"
    );
    let again = admit(&redis, &keys, None, 3, "third").await;
    assert_eq!(again[1], entered[1]);
    // Not admitted yet: waiting, nothing written.
    assert_eq!(admit(&redis, &keys, None, 6, "sixth").await[0], "waiting");
    // A finished visit stays finished.
    assert_eq!(admit(&redis, &keys, None, 2, "finished").await[0], "ended");
    let end = json!(["EVAL", END, 1, keys.active(), "third", NOW.to_string()]);
    redis.run(end).await;
    assert_eq!(admit(&redis, &keys, None, 3, "third").await[0], "ended");
    // Every slot taken: an admitted visitor without a reservation waits for one.
    for n in 0..CAP {
        redis.run(json!(["ZADD", keys.active(), NOW + 60_000, format!("v:other-{n}")])).await;
    }
    assert_eq!(admit(&redis, &keys, None, 4, "fourth").await[0], "full");
}

#[tokio::test]
async fn a_paused_room_admits_nobody_new() {
    let redis = Redis { gateway: support::gateway(13).await };
    let frontier = Frontier { version: 2, admitted: 0, at_ms: NOW, backlog: true, ..Frontier::default() };
    let keys = event(&redis, &frontier, 50, 0).await;
    redis.run(json!(["SET", keys.settings(), json!({"paused": true}).to_string()])).await;
    let proposal = Proposal { credit: 10.0, ..frontier.propose(&LIMITS, NOW) };
    let reply = admit(&redis, &keys, Some(&proposal), 1, "first").await;
    assert_eq!((reply[0].as_str(), reply[3].as_u64()), (Some("waiting"), Some(0)));
    assert_eq!(frontier_of(&reply), frontier);
}

#[tokio::test]
async fn a_stale_proposal_moves_nothing_and_says_so() {
    let redis = Redis { gateway: support::gateway(13).await };
    let frontier = Frontier { version: 4, admitted: 3, at_ms: NOW, backlog: true, ..Frontier::default() };
    let keys = event(&redis, &frontier, 50, 0).await;
    let behind = Frontier { version: 3, admitted: 1, ..frontier.clone() };
    let proposal = Proposal { credit: 10.0, ..behind.propose(&LIMITS, NOW) };
    let reply = admit(&redis, &keys, Some(&proposal), 2, "second").await;
    assert_eq!((reply[0].as_str(), reply[3].as_u64()), (Some("session"), Some(1)), "{reply}");
    assert_eq!(frontier_of(&reply), frontier, "someone else's frontier stands");
}
