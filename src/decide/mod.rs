//! Access decisions: what a gate does about a face. The [`Decision`] is the seam every output subscribes to:
//! Home Assistant (MQTT events and states), the ESPHome lock and lift drivers, and the SQLite audit log.
//!
//! [`policy`] turns a recognised live person into a [`Verdict`] (access levels, schedules, gate actions);
//! [`cooldown`] keeps it to one decision per person and gate per cooldown.

pub mod cooldown;
pub mod policy;

pub use cooldown::Cooldowns;
pub use policy::{LocalTime, Policy};

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// What the gate should physically do for a granted person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Unlock the lock entity `lock` on the gate's ESPHome board.
    Unlock { lock: String },
    /// Call the lift to `floor`.
    CallLift { floor: i32 },
}

/// The outcome for one tracked face.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    /// Known, live and allowed: carry out the actions.
    Granted { actions: Vec<Action> },
    /// Known and live, but the access level only announces (never actuates).
    NotifyOnly,
    /// Known and live, but not allowed here or now (blocked, outside a schedule, floor not allowed).
    Denied { reason: String },
    /// Not clearly any enrolled person. Never actuates.
    Unknown,
    /// Failed liveness (photo, screen). Never actuates.
    Spoof,
}

/// One decision, as published and audited.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    /// The gate (camera + its lock or lift) that saw the face.
    pub gate: String,
    /// The face track the decision is about.
    pub track_id: u64,
    /// The recognised person, if any (also set for Spoof when the face matched someone).
    pub person: Option<String>,
    /// Match confidence in [0, 1].
    pub confidence: f32,
    /// Liveness score in [0, 1].
    pub liveness: f32,
    pub verdict: Verdict,
    #[serde(with = "unix_seconds")]
    pub at: SystemTime,
}

mod unix_seconds {
    use std::time::{SystemTime, UNIX_EPOCH};

    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        s.serialize_f64(secs)
    }
}
