//! The JSON HA receives for facts (pure functions, unit-tested): access events, the last-person state, the
//! enrollment and gate-action events. Plain JSON, readable in MQTT Explorer.

use serde_json::{json, Value};

use crate::decide::{Action, Decision, Verdict};
use crate::esphome::driver::{ActionOutcome, DriverAction, OutcomeKind};

/// The access event type of a verdict: the one word list of [`crate::decide::VerdictKind`] (a notify-only
/// verdict is `notify_only`, so an automation that unlocks on `granted` never fires for it).
pub fn event_type(v: &Verdict) -> &'static str {
    v.kind().as_str()
}

/// What the gate does, in words: `unlock door_lock`, `call_lift 3`, `notify`, `none`.
pub fn action_text(v: &Verdict) -> String {
    match v {
        Verdict::Granted { actions } if !actions.is_empty() => actions
            .iter()
            .map(|a| match a {
                Action::Unlock { lock } => format!("unlock {lock}"),
                Action::CallLift { floor } => format!("call_lift {floor}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Verdict::NotifyOnly => "notify".into(),
        _ => "none".into(),
    }
}

fn round3(x: f32) -> f64 {
    (x as f64 * 1000.0).round() / 1000.0
}

fn unix(d: &Decision) -> f64 {
    d.at.duration_since(std::time::UNIX_EPOCH)
        .map(|t| (t.as_secs_f64() * 1000.0).round() / 1000.0)
        .unwrap_or(0.0)
}

/// The access event payload: `event_type` plus the attributes HA shows on the event entity.
pub fn access_event(d: &Decision) -> Value {
    let reason = match &d.verdict {
        Verdict::Denied { reason } => Some(reason.clone()),
        _ => None,
    };
    json!({
        "event_type": event_type(&d.verdict),
        "person": d.person,
        "confidence": round3(d.confidence),
        "liveness": round3(d.liveness),
        "gate": d.gate,
        "action": action_text(&d.verdict),
        "reason": reason,
        "track": d.track_id,
        "at": unix(d),
    })
}

/// The last-person sensor's retained JSON state (its value is `person`, `unknown` when not recognised).
pub fn last_person(d: &Decision) -> Value {
    let person = match (&d.verdict, &d.person) {
        (Verdict::Unknown, _) | (_, None) => "unknown".to_string(),
        (_, Some(p)) => p.clone(),
    };
    json!({
        "person": person,
        "verdict": event_type(&d.verdict),
        "confidence": round3(d.confidence),
        "liveness": round3(d.liveness),
        "gate": d.gate,
        "action": action_text(&d.verdict),
        "at": unix(d),
    })
}

/// The enrollment event: `enrolled` (with the sample count) or `failed` (with the reason).
pub fn enrollment_event(name: &str, ok: bool, samples: u32, reason: Option<&str>) -> Value {
    json!({
        "event_type": if ok { "enrolled" } else { "failed" },
        "name": name,
        "samples": samples,
        "reason": reason,
    })
}

/// The gate-action event from an ESPHome driver's outcome, with the person and track of the decision it
/// carried out (the access event's `person` and `track`).
pub fn gate_event(o: &ActionOutcome, person: Option<&str>, track: u64) -> Value {
    let (kind, reason) = match &o.outcome {
        OutcomeKind::Confirmed => ("confirmed", None),
        OutcomeKind::Unconfirmed => ("unconfirmed", None),
        OutcomeKind::Dropped { reason } => ("dropped", Some(reason.clone())),
    };
    let action = match &o.action {
        DriverAction::Unlock { lock } => format!("unlock {lock}"),
        DriverAction::Lock { lock } => format!("lock {lock}"),
        DriverAction::CallLift { floor } => format!("call_lift {floor}"),
    };
    json!({
        "event_type": kind,
        "gate": o.gate,
        "person": person,
        "track": track,
        "action": action,
        "reason": reason,
        "sent_ms": o.sent_ms,
        "confirmed_ms": o.confirmed_ms,
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn decision(verdict: Verdict, person: Option<&str>) -> Decision {
        Decision {
            gate: "Front door".into(),
            track_id: 7,
            person: person.map(str::to_string),
            confidence: 0.91234,
            liveness: 0.5,
            verdict,
            why: "test".into(),
            at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_250),
        }
    }

    #[test]
    fn granted_event_lists_actions_and_attributes() {
        let d = decision(
            Verdict::Granted {
                actions: vec![
                    Action::Unlock {
                        lock: "door_lock".into(),
                    },
                    Action::CallLift { floor: 3 },
                ],
            },
            Some("Alice"),
        );
        assert_eq!(
            access_event(&d),
            json!({"event_type": "granted", "person": "Alice", "confidence": 0.912, "liveness": 0.5,
                   "gate": "Front door", "action": "unlock door_lock, call_lift 3", "reason": null,
                   "track": 7, "at": 1_700_000_000.25})
        );
        assert_eq!(last_person(&d)["person"], "Alice");
    }

    #[test]
    fn verdicts_map_to_event_types() {
        let unknown = decision(Verdict::Unknown, None);
        assert_eq!(access_event(&unknown)["event_type"], "unknown");
        assert_eq!(access_event(&unknown)["person"], Value::Null);
        assert_eq!(last_person(&unknown)["person"], "unknown");
        let spoof = decision(Verdict::Spoof, Some("Bob"));
        assert_eq!(access_event(&spoof)["event_type"], "spoof");
        assert_eq!(last_person(&spoof)["verdict"], "spoof");
        let notify = decision(Verdict::NotifyOnly, Some("Bob"));
        assert_eq!(access_event(&notify)["event_type"], "notify_only");
        assert_eq!(access_event(&notify)["action"], "notify");
        let denied = decision(
            Verdict::Denied {
                reason: "outside schedule".into(),
            },
            Some("Bob"),
        );
        assert_eq!(access_event(&denied)["event_type"], "denied");
        assert_eq!(access_event(&denied)["reason"], "outside schedule");
        assert_eq!(access_event(&denied)["action"], "none");
    }

    #[test]
    fn enrollment_and_gate_events() {
        assert_eq!(
            enrollment_event("Alice", false, 0, Some("two faces in view")),
            json!({"event_type": "failed", "name": "Alice", "samples": 0, "reason": "two faces in view"})
        );
        let o = ActionOutcome {
            gate: "Front door".into(),
            action: DriverAction::Unlock {
                lock: "door_lock".into(),
            },
            outcome: OutcomeKind::Dropped {
                reason: "board unreachable".into(),
            },
            sent_ms: None,
            confirmed_ms: None,
        };
        let e = gate_event(&o, Some("Alice"), 7);
        assert_eq!(e["event_type"], "dropped");
        assert_eq!((&e["person"], &e["track"]), (&json!("Alice"), &json!(7)));
        assert_eq!(e["action"], "unlock door_lock");
        assert_eq!(e["reason"], "board unreachable");
    }
}
