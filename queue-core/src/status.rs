//! What a visitor is told when they ask where they stand.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Prequeue,
    Waiting,
    Admitted,
    Paused,
    SoldOut,
    Closed,
}

/// Why a visitor in line still waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// Others are ahead; admissions run at the configured rate.
    InLine,
    /// Checkout holds as many buyers as it may: the line moves as they finish.
    CheckoutFull,
}

/// The body of `GET /api/v1/events/{id}/queue/status` (and of a join).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub state: State,
    pub event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ahead: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_wait_seconds: Option<u64>,
    /// In the pre-queue: the wait from now, shortest and longest, as the
    /// place drawn at the start decides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_range_seconds: Option<[u64; 2]>,
    /// While waiting in line: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<WaitReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_after_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sale_starts_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkout_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Status {
    pub fn new(state: State, event_id: &str) -> Self {
        Self {
            state,
            event_id: event_id.to_owned(),
            ticket: None,
            position: None,
            ahead: None,
            estimated_wait_seconds: None,
            wait_range_seconds: None,
            reason: None,
            refresh_after_seconds: None,
            sale_starts_at: None,
            queue_token: None,
            access_token: None,
            checkout_url: None,
            message: None,
        }
    }
}

/// When to ask again: rarely far back, often near the front, never sooner
/// than it can matter, and spread by `jitter` (uniform in `0..1`) so a
/// million pollers do not arrive in lockstep.
pub fn refresh_after_seconds(ahead: u64, estimated_wait_seconds: u64, jitter: f64) -> u64 {
    let (low, high) = match ahead {
        0..100 => (3.0, 5.0),
        100..1_000 => (10.0, 20.0),
        _ => (30.0, 60.0),
    };
    let spread = low + (high - low) * jitter.clamp(0.0, 1.0);
    // Near one's turn, come back when it is due (at least a second apart).
    spread.min(estimated_wait_seconds.max(1) as f64).round() as u64
}

/// A pre-queue visitor's wait from now: the time to the start, plus
/// anything from nothing (drawn first) to admitting everyone who `joined`
/// so far at `per_minute` (drawn last).
pub fn prequeue_wait_range_seconds(until_start_ms: i64, joined: u64, per_minute: u32) -> [u64; 2] {
    let until_start = until_start_ms.max(0).div_euclid(1000) as u64 + u64::from(until_start_ms % 1000 > 0);
    let admitting = (joined as f64 * 60.0 / f64::from(per_minute.max(1))).ceil() as u64;
    [until_start, until_start + admitting]
}

/// When a pre-queue visitor asks again: every 30-60 s while the start is
/// far; across the start, never just before it, and spread over a window
/// that grows with the pre-queue (a second per hundred, at most 30 s, half
/// the time an admitted place is held), so the crowd does not ask in the
/// same second. Places are drawn at the start, so nobody can be told
/// sooner that they are among the first.
pub fn prequeue_refresh_after_seconds(until_start_ms: i64, joined: u64, jitter: f64) -> u64 {
    let jitter = jitter.clamp(0.0, 1.0);
    let until_start = (until_start_ms.max(0) as f64 / 1000.0).ceil();
    let far = 30.0 + 30.0 * jitter;
    if until_start > far + 30.0 {
        return far.round() as u64;
    }
    let window = (joined as f64 / 100.0).clamp(1.0, 30.0);
    (until_start + window * jitter).ceil().max(1.0) as u64
}

/// The checkout path a visitor is sent to once admitted.
pub fn checkout_path(event_id: &str) -> String {
    format!("/events/{event_id}/checkout")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_grow_rarer_with_distance_from_the_front() {
        assert_eq!(refresh_after_seconds(5, 600, 0.0), 3);
        assert_eq!(refresh_after_seconds(5, 600, 1.0), 5);
        assert_eq!(refresh_after_seconds(500, 600, 0.5), 15);
        assert_eq!(refresh_after_seconds(50_000, 6_000, 0.0), 30);
        assert_eq!(refresh_after_seconds(50_000, 6_000, 1.0), 60);
    }

    #[test]
    fn jitter_spreads_pollers_over_the_whole_band() {
        let values: std::collections::BTreeSet<u64> =
            (0..=30).map(|i| refresh_after_seconds(10_000, 9_999, i as f64 / 30.0)).collect();
        assert_eq!(values.len(), 31, "{values:?}");
    }

    #[test]
    fn a_visitor_about_to_enter_is_told_to_come_back_soon() {
        assert_eq!(refresh_after_seconds(2, 1, 0.9), 1);
        assert_eq!(refresh_after_seconds(2, 0, 0.9), 1);
    }

    #[test]
    fn the_prequeue_asks_across_the_start_once_and_spread_out() {
        // Far from the start: the usual band.
        assert_eq!(prequeue_refresh_after_seconds(600_000, 1_500, 0.0), 30);
        assert_eq!(prequeue_refresh_after_seconds(600_000, 1_500, 1.0), 60);
        // Close to it: after it, never before, over fifteen seconds for 1,500.
        assert_eq!(prequeue_refresh_after_seconds(40_500, 1_500, 0.0), 41);
        assert_eq!(prequeue_refresh_after_seconds(40_500, 1_500, 1.0), 56);
        assert_eq!(prequeue_refresh_after_seconds(0, 10, 0.0), 1);
        assert_eq!(prequeue_refresh_after_seconds(0, 1_000_000, 1.0), 30);
    }

    #[test]
    fn the_prequeue_wait_spans_first_to_last_place() {
        assert_eq!(prequeue_wait_range_seconds(59_001, 1_200, 600), [60, 180]);
        assert_eq!(prequeue_wait_range_seconds(-5, 0, 600), [0, 0]);
    }

    #[test]
    fn json_leaves_out_what_does_not_apply() {
        let status = Status { position: Some(3), ..Status::new(State::Waiting, "e") };
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            serde_json::json!({"state": "waiting", "event_id": "e", "position": 3})
        );
    }
}
