//! Wait estimates in simulated time: crowds arrive, visitors poll when the
//! answers tell them to, whoever is due moves the frontier, sessions end.
//! Every estimate a visitor is shown is compared with when the frontier
//! really reached them. An estimate is right within 25%, or within five
//! seconds (one poll near the front) when little time is left; a visitor
//! was told right when most of what they were shown was.

use queue_core::admission::{Frontier, Limits};
use queue_core::shuffle::Shuffle;
use queue_core::status::{
    prequeue_refresh_after_seconds, prequeue_wait_range_seconds, refresh_after_seconds,
};

/// A deterministic pseudo-random sequence.
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Visitor {
    arrives_ms: i64,
    /// How long their session lasts once admitted (they buy and leave).
    session_ms: i64,
    position: u64,
    next_poll_ms: i64,
    admitted_ms: Option<i64>,
    /// (when, estimated seconds) as shown.
    shown: Vec<(i64, u64)>,
}

struct Room {
    limits: Limits,
    frontier: Frontier,
    issued: u64,
    /// When each running session ends.
    sessions: Vec<i64>,
}

impl Room {
    fn active(&self, now: i64) -> u64 {
        self.sessions.iter().filter(|end| **end > now).count() as u64
    }
}

/// Runs `visitors` (sorted by arrival) until all are admitted; returns the
/// share of visitors who were told right.
fn told_right(limits: Limits, mut frontier: Frontier, visitors: &mut [Visitor], seed: u64) -> f64 {
    let mut room = Room { limits, frontier: std::mem::take(&mut frontier), issued: 0, sessions: Vec::new() };
    let mut rng = Lcg(seed);
    let mut now = visitors.iter().map(|v| v.arrives_ms).min().unwrap();
    let mut arrived = 0;
    while visitors.iter().any(|v| v.admitted_ms.is_none()) {
        while arrived < visitors.len() && visitors[arrived].arrives_ms <= now {
            room.issued += 1;
            // Pre-queue visitors come with their drawn place and first poll.
            if visitors[arrived].position == 0 {
                visitors[arrived].position = room.issued;
                visitors[arrived].next_poll_ms = now;
            }
            arrived += 1;
        }
        for i in 0..arrived {
            if visitors[i].admitted_ms.is_some() || visitors[i].next_poll_ms > now {
                continue;
            }
            let position = visitors[i].position;
            if room.frontier.is_due(&room.limits, now, position) {
                let step = room.frontier.step(&room.limits, now, room.issued, room.active(now));
                for admitted in visitors[..arrived].iter_mut() {
                    if admitted.admitted_ms.is_none() && admitted.position <= step.next.admitted {
                        admitted.admitted_ms = Some(now);
                        room.sessions.push(now + admitted.session_ms);
                    }
                }
                room.frontier = step.next;
            }
            let visitor = &mut visitors[i];
            if visitor.admitted_ms.is_some() {
                continue;
            }
            let wait = room.frontier.estimated_wait_seconds(&room.limits, now, position);
            let ahead = position.saturating_sub(room.frontier.admitted + 1);
            visitor.shown.push((now, wait));
            visitor.next_poll_ms = now + refresh_after_seconds(ahead, wait, rng.unit()) as i64 * 1000;
        }
        now += 100;
    }
    let right = visitors
        .iter()
        .filter(|v| {
            let admitted = v.admitted_ms.unwrap();
            let good = v
                .shown
                .iter()
                .filter(|(at, wait)| {
                    let actual = (admitted - at) as f64 / 1000.0;
                    let error = (*wait as f64 - actual).abs();
                    error <= 0.25 * actual || error <= 5.0
                })
                .count();
            v.shown.is_empty() || good * 2 > v.shown.len()
        })
        .count();
    right as f64 / visitors.len() as f64
}

/// `count` visitors arriving evenly over `over_ms` from `from_ms`, with
/// sessions between `session_ms.0` and `.1`.
fn crowd(count: usize, from_ms: i64, over_ms: i64, session_ms: (i64, i64), seed: u64) -> Vec<Visitor> {
    let mut rng = Lcg(seed);
    (0..count)
        .map(|i| Visitor {
            arrives_ms: from_ms + over_ms * i as i64 / count as i64,
            session_ms: session_ms.0 + ((session_ms.1 - session_ms.0) as f64 * rng.unit()) as i64,
            position: 0,
            next_poll_ms: 0,
            admitted_ms: None,
            shown: Vec::new(),
        })
        .collect()
}

#[test]
fn a_fresh_sale_is_estimated_right() {
    let limits = Limits { per_minute: 600, max_active: 100_000, opens_ms: 0, session_seconds: 600 };
    let mut visitors = crowd(3_000, 0, 60_000, (300_000, 300_000), 1);
    let right = told_right(limits, Frontier::default(), &mut visitors, 2);
    assert!(right >= 0.8, "{:.0}% told right", right * 100.0);
}

#[test]
fn a_crowd_after_an_idle_hour_is_estimated_right() {
    let limits = Limits { per_minute: 600, max_active: 100_000, opens_ms: 0, session_seconds: 600 };
    // One visitor early on, admitted at once; then nobody for an hour.
    let mut early = crowd(1, 60_000, 1, (60_000, 60_000), 3);
    let mut visitors = crowd(3_000, 3_660_000, 60_000, (300_000, 300_000), 4);
    early.append(&mut visitors);
    let right = told_right(limits, Frontier::default(), &mut early, 5);
    assert!(right >= 0.8, "{:.0}% told right", right * 100.0);
}

#[test]
fn a_room_held_back_by_the_active_cap_is_estimated_right() {
    // Far more credit than seats: visitors enter as sessions end (60-180 s
    // each, against a configured limit of ten minutes).
    let limits = Limits { per_minute: 6_000, max_active: 200, opens_ms: 0, session_seconds: 600 };
    let mut visitors = crowd(1_500, 0, 30_000, (60_000, 180_000), 6);
    let right = told_right(limits, Frontier::default(), &mut visitors, 7);
    assert!(right >= 0.8, "{:.0}% told right", right * 100.0);
    // Nobody held back by the cap is told they are about to enter.
    let misled = visitors
        .iter()
        .filter(|v| v.shown.iter().any(|(at, wait)| *wait == 0 && v.admitted_ms.unwrap() - at > 30_000));
    assert_eq!(misled.count(), 0);
}

#[test]
fn the_prequeue_is_told_its_range_and_does_not_ask_all_at_once() {
    let start = 600_000;
    let limits = Limits { per_minute: 600, max_active: 100_000, opens_ms: start, session_seconds: 600 };
    let size = 1_500_u64;
    let mut rng = Lcg(8);
    // Joined over the ten minutes before the start; each polls as told.
    let mut polls = Vec::new();
    let mut last_range = Vec::new();
    let mut first_after = Vec::new();
    for n in 0..size {
        let joined_at = (start as u64 * n / size) as i64;
        let mut at = joined_at;
        loop {
            let joined = n + 1 + (size - n - 1) * (at as u64) / start as u64;
            let range = prequeue_wait_range_seconds(start - at, joined.max(n + 1), limits.per_minute);
            let next = at + prequeue_refresh_after_seconds(start - at, joined, rng.unit()) as i64 * 1000;
            if at != joined_at {
                polls.push(at);
            }
            if next >= start {
                last_range.push((at, range));
                first_after.push(next);
                break;
            }
            at = next;
        }
    }
    assert!(
        polls.iter().all(|at| *at < start - 1_000 || *at >= start),
        "nobody asks again in the last second"
    );
    let mut per_second = std::collections::BTreeMap::<i64, u64>::new();
    for at in &first_after {
        *per_second.entry((at - start) / 1000).or_default() += 1;
    }
    let busiest = per_second.values().max().unwrap();
    assert!(*busiest <= size / 10, "{busiest} of {size} ask in the same second after the start");

    // The draw, then the line as in every other test.
    let shuffle = Shuffle::new([7; 32], size);
    let mut visitors: Vec<Visitor> = (0..size)
        .map(|n| Visitor {
            arrives_ms: start,
            session_ms: 300_000,
            position: shuffle.place(n) + 1,
            next_poll_ms: first_after[n as usize],
            admitted_ms: None,
            shown: Vec::new(),
        })
        .collect();
    let right = told_right(limits, Frontier::default(), &mut visitors, 9);
    assert!(right >= 0.8, "after the start, {:.0}% told right", right * 100.0);
    let within = visitors
        .iter()
        .zip(&last_range)
        .filter(|(v, (at, [shortest, longest]))| {
            let actual = (v.admitted_ms.unwrap() - at) as f64 / 1000.0;
            actual >= *shortest as f64 - 5.0 && actual <= *longest as f64 + 5.0
        })
        .count();
    assert!(within as f64 >= 0.8 * size as f64, "{within} of {size} waited within the range they were shown");
}
