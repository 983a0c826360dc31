//! Access decisions: what a gate does about a face. The [`Decision`] is the seam every output subscribes to:
//! Home Assistant (MQTT events and states), the ESPHome lock and lift drivers, and the SQLite audit log.
//!
//! One rule decides, in one place: [`rule`] turns the [`Evidence`] the pipeline gathered about a track into a
//! [`Verdict`] and the reason for it (or "not yet", and why). [`policy`] is what the rule asks about a
//! recognised live person (access levels, [`schedule`]s, gate actions); [`Decider`] owns the rule, the
//! policy and the [`cooldown`] (one decision per person and gate per period) for one gate.
//! [`VerdictKind::as_str`] is the one word list (`granted`, `notify_only`, ...) every output uses.
//!
//! To change how facegate decides, change [`rule::Rule::judge`] and its table of tests.

pub mod cooldown;
mod decider;
pub mod policy;
pub mod rule;
pub mod schedule;

pub use cooldown::Cooldowns;
pub use decider::{Decider, Outcome};
pub use policy::{AccessLevel, GateActions, Policy, ScheduleError};
pub use rule::{Evidence, Identity, LiveVerdict, Rule, Ruling, Wait, UNKNOWN_AFTER};
pub use schedule::LocalTime;

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

/// The kind of a verdict, without its details: the word outputs use for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VerdictKind {
    Granted,
    NotifyOnly,
    Denied,
    Unknown,
    Spoof,
}

impl VerdictKind {
    /// Every kind, in the order outputs list them (Home Assistant's event types).
    pub const ALL: [VerdictKind; 5] = [
        VerdictKind::Granted,
        VerdictKind::NotifyOnly,
        VerdictKind::Denied,
        VerdictKind::Unknown,
        VerdictKind::Spoof,
    ];

    /// The one word for this kind, the same in MQTT events, the audit log, the live view and the demo.
    pub const fn as_str(self) -> &'static str {
        match self {
            VerdictKind::Granted => "granted",
            VerdictKind::NotifyOnly => "notify_only",
            VerdictKind::Denied => "denied",
            VerdictKind::Unknown => "unknown",
            VerdictKind::Spoof => "spoof",
        }
    }
}

impl std::fmt::Display for VerdictKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Verdict {
    /// What kind of verdict this is.
    pub fn kind(&self) -> VerdictKind {
        match self {
            Verdict::Granted { .. } => VerdictKind::Granted,
            Verdict::NotifyOnly => VerdictKind::NotifyOnly,
            Verdict::Denied { .. } => VerdictKind::Denied,
            Verdict::Unknown => VerdictKind::Unknown,
            Verdict::Spoof => VerdictKind::Spoof,
        }
    }
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
    /// Why, in words: the evidence the rule decided on ("Alice (confidence 0.93), live: passive anti-spoof
    /// 0.91 over 3 frames; level 'resident': granted").
    pub why: String,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_word_and_serde_agrees() {
        let words: Vec<&str> = VerdictKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            words,
            ["granted", "notify_only", "denied", "unknown", "spoof"]
        );
        // The JSON `kind` tag of a verdict (replay --json, /events) is the same word.
        for v in [
            Verdict::Granted { actions: vec![] },
            Verdict::NotifyOnly,
            Verdict::Denied { reason: "x".into() },
            Verdict::Unknown,
            Verdict::Spoof,
        ] {
            assert_eq!(serde_json::to_value(&v).unwrap()["kind"], v.kind().as_str());
        }
    }
}
