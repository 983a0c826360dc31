//! What the demo expected and what happened: one row per scene, the lock and lift histories, the access
//! events that reached MQTT. [`Summary::check`] lists every expectation that failed (the exit code is
//! non-zero when any did), [`Summary::table`] prints it for a person, and the JSON form is for tests.

use serde::Serialize;

use crate::esphome::ActionOutcome;

/// One scene of the scenario, after it played.
#[derive(Clone, Debug, Serialize)]
pub struct StepResult {
    pub step: String,
    /// The verdict that must come out (`None`: no decision at all).
    pub expected: Option<String>,
    /// Every decision's verdict kind during the scene, in order.
    pub verdicts: Vec<String>,
    /// The person of each decision (None for unknown).
    pub people: Vec<Option<String>>,
    /// Mean passive anti-spoof score of each decision's face.
    pub liveness: Vec<f32>,
    /// Commands the simulated boards received during the scene (`unlock`, `call 1`, ...).
    pub board_commands: Vec<String>,
    /// Outcomes of the actions carried out for the scene's decisions.
    pub actions: Vec<ActionOutcome>,
    pub frames: u32,
}

/// Timings of the run, seconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timings {
    pub models_s: f64,
    pub enroll_s: f64,
    pub scenes_s: f64,
    pub total_s: f64,
    pub frames: u64,
    /// Mean time to process one frame through the pipeline, ms.
    pub mean_frame_ms: f64,
}

/// Everything the demo reports at the end.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub steps: Vec<StepResult>,
    /// The door lock's reported states, in order, starting with the state before the first scene.
    pub lock_states: Vec<String>,
    /// The lift's reported floors, in order, starting with the floor before the first scene.
    pub lift_floors: Vec<i32>,
    /// The floor a grant calls the lift to.
    pub expected_floor: i32,
    /// Event types of the access events a subscriber received on the broker, in order.
    pub mqtt_events: Vec<String>,
    /// Rows in the audit log at the end (one per decision).
    pub audit_rows: usize,
    /// Where the live view was served.
    pub live_view: String,
    /// Size of the JPEG snapshot the live view served at the end (None: it did not serve one).
    pub snapshot_bytes: Option<usize>,
    pub broker: String,
    pub timings: Timings,
    /// Every expectation that failed, in words; empty when the demo succeeded.
    pub failures: Vec<String>,
}

impl Summary {
    /// Fills [`Summary::failures`] from the results.
    pub fn check(&mut self) {
        let mut f = Vec::new();
        let mut expected_events = Vec::new();
        for s in &self.steps {
            let want: Vec<String> = s.expected.iter().cloned().collect();
            if s.verdicts != want {
                f.push(format!(
                    "{}: expected {}, got {}",
                    s.step,
                    list_or_none(&want),
                    list_or_none(&s.verdicts)
                ));
            }
            expected_events.extend(want.iter().cloned());
            let granted = s.expected.as_deref() == Some("granted");
            if !granted && !s.board_commands.is_empty() {
                f.push(format!(
                    "{}: the boards received {} although nothing may actuate",
                    s.step,
                    s.board_commands.join(", ")
                ));
            }
            if granted {
                for a in &s.actions {
                    if a.outcome != crate::esphome::OutcomeKind::Confirmed {
                        f.push(format!("{}: action not confirmed: {:?}", s.step, a));
                    }
                }
                if s.actions.len() != 2 {
                    f.push(format!(
                        "{}: expected 2 actions (unlock, call the lift), got {}",
                        s.step,
                        s.actions.len()
                    ));
                }
            }
        }
        let locks = ["locked", "unlocked", "locked"].map(String::from).to_vec();
        if self.lock_states != locks {
            f.push(format!(
                "door lock went {}, expected locked -> unlocked -> locked",
                self.lock_states.join(" -> ")
            ));
        }
        if self.lift_floors != vec![0, self.expected_floor] {
            let floors: Vec<String> = self.lift_floors.iter().map(|x| x.to_string()).collect();
            f.push(format!(
                "lift went through floors {}, expected 0 -> {}",
                floors.join(" -> "),
                self.expected_floor
            ));
        }
        if self.mqtt_events != expected_events {
            f.push(format!(
                "MQTT access events received: {}, expected {}",
                list_or_none(&self.mqtt_events),
                list_or_none(&expected_events)
            ));
        }
        if self.snapshot_bytes.is_none() {
            f.push(format!(
                "the live view at {} served no snapshot",
                self.live_view
            ));
        }
        if self.audit_rows != expected_events.len() {
            f.push(format!(
                "the audit log has {} rows, expected one per decision ({})",
                self.audit_rows,
                expected_events.len()
            ));
        }
        self.failures = f;
    }

    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// The summary as lines of a table.
    pub fn table(&self) -> Vec<String> {
        let mut out = vec![format!(
            "  {:<36} {:<10} {:<10} {}",
            "scene", "expected", "got", "actuation"
        )];
        for s in &self.steps {
            let acts = if s.actions.is_empty() {
                "none".to_string()
            } else {
                s.actions
                    .iter()
                    .map(describe_action)
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            out.push(format!(
                "  {:<36} {:<10} {:<10} {}",
                s.step,
                s.expected.as_deref().unwrap_or("-"),
                if s.verdicts.is_empty() {
                    "-".to_string()
                } else {
                    s.verdicts.join(",")
                },
                acts
            ));
        }
        let floors: Vec<String> = self.lift_floors.iter().map(|x| x.to_string()).collect();
        out.push(format!("  door lock: {}", self.lock_states.join(" -> ")));
        out.push(format!("  lift floor: {}", floors.join(" -> ")));
        out.push(format!(
            "  MQTT access events on {}: {}",
            self.broker,
            list_or_none(&self.mqtt_events)
        ));
        out.push(format!("  audit log: {} rows", self.audit_rows));
        out.push(format!(
            "  live view: {} ({})",
            self.live_view,
            match self.snapshot_bytes {
                Some(b) => format!("snapshot served, {b} bytes"),
                None => "no snapshot served".into(),
            }
        ));
        let t = &self.timings;
        out.push(format!(
            "  time: models {:.1} s, enrollment {:.1} s, scenes {:.1} s ({} frames, {:.0} ms per frame), total {:.1} s",
            t.models_s, t.enroll_s, t.scenes_s, t.frames, t.mean_frame_ms, t.total_s
        ));
        out
    }
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// "unlock door_lock: confirmed in 12 ms", "lift to floor 1: confirmed in 8 ms".
pub fn describe_action(a: &ActionOutcome) -> String {
    use crate::esphome::{DriverAction, OutcomeKind};
    let what = match &a.action {
        DriverAction::Unlock { lock } => format!("unlock {lock}"),
        DriverAction::Lock { lock } => format!("lock {lock}"),
        DriverAction::CallLift { floor } => format!("lift to floor {floor}"),
    };
    let how = match (&a.outcome, a.confirmed_ms) {
        (OutcomeKind::Confirmed, Some(ms)) => format!("confirmed in {ms:.0} ms"),
        (OutcomeKind::Confirmed, None) => "confirmed".into(),
        (OutcomeKind::Unconfirmed, _) => "sent, not confirmed".into(),
        (OutcomeKind::Dropped { reason }, _) => format!("dropped ({reason})"),
    };
    format!("{what}: {how}")
}
