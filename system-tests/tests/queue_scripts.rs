//! The waiting room's Redis scripts against a real Redis, held to the rules
//! they apply: `ADMIT` moves the frontier exactly as
//! `admission::Proposal::apply` specifies, for every combination of credit,
//! waiting tickets and free slots, and then lets in only admitted positions;
//! `JOIN_AND_ADMIT` does exactly what `JOIN` then `ADMIT` would.

mod support;

use queue_core::admission::{Frontier, Limits, Proposal};
use queue_core::keys::EventKeys;
use queue_core::scripts::{ADMIT, END, JOIN, JOIN_AND_ADMIT, proposal_args};
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
    command.extend(admit_args(proposal, position, visitor));
    redis.run(Value::Array(command)).await
}

/// `ADMIT`'s fourteen arguments.
fn admit_args(proposal: Option<&Proposal>, position: u64, visitor: &str) -> Vec<Value> {
    let mut args: Vec<Value> = proposal_args(proposal).into_iter().map(Value::from).collect();
    for arg in [
        CAP.to_string(),
        NOW.to_string(),
        (NOW + 60_000).to_string(),
        position.to_string(),
        visitor.to_owned(),
        (NOW + 600_000).to_string(),
        (7 * 24 * 3600 * 1000_i64).to_string(),
    ] {
        args.push(arg.into());
    }
    args
}

/// `JOIN`'s keys (the join counter of address "a" in minute 1 first) and
/// its arguments in `queue` mode with a limit of `limit` joins.
fn join_keys_and_args(keys: &EventKeys, limit: u64) -> (Vec<Value>, Vec<Value>) {
    let join_keys = [
        keys.joins("a", 1),
        keys.prequeue_counter(),
        keys.queue_counter(),
        keys.prequeue_size(),
        keys.prequeue_seed(),
    ];
    let args = ["queue".to_owned(), "ab".repeat(32), limit.to_string(), "120".to_owned()];
    (join_keys.into_iter().map(Value::from).collect(), args.into_iter().map(Value::from).collect())
}

/// Everything an event's scripts may have written.
async fn state(redis: &Redis, keys: &EventKeys) -> Value {
    json!([
        redis.run(json!(["GET", keys.frontier()])).await,
        redis.run(json!(["ZRANGE", keys.active(), 0, -1, "WITHSCORES"])).await,
        redis.run(json!(["GET", keys.queue_counter()])).await,
        redis.run(json!(["GET", keys.prequeue_size()])).await,
        redis.run(json!(["GET", keys.prequeue_seed()])).await,
        redis.run(json!(["GET", keys.joins("a", 1)])).await,
    ])
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
async fn a_proposal_older_than_the_latest_move_moves_nothing_and_says_so() {
    let redis = Redis { gateway: support::gateway(13).await };
    let frontier = Frontier { version: 4, admitted: 3, at_ms: NOW, backlog: true, ..Frontier::default() };
    let keys = event(&redis, &frontier, 50, 0).await;
    let behind = Frontier { version: 3, admitted: 1, at_ms: NOW - 2_000, ..frontier.clone() };
    // Made a second before someone else's move.
    let proposal = Proposal { credit: 10.0, ..behind.propose(&LIMITS, NOW - 1_000) };
    let reply = admit(&redis, &keys, Some(&proposal), 2, "second").await;
    assert_eq!((reply[0].as_str(), reply[3].as_u64()), (Some("session"), Some(1)), "{reply}");
    assert_eq!(frontier_of(&reply), frontier, "someone else's frontier stands");
}

#[tokio::test]
async fn a_stale_proposal_moves_only_what_is_left_of_its_credit() {
    let redis = Redis { gateway: support::gateway(13).await };
    let frontier =
        Frontier { version: 4, admitted: 3, at_ms: NOW - 500, backlog: true, ..Frontier::default() };
    let behind = Frontier { version: 3, admitted: 1, at_ms: NOW - 2_000, ..frontier.clone() };
    // Credit 2.5 to 10 from the older frontier, two of it spent since.
    for credit in [2.5, 3.0, 6.4, 10.0] {
        let keys = event(&redis, &frontier, 50, 0).await;
        let proposal = Proposal { credit, ..behind.propose(&LIMITS, NOW) };
        let reply = admit(&redis, &keys, Some(&proposal), 1_000, "far-back").await;
        match proposal.rebased(&frontier) {
            Some(rebased) => {
                let expected = rebased.apply(50, 0, CAP).next;
                let got = frontier_of(&reply);
                assert_eq!(
                    (got.version, got.admitted, reply[3].as_u64()),
                    (5, expected.admitted, Some(0)),
                    "{credit}"
                );
                assert!(
                    close(got.credit, expected.credit) && close(got.rate, expected.rate),
                    "{credit}: {got:?}"
                );
                assert_eq!(expected.admitted, 3 + (credit.floor() as u64 - 2), "{credit}");
            }
            None => {
                assert_eq!(credit.floor(), 2.0, "only a proposal whose credit was all spent is refused");
                assert_eq!((frontier_of(&reply), reply[3].as_u64()), (frontier.clone(), Some(1)), "{credit}");
            }
        }
    }
}

#[tokio::test]
async fn join_and_admit_does_what_a_join_then_an_admit_would() {
    let redis = Redis { gateway: support::gateway(13).await };
    let frontier = Frontier { version: 2, admitted: 4, at_ms: NOW - 2_000, ..Frontier::default() };
    // Let in on arrival; waiting (no credit); every slot taken; the
    // pre-queue (3 tickets) not yet frozen; over the address's limit.
    // The new ticket is the 8th place: 3 in the pre-queue, then the 5th queue ticket.
    let cases: [(&str, f64, u64, bool, u64, &str); 5] = [
        ("credit", 5.0, 0, false, 5, "session"),
        ("no credit", 0.0, 0, false, 5, "waiting"),
        ("every slot taken", 5.0, u64::from(CAP), false, 5, "waiting"),
        ("unfrozen pre-queue", 5.0, 0, true, 5, "session"),
        ("limited", 5.0, 0, false, 1, "limited"),
    ];
    for (case, credit, live, unfrozen, limit, outcome) in cases {
        let [separate, together] = [(), ()].map(|()| EventKeys::new(&Uuid::new_v4().to_string()));
        for keys in [&separate, &together] {
            redis.run(json!(["SET", keys.frontier(), serde_json::to_string(&frontier).unwrap()])).await;
            redis.run(json!(["SET", keys.queue_counter(), "4"])).await;
            for n in 0..live {
                redis.run(json!(["ZADD", keys.active(), NOW + 60_000, format!("v:live-{n}")])).await;
            }
            redis.run(json!(["SET", keys.prequeue_counter(), "3"])).await;
            if !unfrozen {
                redis.run(json!(["SET", keys.prequeue_size(), "3"])).await;
                redis.run(json!(["SET", keys.prequeue_seed(), "cd".repeat(32)])).await;
            }
            // One join from this address already this minute.
            redis.run(json!(["SET", keys.joins("a", 1), "1"])).await;
        }
        let proposal = Proposal { credit, ..frontier.propose(&LIMITS, NOW) };

        let (join_keys, join_args) = join_keys_and_args(&separate, limit);
        let mut command = vec![json!("EVAL"), json!(JOIN), json!(5)];
        command.extend(join_keys);
        command.extend(join_args);
        let joined = redis.run(Value::Array(command)).await;
        let mut expected = joined.as_array().unwrap().clone();
        if joined[0] == "main" {
            let position = joined[2].as_u64().unwrap() + joined[1].as_u64().unwrap();
            let admitted = admit(&redis, &separate, Some(&proposal), position, "visitor").await;
            expected.extend(admitted.as_array().unwrap().iter().cloned());
        }

        let (join_keys, join_args) = join_keys_and_args(&together, limit);
        let mut command = vec![json!("EVAL"), json!(JOIN_AND_ADMIT), json!(8)];
        command.extend(join_keys);
        command.extend([together.frontier(), together.active(), together.settings()].map(Value::from));
        command.extend(join_args);
        // The position sent is a placeholder: the script uses the new ticket's.
        command.extend(admit_args(Some(&proposal), 0, "visitor"));
        let reply = redis.run(Value::Array(command)).await;

        assert_eq!(reply, Value::Array(expected), "{case}: the same answer");
        assert_eq!(state(&redis, &separate).await, state(&redis, &together).await, "{case}: the same state");
        let reached = if reply[0] == "main" { &reply[4] } else { &reply[0] };
        assert_eq!(reached, outcome, "{case}: {reply}");
    }
}
