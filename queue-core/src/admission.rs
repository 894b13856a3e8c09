//! Admission control: how far the queue's front (the *frontier*) may move.
//!
//! Positions `1..=admitted` may enter. Entry credit accrues at
//! `new_users_per_minute` from the sale start, is spent one credit per
//! admitted visitor, and is capped by `total_active_users` minus the
//! sessions still active, so the origin never sees more than it was sized
//! for. Credit saved while nobody waits is capped at ten seconds' worth:
//! an empty room lets arrivals straight through, a long idle spell cannot
//! release a flood.
//!
//! The frontier is a small record in Redis, replaced by compare-and-swap on
//! its `version`. It moves only when a visitor whose turn has come asks
//! (see [`Frontier::is_due`]), so status polls of everyone else read it and
//! write nothing. A move is decided here as a [`Proposal`] and applied in
//! one Redis script (`scripts::ADMIT`), the only place that knows exactly
//! how many tickets are issued and how many sessions are active;
//! [`Proposal::apply`] is that script's specification.

use serde::{Deserialize, Serialize};

/// The limits the organizer set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub per_minute: u32,
    pub max_active: u32,
    /// Milliseconds since the epoch when admissions begin (the sale start).
    pub opens_ms: i64,
    /// How long a checkout session lasts.
    pub session_seconds: u32,
}

impl Limits {
    fn per_ms(&self) -> f64 {
        self.per_minute as f64 / 60_000.0
    }

    fn per_second(&self) -> f64 {
        self.per_minute as f64 / 60.0
    }

    fn burst(&self) -> f64 {
        (self.per_minute as f64 / 6.0).max(1.0)
    }

    /// The slowest the room can turn over when every session is taken:
    /// each one ends within its duration.
    fn turnover_per_second(&self) -> f64 {
        self.max_active as f64 / f64::from(self.session_seconds.max(1))
    }
}

/// How long the measured admission rate remembers, in seconds.
const RATE_MEMORY_SECONDS: f64 = 60.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Frontier {
    pub version: u64,
    /// Positions `1..=admitted` have been let in.
    pub admitted: u64,
    /// Unspent entry credit at `at_ms`.
    pub credit: f64,
    pub at_ms: i64,
    /// Measured admissions per second while people were waiting; 0 until
    /// measured.
    pub rate: f64,
    /// Visitors were still waiting after this move: the time until the
    /// next one measures the admission rate. After an idle spell it does not.
    #[serde(default)]
    pub backlog: bool,
    /// The active-session cap held this move back: visitors enter as
    /// sessions end, not as credit accrues.
    #[serde(default)]
    pub capped: bool,
}

/// The outcome of one step: the next frontier and how many positions it
/// newly admits (`next.admitted - admitted`).
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub next: Frontier,
    pub newly_admitted: u64,
}

/// A move of the frontier decided at `at_ms`, before the exact counts of
/// issued tickets and active sessions are known. The next rate is linear
/// in the number admitted, so the script that learns that number can
/// finish the record without any rule of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// The frontier this proposal moves (compare-and-swap on its version).
    pub version: u64,
    pub admitted: u64,
    /// Credit available at `at_ms`, before any is spent.
    pub credit: f64,
    pub at_ms: i64,
    /// The next rate is `rate_base + rate_per_admission * newly_admitted`.
    pub rate_base: f64,
    pub rate_per_admission: f64,
    /// Whether the frontier it moves was held back by the cap.
    pub capped: bool,
    /// The rate to assume when the cap begins to bind: from then on,
    /// visitors enter as sessions end, which the measurement follows.
    pub rate_when_capped: f64,
}

impl Proposal {
    /// At most this many may enter, whatever the counts.
    pub fn max_newly(&self) -> u64 {
        self.credit.floor() as u64
    }

    /// This proposal applied to `current`, a frontier someone moved since
    /// the proposal's version: the credit, less what those moves admitted.
    /// Credit only accrues with time, so what was available at `at_ms` from
    /// the older frontier, less what was spent since, never exceeds what is
    /// available from `current` (at the configured rate, up to the burst):
    /// the rate holds without a second round trip. None if the proposal
    /// predates `current`'s move or nothing would be left; the proposal as
    /// made if `current` is its version. The rate's measurement then spans
    /// the whole interval from the older frontier, admissions since counted.
    pub fn rebased(&self, current: &Frontier) -> Option<Proposal> {
        if current.version == self.version {
            return Some(self.clone());
        }
        let since = current.admitted.checked_sub(self.admitted)?;
        let usable =
            current.version > self.version && current.at_ms <= self.at_ms && self.max_newly() > since;
        usable.then(|| Proposal {
            version: current.version,
            admitted: current.admitted,
            credit: self.credit - since as f64,
            rate_base: self.rate_base + self.rate_per_admission * since as f64,
            capped: current.capped,
            ..self.clone()
        })
    }

    /// The move given `issued` tickets and `active` sessions and reserved
    /// entry slots: what the `ADMIT` script computes, step for step.
    pub fn apply(&self, issued: u64, active: u64, max_active: u32) -> Step {
        let waiting = issued.saturating_sub(self.admitted);
        let free = u64::from(max_active).saturating_sub(active);
        let wanted = self.max_newly().min(waiting);
        let newly_admitted = wanted.min(free);
        let capped = newly_admitted < wanted;
        let rate = if capped && !self.capped {
            self.rate_when_capped
        } else {
            self.rate_base + self.rate_per_admission * newly_admitted as f64
        };
        Step {
            next: Frontier {
                version: self.version + 1,
                admitted: self.admitted + newly_admitted,
                credit: self.credit - newly_admitted as f64,
                at_ms: self.at_ms,
                rate,
                backlog: waiting > newly_admitted,
                capped,
            },
            newly_admitted,
        }
    }
}

impl Frontier {
    /// Credit available at `now_ms`, before any is spent.
    pub fn credit_at(&self, limits: &Limits, now_ms: i64) -> f64 {
        let since = self.at_ms.max(limits.opens_ms);
        let elapsed = (now_ms - since).max(0) as f64;
        (self.credit + elapsed * limits.per_ms()).min(limits.burst())
    }

    /// Whether the visitor at `position` would get in if the frontier moved
    /// now: only such a visitor moves it, so writes scale with admissions,
    /// not with polls.
    pub fn is_due(&self, limits: &Limits, now_ms: i64, position: u64) -> bool {
        position > self.admitted && position <= self.admitted + self.credit_at(limits, now_ms).floor() as u64
    }

    /// Whether `position` may have been admitted by now if this frontier
    /// was read at `read_ms`: whoever moved it since cannot have spent more
    /// than the credit then plus what accrued after.
    pub fn may_have_reached(&self, limits: &Limits, read_ms: i64, now_ms: i64, position: u64) -> bool {
        let accrued = (now_ms - read_ms.max(limits.opens_ms)).max(0) as f64 * limits.per_ms();
        position as f64 <= self.admitted as f64 + self.credit_at(limits, read_ms) + accrued
    }

    /// The move to propose at `now_ms`.
    pub fn propose(&self, limits: &Limits, now_ms: i64) -> Proposal {
        let now_ms = now_ms.max(self.at_ms);
        let elapsed_s = (now_ms - self.at_ms.max(limits.opens_ms)).max(0) as f64 / 1000.0;
        // Until measured, assume the configured rate: one short interval says little.
        let previous = if self.rate > 0.0 { self.rate } else { limits.per_second() };
        // Only an interval in which people waited throughout measures the
        // rate (EWMA: `previous + weight * (observed - previous)`).
        let (rate_base, rate_per_admission) = if self.backlog && elapsed_s > 0.0 {
            let weight = 1.0 - (-elapsed_s / RATE_MEMORY_SECONDS).exp();
            (previous * (1.0 - weight), weight / elapsed_s)
        } else {
            (previous, 0.0)
        };
        Proposal {
            version: self.version,
            admitted: self.admitted,
            credit: self.credit_at(limits, now_ms),
            at_ms: now_ms,
            rate_base,
            rate_per_admission,
            capped: self.capped,
            rate_when_capped: limits.turnover_per_second().min(limits.per_second()),
        }
    }

    /// Moves the frontier to `now_ms` given `issued` tickets so far and
    /// `active` sessions (and reserved entry slots) that have not expired.
    pub fn step(&self, limits: &Limits, now_ms: i64, issued: u64, active: u64) -> Step {
        self.propose(limits, now_ms).apply(issued, active, limits.max_active)
    }

    /// The admission rate to expect, in visitors per second: the measured
    /// one (never above the setting), or the setting until measured. While
    /// the cap binds, the measurement follows the rate at which sessions
    /// end, starting from every session running its full duration.
    pub fn expected_rate(&self, limits: &Limits) -> f64 {
        let configured = limits.per_second();
        if self.rate > 0.0 { self.rate.min(configured) } else { configured }
    }

    /// Seconds until `position` is likely admitted.
    pub fn estimated_wait_seconds(&self, limits: &Limits, now_ms: i64, position: u64) -> u64 {
        let behind_frontier = position.saturating_sub(self.admitted) as f64;
        if behind_frontier == 0.0 {
            return 0;
        }
        // Saved credit lets the next ones in at once, unless the cap holds them.
        let credit = if self.capped { 0.0 } else { self.credit_at(limits, now_ms) };
        let still_needed = (behind_frontier - credit).max(0.0);
        let until_open = ((limits.opens_ms - now_ms).max(0) as f64 / 1000.0).ceil();
        (until_open + still_needed / self.expected_rate(limits).max(f64::MIN_POSITIVE)).ceil() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: i64 = 1_000_000;

    fn limits(per_minute: u32, max_active: u32) -> Limits {
        Limits { per_minute, max_active, opens_ms: OPEN, session_seconds: 600 }
    }

    /// A deterministic pseudo-random sequence for simulated pollers.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, bound: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) % bound
        }
    }

    /// Ten thousand visitors wait; each second a random sample of them polls
    /// and whoever is due moves the frontier. Over a simulated minute the
    /// admissions match the configured rate within 10%.
    #[test]
    fn admission_rate_follows_the_setting_over_a_simulated_minute() {
        for per_minute in [60, 600, 6_000] {
            let l = limits(per_minute, 1_000_000);
            let mut frontier = Frontier::default();
            let mut rng = Lcg(per_minute as u64);
            for second in 0..60 {
                for poll in 0..200 {
                    let now = OPEN + second * 1000 + poll * 5;
                    let position = frontier.admitted + 1 + rng.next(50);
                    if frontier.is_due(&l, now, position) {
                        frontier = frontier.step(&l, now, 10_000, 0).next;
                    }
                }
            }
            let admitted = frontier.step(&l, OPEN + 60_000, 10_000, 0).next.admitted as f64;
            let ratio = admitted / per_minute as f64;
            assert!((0.9..=1.1).contains(&ratio), "{per_minute}/min admitted {admitted} in a minute");
        }
    }

    /// Eight instances each propose from the frontier they last saw, often
    /// several moves old, and each proposal is applied rebased on the
    /// frontier as it stands (as the `ADMIT` script does). At every moment
    /// the admissions stay within what the rate has accrued since the
    /// opening, and over a simulated minute they still reach the rate.
    #[test]
    fn racing_instances_never_admit_faster_than_the_rate() {
        for per_minute in [60, 600, 6_000] {
            let l = limits(per_minute, 1_000_000);
            let mut frontier = Frontier::default();
            let mut seen = vec![Frontier::default(); 8];
            let mut rng = Lcg(7 + per_minute as u64);
            let mut rebased = 0;
            for tick in 1..=12_000 {
                let now = OPEN + tick * 5;
                let instance = rng.next(8) as usize;
                let proposal = seen[instance].propose(&l, now);
                if let Some(applied) = proposal.rebased(&frontier) {
                    rebased += usize::from(applied.version != proposal.version);
                    frontier = applied.apply(1_000_000, 0, l.max_active).next;
                }
                // An instance learns the frontier from its own answers only.
                seen[instance] = frontier.clone();
                let accrued = (now - OPEN) as f64 * l.per_ms();
                assert!(
                    frontier.admitted as f64 <= accrued + 1e-6,
                    "{per_minute}/min: {frontier:?} at {now}"
                );
            }
            assert!(rebased > 0, "{per_minute}/min: the instances raced");
            let ratio = frontier.admitted as f64 / per_minute as f64;
            assert!(
                (0.9..=1.0).contains(&ratio),
                "{per_minute}/min admitted {} in a minute",
                frontier.admitted
            );
            let measured = frontier.rate / l.per_second();
            assert!(
                (0.8..=1.2).contains(&measured),
                "{per_minute}/min measured {} per second",
                frontier.rate
            );
        }
    }

    /// A proposal rebased on a frontier moved since gives up what those
    /// moves admitted, and nothing when that was all of it or when it
    /// predates the move.
    #[test]
    fn a_rebased_proposal_spends_only_what_is_left() {
        let l = limits(600, 1_000);
        let old = Frontier { version: 3, admitted: 10, at_ms: OPEN, backlog: true, ..Frontier::default() };
        let proposal = old.propose(&l, OPEN + 1_000);
        assert_eq!(proposal.max_newly(), 10);
        let moved = Frontier { version: 5, admitted: 14, at_ms: OPEN + 500, ..old.clone() };
        let rebased = proposal.rebased(&moved).expect("credit left");
        assert_eq!((rebased.version, rebased.admitted, rebased.max_newly()), (5, 14, 6));
        assert_eq!(proposal.rebased(&old), Some(proposal.clone()), "its own version: as made");
        let spent = Frontier { admitted: 20, ..moved.clone() };
        assert_eq!(proposal.rebased(&spent), None, "nothing left");
        let later = Frontier { at_ms: OPEN + 1_001, ..moved.clone() };
        assert_eq!(proposal.rebased(&later), None, "made before the latest move");
        let behind = Frontier { version: 2, ..moved };
        assert_eq!(proposal.rebased(&behind), None, "an older frontier than the proposal's");
    }

    #[test]
    fn never_more_active_than_allowed() {
        let l = limits(6_000, 50);
        let mut frontier = Frontier::default();
        let mut active = 0u64;
        for second in 1..=120 {
            let step = frontier.step(&l, OPEN + second * 1000, 100_000, active);
            active += step.newly_admitted;
            assert!(active <= 50, "second {second}: {active} active");
            // Sessions end now and then; freed slots are reused.
            if second % 10 == 0 {
                active -= 20;
            }
            frontier = step.next;
        }
        assert!(frontier.admitted >= 50 + 11 * 20, "freed slots are reused: {}", frontier.admitted);
    }

    #[test]
    fn an_empty_room_lets_arrivals_straight_through_but_never_floods() {
        let l = limits(600, 1_000);
        let idle = Frontier { at_ms: OPEN, ..Frontier::default() };
        // An hour later, one visitor arrives and enters at once.
        let hour = OPEN + 3_600_000;
        assert!(idle.is_due(&l, hour, 1));
        let step = idle.step(&l, hour, 1, 0);
        assert_eq!(step.newly_admitted, 1);
        // Ten thousand arrive together: only ten seconds' worth goes in.
        let step = idle.step(&l, hour, 10_000, 0);
        assert_eq!(step.newly_admitted, 100);
    }

    #[test]
    fn nothing_accrues_before_the_sale_opens() {
        let l = limits(600, 1_000);
        let frontier = Frontier::default();
        assert_eq!(frontier.step(&l, OPEN - 5_000, 500, 0).newly_admitted, 0);
        assert!(!frontier.is_due(&l, OPEN, 1));
        assert_eq!(frontier.step(&l, OPEN + 1_000, 500, 0).newly_admitted, 10);
    }

    #[test]
    fn only_visitors_within_reach_of_the_credit_are_due() {
        let l = limits(600, 1_000);
        let frontier = Frontier { admitted: 100, at_ms: OPEN, ..Frontier::default() };
        let now = OPEN + 500; // 5 credits
        assert!(!frontier.is_due(&l, now, 100), "already admitted");
        assert!(frontier.is_due(&l, now, 105));
        assert!(!frontier.is_due(&l, now, 106));
    }

    #[test]
    fn waits_are_estimated_from_the_measured_rate() {
        let l = limits(600, 1_000);
        let frontier = Frontier { admitted: 100, at_ms: OPEN, rate: 5.0, ..Frontier::default() };
        assert_eq!(frontier.estimated_wait_seconds(&l, OPEN, 100), 0);
        assert_eq!(frontier.estimated_wait_seconds(&l, OPEN, 150), 10);
        // Never faster than configured even if a burst was measured.
        let bursty = Frontier { rate: 500.0, ..frontier.clone() };
        assert_eq!(bursty.estimated_wait_seconds(&l, OPEN, 200), 10);
        // Before the sale, the countdown is part of the wait.
        let early = Frontier::default();
        assert_eq!(early.estimated_wait_seconds(&l, OPEN - 30_000, 10), 31);
    }

    #[test]
    fn the_measured_rate_starts_from_the_setting_and_follows_a_slowdown() {
        let l = limits(600, 1_000_000);
        let mut frontier = Frontier { at_ms: OPEN, ..Frontier::default() };
        // A burst in the first milliseconds does not look like a huge rate.
        frontier = frontier.step(&l, OPEN + 5, 10_000, 0).next;
        assert!((frontier.rate - 10.0).abs() < 0.5, "{}", frontier.rate);
        // Capacity-bound: nobody enters for two minutes.
        for second in 1..=120 {
            frontier = frontier.step(&l, OPEN + second * 1000, 10_000, 1_000_000).next;
        }
        assert!(frontier.rate < 1.5, "the estimate follows what really happens: {}", frontier.rate);
    }

    #[test]
    fn versions_advance_for_compare_and_swap() {
        let l = limits(600, 1_000);
        let step = Frontier::default().step(&l, OPEN + 1_000, 5, 0);
        assert_eq!(step.next.version, 1);
        assert_eq!(step.next.admitted, 5);
        assert_eq!(step.next.step(&l, OPEN + 1_000, 5, 5).next.version, 2);
    }
}
