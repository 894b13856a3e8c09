//! The phase of a sale that an event's waiting-room settings
//! ([`RoomSettings`], as the origin publishes them) imply at a given moment.

use chrono::{DateTime, Utc};
pub use wire::room::RoomSettings;

/// Where the sale stands for someone arriving now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The queue is off: everyone goes straight to checkout.
    Open,
    /// Not open yet and no pre-queue to join.
    NotYetOpen,
    /// Joins are taken and will be shuffled at the sale start.
    Prequeue,
    /// The sale runs; joins are FIFO after the pre-queue.
    Selling,
    Paused,
    SoldOut,
    Closed,
}

/// The rules the waiting room reads from an event's settings.
pub trait SaleClock {
    /// Where the sale stands at `now`.
    fn phase(&self, now: DateTime<Utc>) -> Phase;
    /// Milliseconds since the epoch from which admissions accrue.
    fn admissions_open_ms(&self) -> i64;
}

impl SaleClock for RoomSettings {
    fn phase(&self, now: DateTime<Utc>) -> Phase {
        if matches!(self.status.as_str(), "closed" | "cancelled" | "draft")
            || self.sale_ends_at.is_some_and(|end| now >= end)
        {
            return Phase::Closed;
        }
        if self.sold_out {
            return Phase::SoldOut;
        }
        if !self.enabled {
            return Phase::Open;
        }
        match self.sale_starts_at {
            Some(start) if now < start => match self.prequeue_starts_at {
                Some(pre) if now >= pre => Phase::Prequeue,
                _ => Phase::NotYetOpen,
            },
            _ if self.paused => Phase::Paused,
            _ => Phase::Selling,
        }
    }

    fn admissions_open_ms(&self) -> i64 {
        self.sale_starts_at.map_or(0, |s| s.timestamp_millis())
    }
}

#[cfg(test)]
pub(crate) fn example() -> RoomSettings {
    RoomSettings {
        event_id: "e1".into(),
        title: "Aurora".into(),
        status: "on_sale".into(),
        sold_out: false,
        sale_starts_at: Some("2027-01-01T10:00:00Z".parse().unwrap()),
        sale_ends_at: None,
        enabled: true,
        paused: false,
        new_users_per_minute: 600,
        total_active_users: 1000,
        session_duration_seconds: 600,
        prequeue_starts_at: Some("2027-01-01T09:30:00Z".parse().unwrap()),
        pow_difficulty: 0,
        message: String::new(),
        accent_color: "#5b3cc4".into(),
        timezone: "Europe/Berlin".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn phases_follow_the_clock_and_the_organizer() {
        let s = example();
        assert_eq!(s.phase(at("2027-01-01T09:00:00Z")), Phase::NotYetOpen);
        assert_eq!(s.phase(at("2027-01-01T09:30:00Z")), Phase::Prequeue);
        assert_eq!(s.phase(at("2027-01-01T10:00:00Z")), Phase::Selling);
        assert_eq!(
            RoomSettings { paused: true, ..s.clone() }.phase(at("2027-01-01T10:00:00Z")),
            Phase::Paused
        );
        assert_eq!(
            RoomSettings { sold_out: true, ..s.clone() }.phase(at("2027-01-01T10:00:00Z")),
            Phase::SoldOut
        );
        assert_eq!(
            RoomSettings { enabled: false, ..s.clone() }.phase(at("2027-01-01T10:00:00Z")),
            Phase::Open
        );
        let ended = RoomSettings { sale_ends_at: Some(at("2027-01-01T11:00:00Z")), ..s.clone() };
        assert_eq!(ended.phase(at("2027-01-01T11:00:00Z")), Phase::Closed);
        assert_eq!(
            RoomSettings { status: "cancelled".into(), ..s }.phase(at("2027-01-01T10:00:00Z")),
            Phase::Closed
        );
    }
}
