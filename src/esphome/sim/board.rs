//! The simulated board's device model: the same entities (names, hence object ids and keys) as the firmware
//! in `firmware/` (lock + lift on one board), a relock timer that restarts on every unlock, and a cabin that
//! takes `travel_per_floor` per floor. Safety mirrors the firmware: one direction at a time, always relocks.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::super::entities::{key_for, object_id_from_name, EntityKind, EntityState, LockState};

/// (kind, name) of every entity, as in firmware/common/*.yaml.
pub const ENTITIES: &[(EntityKind, &str)] = &[
    (EntityKind::Lock, "Door lock"),
    (EntityKind::BinarySensor, "Door contact"),
    (EntityKind::TextSensor, "Lock status"),
    (EntityKind::Sensor, "Current floor"),
    (EntityKind::BinarySensor, "Lift moving"),
    (EntityKind::Select, "Target floor"),
    (EntityKind::Button, "Call floor 0"),
    (EntityKind::Button, "Call floor 1"),
    (EntityKind::TextSensor, "Lift status"),
    (EntityKind::BinarySensor, "Floor 0 limit"),
    (EntityKind::BinarySensor, "Floor 1 limit"),
];

/// The lift's floors (select options "0", "1").
pub const FLOORS: i32 = 2;

pub fn key(name: &str) -> u32 {
    key_for(&object_id_from_name(name))
}

/// A command the board received, for tests ("was this ever executed, and when?").
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub at: Instant,
    pub what: String,
}

struct State {
    lock: LockState,
    relock_gen: u64,
    floor: i32,
    target: i32,
    moving: bool,
    move_gen: u64,
    received: Vec<Received>,
}

/// The device model shared by all connections to the simulated board.
pub struct Board {
    relock: Duration,
    travel_per_floor: Duration,
    state: Mutex<State>,
    changes: broadcast::Sender<(u32, EntityState)>,
}

impl Board {
    pub fn new(relock: Duration, travel_per_floor: Duration) -> Arc<Board> {
        let state = State {
            lock: LockState::Locked,
            relock_gen: 0,
            floor: 0,
            target: 0,
            moving: false,
            move_gen: 0,
            received: Vec::new(),
        };
        let (changes, _) = broadcast::channel(256);
        Arc::new(Board {
            relock,
            travel_per_floor,
            state: Mutex::new(state),
            changes,
        })
    }

    pub fn changes(&self) -> broadcast::Receiver<(u32, EntityState)> {
        self.changes.subscribe()
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn received(&self) -> Vec<Received> {
        self.st().received.clone()
    }

    pub fn lock_state(&self) -> LockState {
        self.st().lock
    }

    pub fn floor(&self) -> i32 {
        self.st().floor
    }

    /// Every entity's current state, keyed.
    pub fn snapshot(&self) -> Vec<(u32, EntityState)> {
        let s = self.st();
        let status = if s.moving {
            if s.target > s.floor {
                "moving up"
            } else {
                "moving down"
            }
        } else {
            "idle"
        };
        let lock_text = if s.lock == LockState::Unlocked {
            "unlocked"
        } else {
            "locked"
        };
        vec![
            (key("Door lock"), EntityState::Lock(s.lock)),
            (key("Door contact"), EntityState::Binary(false)),
            (key("Lock status"), EntityState::Text(lock_text.into())),
            (key("Current floor"), EntityState::Number(s.floor as f32)),
            (key("Lift moving"), EntityState::Binary(s.moving)),
            (key("Target floor"), EntityState::Text(s.target.to_string())),
            (key("Lift status"), EntityState::Text(status.into())),
            (
                key("Floor 0 limit"),
                EntityState::Binary(!s.moving && s.floor == 0),
            ),
            (
                key("Floor 1 limit"),
                EntityState::Binary(!s.moving && s.floor == 1),
            ),
        ]
    }

    /// Publishes the states that differ from `before` (ESPHome only sends changes).
    fn publish_since(&self, before: &[(u32, EntityState)]) {
        for (k, v) in self.snapshot() {
            if !before.iter().any(|(bk, bv)| *bk == k && *bv == v) {
                let _ = self.changes.send((k, v));
            }
        }
    }

    fn note(&self, what: String) {
        self.st().received.push(Received {
            at: Instant::now(),
            what,
        });
    }

    pub fn set_lock(self: &Arc<Board>, unlock: bool) {
        self.note(if unlock {
            "unlock".into()
        } else {
            "lock".into()
        });
        let before = self.snapshot();
        let gen = {
            let mut s = self.st();
            s.lock = if unlock {
                LockState::Unlocked
            } else {
                LockState::Locked
            };
            s.relock_gen += 1;
            s.relock_gen
        };
        self.publish_since(&before);
        if unlock {
            // Restarts on every unlock: only the newest timer may relock.
            let b = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(b.relock).await;
                let before = b.snapshot();
                {
                    let mut s = b.st();
                    if s.relock_gen != gen {
                        return;
                    }
                    s.lock = LockState::Locked;
                }
                b.publish_since(&before);
            });
        }
    }

    /// Calls the cabin to `floor` (ignored when out of range, as the firmware's select rejects it).
    pub fn call(self: &Arc<Board>, floor: i32) {
        self.note(format!("call {floor}"));
        if !(0..FLOORS).contains(&floor) {
            return;
        }
        let before = self.snapshot();
        let gen = {
            let mut s = self.st();
            s.target = floor;
            s.moving = s.floor != floor;
            s.move_gen += 1;
            s.move_gen
        };
        // The select echoes the accepted option even when it is unchanged (what HA shows as "called").
        let _ = self
            .changes
            .send((key("Target floor"), EntityState::Text(floor.to_string())));
        self.publish_since(&before);
        let b = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(b.travel_per_floor).await;
                let before = b.snapshot();
                {
                    let mut s = b.st();
                    if s.move_gen != gen || !s.moving {
                        return;
                    }
                    s.floor += (s.target - s.floor).signum();
                    s.moving = s.floor != s.target;
                }
                b.publish_since(&before);
                if !b.st().moving {
                    return;
                }
            }
        });
    }
}
