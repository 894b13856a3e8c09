//! Redis keys of the waiting room. Every key of one event carries the
//! event in a `{hash tag}` ([`wire::names::event_key_prefix`]), so a Redis
//! Cluster keeps them in one slot and the Lua steps that touch several of
//! them stay atomic.

pub struct EventKeys {
    prefix: String,
}

impl EventKeys {
    pub fn new(event_id: &str) -> Self {
        Self { prefix: wire::names::event_key_prefix(event_id) }
    }

    /// The event's settings as the origin publishes them (JSON).
    pub fn settings(&self) -> String {
        wire::names::settings_key_under(&self.prefix)
    }
    /// The admission frontier (JSON, see `admission::Frontier`).
    pub fn frontier(&self) -> String {
        format!("{}:frontier", self.prefix)
    }
    /// Ticket counter of the pre-queue.
    pub fn prequeue_counter(&self) -> String {
        format!("{}:pre", self.prefix)
    }
    /// Ticket counter after the sale start.
    pub fn queue_counter(&self) -> String {
        format!("{}:main", self.prefix)
    }
    /// Size of the pre-queue, fixed at the first join or poll after the start.
    pub fn prequeue_size(&self) -> String {
        format!("{}:pre:size", self.prefix)
    }
    /// The shuffle seed (hex), drawn once with the size.
    pub fn prequeue_seed(&self) -> String {
        format!("{}:pre:seed", self.prefix)
    }
    /// Sorted set of sessions (`v:{visitor}`), entry slots reserved for
    /// admitted positions (`r:{position}`) and finished visits (see
    /// [`crate::scripts`]).
    pub fn active(&self) -> String {
        format!("{}:active", self.prefix)
    }
    /// Joins from one client address in one minute (counted with the
    /// ticket, in the same script).
    pub fn joins(&self, client: &str, minute: i64) -> String {
        format!("{}:ip:{client}:{minute}", self.prefix)
    }
    /// Hash of refused tokens by reason.
    pub fn rejected(&self) -> String {
        format!("{}:rejected", self.prefix)
    }
    /// A proof-of-work challenge already spent.
    pub fn spent_challenge(&self, jti: &str) -> String {
        format!("{}:pow:{jti}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_an_event_share_a_hash_tag() {
        let keys = EventKeys::new("e1");
        for key in [
            keys.frontier(),
            keys.active(),
            keys.prequeue_counter(),
            keys.queue_counter(),
            keys.joins("::1", 7),
        ] {
            assert!(key.starts_with("q:{e1}:"), "{key}");
        }
        assert_eq!(
            keys.settings(),
            wire::names::room_settings_key("e1"),
            "where the origin publishes settings"
        );
    }
}
