//! Lock and lift drivers: they turn [`Action`]s into commands with a deadline and confirm them by the board's
//! state updates (the native API has no command acknowledgement). Every action ends in an [`ActionOutcome`]
//! that the audit log and Home Assistant consume.
//!
//! Never late: a command is written only before `decided + deadline`, and an unlock the board has not
//! confirmed by then is aborted: the connection is reset (the bytes still queued in the kernel, or stuck
//! behind a stalled path, are discarded) and a lock is sent once the board is reachable again.

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::client::{Client, Command, SendError, StateEvent};
use super::entities::{key_for, EntityState, LockState};
use crate::decide::{Action, Decision, Verdict};

/// A command not written within this time of the decision is dropped, and an unlock not confirmed within it
/// is aborted and followed by a relock: a door must not open late.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(2);
/// How long to wait for the state update confirming a lock or lift command (an unlock: until the deadline).
pub const DEFAULT_CONFIRM: Duration = Duration::from_secs(3);

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum OutcomeKind {
    /// Sent, and the board reported the expected state.
    Confirmed,
    /// Sent, but no confirming state arrived within the confirmation timeout.
    Unconfirmed,
    /// Never sent (deadline passed, client shut down, nothing to drive it with).
    Dropped { reason: String },
}

/// What a driver did: a decision's [`Action`], or a manual lock (debug command, HA-initiated relock).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum DriverAction {
    Unlock { lock: String },
    Lock { lock: String },
    CallLift { floor: i32 },
}

impl From<Action> for DriverAction {
    fn from(a: Action) -> DriverAction {
        match a {
            Action::Unlock { lock } => DriverAction::Unlock { lock },
            Action::CallLift { floor } => DriverAction::CallLift { floor },
        }
    }
}

/// One action's outcome, for the audit log and Home Assistant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionOutcome {
    pub gate: String,
    #[serde(flatten)]
    pub action: DriverAction,
    #[serde(flatten)]
    pub outcome: OutcomeKind,
    /// Decision to command written on the socket, in ms (none if never sent).
    pub sent_ms: Option<f64>,
    /// Decision to confirming state update, in ms (none if not confirmed).
    pub confirmed_ms: Option<f64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The timing of one command: decided when, must be written within `deadline`, confirmed within `confirm`.
#[derive(Clone, Copy)]
struct Timing {
    decided: Instant,
    deadline: Duration,
    confirm: Duration,
}

/// Sends `cmd` before `decided + deadline`, then waits up to `confirm` for a state update accepted by `ok`.
/// With `abort_with: Some(relock)` (an unlock) the wait ends at the deadline, and an unconfirmed command
/// makes the client reset the connection and send `relock` after reconnecting.
async fn execute(
    client: &Client,
    gate: &str,
    action: DriverAction,
    cmd: Command,
    t: Timing,
    ok: impl Fn(&StateEvent) -> bool,
    abort_with: Option<Command>,
) -> ActionOutcome {
    let Timing {
        decided,
        deadline,
        confirm,
    } = t;
    let mut events = client.subscribe(); // before sending, so the confirmation cannot slip past
    let mut out = ActionOutcome {
        gate: gate.into(),
        action,
        outcome: OutcomeKind::Unconfirmed,
        sent_ms: None,
        confirmed_ms: None,
    };
    let sent = match client.send(cmd, decided + deadline).await {
        Ok(at) => at,
        Err(e) => {
            let reason = match e {
                SendError::Expired => format!(
                    "not sent within {} ms of the decision (board unreachable)",
                    deadline.as_millis()
                ),
                SendError::Shutdown => e.to_string(),
            };
            out.outcome = OutcomeKind::Dropped { reason };
            return out;
        }
    };
    out.sent_ms = Some(ms(sent.saturating_duration_since(decided)));
    let wait = async {
        loop {
            match events.recv().await {
                Ok(ev) if ok(&ev) => return Some(ev.at),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    };
    let until = match abort_with {
        Some(_) => (sent + confirm).min(decided + deadline),
        None => sent + confirm,
    };
    if let Ok(Some(at)) = tokio::time::timeout_at(until.into(), wait).await {
        out.outcome = OutcomeKind::Confirmed;
        out.confirmed_ms = Some(ms(at.saturating_duration_since(decided)));
    } else if let Some(relock) = abort_with {
        let reason = format!(
            "{gate}: unlock not confirmed within {} ms of the decision",
            deadline.as_millis()
        );
        client.abort_and_relock(relock, reason).await;
    }
    out
}

/// Drives one lock entity (by object id, e.g. `door_lock`).
#[derive(Clone)]
pub struct LockDriver {
    pub client: Client,
    pub gate: String,
    pub object_id: String,
    pub deadline: Duration,
    pub confirm: Duration,
}

impl LockDriver {
    pub fn new(
        client: Client,
        gate: impl Into<String>,
        object_id: impl Into<String>,
    ) -> LockDriver {
        LockDriver {
            client,
            gate: gate.into(),
            object_id: object_id.into(),
            deadline: DEFAULT_DEADLINE,
            confirm: DEFAULT_CONFIRM,
        }
    }

    fn key(&self) -> u32 {
        key_for(&self.object_id)
    }

    /// Last reported state (`None` before the first state dump).
    pub fn state(&self) -> Option<LockState> {
        match self.client.state(self.key())? {
            EntityState::Lock(l) => Some(l),
            _ => None,
        }
    }

    pub async fn unlock(&self, decided: Instant) -> ActionOutcome {
        self.command(false, decided).await
    }

    pub async fn lock(&self, decided: Instant) -> ActionOutcome {
        self.command(true, decided).await
    }

    async fn command(&self, lock: bool, decided: Instant) -> ActionOutcome {
        let key = self.key();
        let (cmd, want) = if lock {
            (Command::Lock { key }, LockState::Locked)
        } else {
            (Command::Unlock { key }, LockState::Unlocked)
        };
        let lock_id = self.object_id.clone();
        let action = if lock {
            DriverAction::Lock { lock: lock_id }
        } else {
            DriverAction::Unlock { lock: lock_id }
        };
        let ok = move |ev: &StateEvent| ev.key == key && ev.state == EntityState::Lock(want);
        let abort_with = (!lock).then_some(Command::Lock { key });
        execute(
            &self.client,
            &self.gate,
            action,
            cmd,
            Timing {
                decided,
                deadline: self.deadline,
                confirm: self.confirm,
            },
            ok,
            abort_with,
        )
        .await
    }
}

/// Drives the lift: target-floor select, current-floor sensor, moving binary sensor (object ids as in
/// `firmware/common/lift-logic.yaml`).
#[derive(Clone)]
pub struct LiftDriver {
    pub client: Client,
    pub gate: String,
    pub target: String,
    pub current: String,
    pub moving: String,
    pub deadline: Duration,
    pub confirm: Duration,
}

impl LiftDriver {
    pub fn new(client: Client, gate: impl Into<String>) -> LiftDriver {
        LiftDriver {
            client,
            gate: gate.into(),
            target: "target_floor".into(),
            current: "current_floor".into(),
            moving: "lift_moving".into(),
            deadline: DEFAULT_DEADLINE,
            confirm: DEFAULT_CONFIRM,
        }
    }

    pub fn current_floor(&self) -> Option<i32> {
        match self.client.state(key_for(&self.current))? {
            EntityState::Number(f) => Some(f.round() as i32),
            _ => None,
        }
    }

    pub fn moving(&self) -> Option<bool> {
        match self.client.state(key_for(&self.moving))? {
            EntityState::Binary(b) => Some(b),
            _ => None,
        }
    }

    /// Calls the cabin to `floor`; confirmed when the board's target-floor select reports it.
    pub async fn call(&self, floor: i32, decided: Instant) -> ActionOutcome {
        let key = key_for(&self.target);
        let cmd = Command::Select {
            key,
            option: floor.to_string(),
        };
        let want = EntityState::Text(floor.to_string());
        let ok = move |ev: &StateEvent| ev.key == key && ev.state == want;
        execute(
            &self.client,
            &self.gate,
            DriverAction::CallLift { floor },
            cmd,
            Timing {
                decided,
                deadline: self.deadline,
                confirm: self.confirm,
            },
            ok,
            None,
        )
        .await
    }

    /// Waits until the cabin reports `floor` and is not moving.
    pub async fn wait_arrival(&self, floor: i32, timeout: Duration) -> bool {
        let mut events = self.client.subscribe();
        let arrived =
            |d: &LiftDriver| d.current_floor() == Some(floor) && d.moving() == Some(false);
        let wait = async {
            while !arrived(self) {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = events.recv().await {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }
}

/// The drivers of one gate; carries out a [`Decision`]'s actions.
#[derive(Clone, Default)]
pub struct GateActuator {
    pub gate: String,
    pub lock: Option<LockDriver>,
    pub lift: Option<LiftDriver>,
}

impl GateActuator {
    /// When the decision was taken, on the monotonic clock (the deadline counts from the decision, not
    /// from when it reached us).
    pub fn decided_instant(d: &Decision) -> Instant {
        let age = SystemTime::now().duration_since(d.at).unwrap_or_default();
        Instant::now().checked_sub(age).unwrap_or_else(Instant::now)
    }

    /// Carries out a granted decision's actions concurrently; other verdicts never actuate.
    pub async fn act(&self, d: &Decision) -> Vec<ActionOutcome> {
        let Verdict::Granted { actions } = &d.verdict else {
            return Vec::new();
        };
        let decided = Self::decided_instant(d);
        let mut tasks = Vec::new();
        for a in actions.clone() {
            let me = self.clone();
            tasks.push(tokio::spawn(async move { me.one(a, decided).await }));
        }
        let mut out = Vec::new();
        for t in tasks {
            if let Ok(o) = t.await {
                out.push(o);
            }
        }
        out
    }

    async fn one(&self, a: Action, decided: Instant) -> ActionOutcome {
        let dropped = |a: Action, why: &str| ActionOutcome {
            gate: self.gate.clone(),
            action: a.into(),
            outcome: OutcomeKind::Dropped { reason: why.into() },
            sent_ms: None,
            confirmed_ms: None,
        };
        match (&a, &self.lock, &self.lift) {
            (Action::Unlock { lock }, Some(l), _) => {
                let driver = LockDriver {
                    object_id: lock.clone(),
                    ..l.clone()
                };
                driver.unlock(decided).await
            }
            (Action::CallLift { floor }, _, Some(l)) => l.call(*floor, decided).await,
            (Action::Unlock { .. }, None, _) => dropped(a, "this gate has no lock board"),
            (Action::CallLift { .. }, _, None) => dropped(a, "this gate has no lift board"),
        }
    }
}

impl GateActuator {
    /// The drivers for a configured gate, on a shared board connection (`client`, one per board).
    pub fn from_config(g: &crate::config::GateConfig, client: Option<Client>) -> GateActuator {
        let Some(client) = client else {
            return GateActuator {
                gate: g.name.clone(),
                ..GateActuator::default()
            };
        };
        let lock = g
            .lock
            .as_ref()
            .map(|l| LockDriver::new(client.clone(), g.name.clone(), l.clone()));
        let lift = g.lift.as_ref().map(|l| LiftDriver {
            target: l.target_floor.clone(),
            current: l.current_floor.clone(),
            ..LiftDriver::new(client.clone(), g.name.clone())
        });
        GateActuator {
            gate: g.name.clone(),
            lock,
            lift,
        }
    }
}
