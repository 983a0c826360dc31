//! Cooldowns: one decision per person and gate per cooldown period, so a person standing at the door (or
//! walking out of view and back) does not flood Home Assistant and the audit log.
//!
//! Times are media time (`Frame::pts`), so a replay run faster than real time keeps real cooldowns.

use std::collections::HashMap;
use std::time::Duration;

/// Last decision time per (gate, person); `None` is the unknown face.
#[derive(Debug, Default)]
pub struct Cooldowns {
    period: Duration,
    last: HashMap<(String, Option<String>), Duration>,
}

impl Cooldowns {
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            last: HashMap::new(),
        }
    }

    /// Whether a decision about `person` at `gate` may be taken at `now`; if so it is recorded.
    pub fn try_take(&mut self, gate: &str, person: Option<&str>, now: Duration) -> bool {
        // Forget expired entries so the map stays as small as the set of recent visitors.
        let period = self.period;
        self.last
            .retain(|_, t| now.saturating_sub(*t) < period && *t <= now);
        let key = (gate.to_string(), person.map(str::to_string));
        if self.last.contains_key(&key) {
            return false;
        }
        self.last.insert(key, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_decision_per_person_and_gate_per_period() {
        let s = Duration::from_secs;
        let mut c = Cooldowns::new(s(10));
        assert!(c.try_take("door", Some("ann"), s(0)));
        assert!(!c.try_take("door", Some("ann"), s(9)));
        assert!(c.try_take("lift", Some("ann"), s(9)));
        assert!(c.try_take("door", Some("bob"), s(9)));
        assert!(c.try_take("door", None, s(9)));
        assert!(!c.try_take("door", None, s(12)));
        assert!(c.try_take("door", Some("ann"), s(10)));
    }
}
