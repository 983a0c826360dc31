//! Events (access, enrollment, gate actions) that happen while the broker is unreachable.
//!
//! Policy: events are held here (not in the MQTT client, which would send them in any order after an
//! arbitrary delay) and delivered in order, once, after the reconnect; an event older than `max_age` by then
//! is dropped and counted, because an automation acting on a stale arrival ("unlock for Alice" ten minutes
//! late) is worse than none. States need no queue: they are retained and all republished on reconnect.
//! At most `capacity` events are held; beyond that the oldest go (also counted).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One event to publish (QoS 1, not retained).
#[derive(Clone, Debug, PartialEq)]
pub struct QueuedEvent {
    pub topic: String,
    pub payload: Vec<u8>,
    pub at: Instant,
}

/// A bounded, age-limited FIFO.
#[derive(Debug)]
pub struct EventQueue {
    items: VecDeque<QueuedEvent>,
    max_age: Duration,
    capacity: usize,
    overflowed: u64,
}

/// What [`EventQueue::drain`] gives back: the events to send, in order, and how many were too old.
#[derive(Debug, PartialEq)]
pub struct Drained {
    pub deliver: Vec<QueuedEvent>,
    pub expired: u64,
    /// Dropped earlier because the queue was full.
    pub overflowed: u64,
}

impl EventQueue {
    pub fn new(max_age: Duration, capacity: usize) -> Self {
        Self {
            items: VecDeque::new(),
            max_age,
            capacity: capacity.max(1),
            overflowed: 0,
        }
    }

    pub fn push(&mut self, e: QueuedEvent) {
        if self.items.len() == self.capacity {
            self.items.pop_front();
            self.overflowed += 1;
        }
        self.items.push_back(e);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Empties the queue at `now`: events no older than `max_age` to deliver, the rest counted.
    pub fn drain(&mut self, now: Instant) -> Drained {
        let mut deliver = Vec::new();
        let mut expired = 0;
        for e in self.items.drain(..) {
            if now.saturating_duration_since(e.at) <= self.max_age {
                deliver.push(e);
            } else {
                expired += 1;
            }
        }
        Drained {
            deliver,
            expired,
            overflowed: std::mem::take(&mut self.overflowed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: u8, at: Instant) -> QueuedEvent {
        QueuedEvent {
            topic: format!("t/{n}"),
            payload: vec![n],
            at,
        }
    }

    #[test]
    fn delivers_fresh_events_in_order_and_counts_stale_and_overflow() {
        let t0 = Instant::now();
        let mut q = EventQueue::new(Duration::from_secs(60), 3);
        q.push(ev(1, t0));
        q.push(ev(2, t0 + Duration::from_secs(50)));
        q.push(ev(3, t0 + Duration::from_secs(70)));
        q.push(ev(4, t0 + Duration::from_secs(80))); // pushes out 1
        let d = q.drain(t0 + Duration::from_secs(115));
        // 2 is 65 s old (expired); 3 is 45 s, 4 is 35 s old.
        assert_eq!(
            d.deliver.iter().map(|e| e.payload[0]).collect::<Vec<_>>(),
            [3, 4]
        );
        assert_eq!(d.expired, 1);
        assert_eq!(d.overflowed, 1);
        assert!(q.is_empty());
        assert_eq!(q.drain(t0).overflowed, 0);
    }
}
