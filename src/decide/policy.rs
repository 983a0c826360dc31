//! The access policy of DESIGN.md: who may do what, where and when.
//!
//! A [`Policy`] is built once from the access levels and the gates' actions ([`Policy::new`]; the options
//! become these in `config`, which names the option of every bad schedule) and answers, for a recognised live
//! person at a gate at a local time, which [`Verdict`] applies: granted with the gate's actions, notify-only,
//! or denied with a reason a user understands. The [`rule`](super::rule) asks it; nothing else does.
//!
//! Rules, in order: a person whose level is not configured, or whose level is `blocked`, is denied; a level
//! restricted to some gates is denied elsewhere; a level with a schedule is denied outside it; a level that
//! does not actuate is notify-only; otherwise granted with the gate's actions (unlock its lock; call its lift
//! to the level's floor, which must be one the lift serves). Without configured levels the built-in ones apply:
//! `resident` (actuates everywhere), `notify` (announces only) and `blocked`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::schedule::{LocalTime, Window};
use super::{Action, Verdict};

/// The level that is always denied.
pub const BLOCKED: &str = "blocked";

/// An access level as the options write it: what people with it may do. (Owned here, deserialised as part
/// of the options.)
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessLevel {
    pub name: String,
    /// Whether a grant actuates (unlock / call the lift); false = announce only.
    #[serde(default)]
    pub actuate: bool,
    /// Gates (by name) this level opens; empty = all gates.
    #[serde(default)]
    pub gates: Vec<String>,
    /// The floor the lift is called to for people of this level; None = the lift is not called.
    #[serde(default)]
    pub floor: Option<i32>,
    /// Local-time windows in which the level is valid, e.g. "Mon-Fri 08:00-18:00"; empty = always.
    #[serde(default)]
    pub schedule: Vec<String>,
}

/// What a gate can do on a grant (from its options: the lock on its board, the floors of its lift).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct GateActions {
    /// The gate's name, as cameras refer to it.
    pub name: String,
    /// Object id of the lock to unlock.
    pub lock: Option<String>,
    /// Floors the gate's lift serves (None: no lift).
    pub floors: Option<Vec<i32>>,
}

/// A schedule window that does not parse: `access_levels[level].schedule[window]`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("access level {level}, schedule window {window}: {problem}")]
pub struct ScheduleError {
    /// Index of the level in the list given to [`Policy::new`].
    pub level: usize,
    /// Index of the window in that level's schedule.
    pub window: usize,
    pub problem: String,
}

/// An access level, parsed.
#[derive(Clone, Debug, PartialEq)]
struct LevelRule {
    actuate: bool,
    blocked: bool,
    gates: Vec<String>,
    floor: Option<i32>,
    schedule: Vec<Window>,
}

/// The whole policy: access levels and gate actions.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    levels: HashMap<String, LevelRule>,
    gates: HashMap<String, GateActions>,
}

impl Default for Policy {
    /// The built-in levels and no configured gates (decisions are published; nothing actuates directly).
    fn default() -> Self {
        Self::new(&[], &[]).expect("built-in levels are valid")
    }
}

impl Policy {
    /// A policy from levels and gates (built-in levels when `levels` is empty).
    pub fn new(levels: &[AccessLevel], gates: &[GateActions]) -> Result<Self, Vec<ScheduleError>> {
        let mut errors = Vec::new();
        let mut rules = HashMap::new();
        if levels.is_empty() {
            for (name, actuate) in [("resident", true), ("notify", false)] {
                rules.insert(
                    name.to_string(),
                    LevelRule {
                        actuate,
                        blocked: false,
                        gates: vec![],
                        floor: None,
                        schedule: vec![],
                    },
                );
            }
        }
        for (i, level) in levels.iter().enumerate() {
            let mut schedule = Vec::new();
            for (j, text) in level.schedule.iter().enumerate() {
                match Window::parse(text) {
                    Ok(w) => schedule.push(w),
                    Err(problem) => errors.push(ScheduleError {
                        level: i,
                        window: j,
                        problem,
                    }),
                }
            }
            rules.insert(
                level.name.clone(),
                LevelRule {
                    actuate: level.actuate,
                    blocked: level.name == BLOCKED,
                    gates: level.gates.clone(),
                    floor: level.floor,
                    schedule,
                },
            );
        }
        rules.entry(BLOCKED.to_string()).or_insert(LevelRule {
            actuate: false,
            blocked: true,
            gates: vec![],
            floor: None,
            schedule: vec![],
        });
        let gates = gates.iter().map(|g| (g.name.clone(), g.clone())).collect();
        if errors.is_empty() {
            Ok(Self {
                levels: rules,
                gates,
            })
        } else {
            Err(errors)
        }
    }

    /// The verdict for a recognised, live person of access level `level` at `gate` at local time `now`.
    pub fn verdict(&self, level: &str, gate: &str, now: LocalTime) -> Verdict {
        let denied = |reason: String| Verdict::Denied { reason };
        let Some(rule) = self.levels.get(level) else {
            return denied(format!("access level '{level}' is not configured"));
        };
        if rule.blocked {
            return denied("blocked".into());
        }
        if !rule.gates.is_empty() && !rule.gates.iter().any(|g| g == gate) {
            return denied(format!("level '{level}' does not open {gate}"));
        }
        if !rule.schedule.is_empty() && !rule.schedule.iter().any(|w| w.contains(now)) {
            let windows: Vec<&str> = rule.schedule.iter().map(Window::text).collect();
            return denied(format!(
                "outside the schedule of level '{level}' ({})",
                windows.join(", ")
            ));
        }
        if !rule.actuate {
            return Verdict::NotifyOnly;
        }
        let gate_rule = self.gates.get(gate).cloned().unwrap_or_default();
        let mut actions = Vec::new();
        if let Some(lock) = gate_rule.lock {
            actions.push(Action::Unlock { lock });
        }
        if let Some(floors) = gate_rule.floors {
            match rule.floor {
                Some(f) if floors.contains(&f) => actions.push(Action::CallLift { floor: f }),
                Some(f) => return denied(format!("the lift at {gate} does not serve floor {f}")),
                None if actions.is_empty() => {
                    return denied(format!(
                        "level '{level}' has no floor for the lift at {gate}"
                    ))
                }
                None => {}
            }
        }
        Verdict::Granted { actions }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(weekday: u8, h: u16, m: u16) -> LocalTime {
        LocalTime {
            weekday,
            minute: h * 60 + m,
        }
    }

    fn level(
        name: &str,
        actuate: bool,
        gates: &[&str],
        floor: Option<i32>,
        sched: &[&str],
    ) -> AccessLevel {
        AccessLevel {
            name: name.into(),
            actuate,
            gates: gates.iter().map(|s| s.to_string()).collect(),
            floor,
            schedule: sched.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn gates() -> Vec<GateActions> {
        vec![
            GateActions {
                name: "door".into(),
                lock: Some("front_lock".into()),
                floors: None,
            },
            GateActions {
                name: "lift".into(),
                lock: None,
                floors: Some(vec![0, 1]),
            },
        ]
    }

    #[test]
    fn bad_schedules_are_errors_naming_the_level_and_window() {
        for bad in [
            "Mon-Fry 08:00-18:00",
            "Mon-Fri 8-18",
            "Mon 25:00-26:00",
            "Mon 08:00-08:00",
            "a b c",
        ] {
            let levels = [level("guest", true, &[], None, &["Sat 10:00-12:00", bad])];
            let errs = Policy::new(&levels, &gates()).unwrap_err();
            assert_eq!(errs.len(), 1, "{bad}");
            assert_eq!((errs[0].level, errs[0].window), (0, 1), "{bad}");
            assert!(
                errs[0]
                    .problem
                    .contains(bad.split_whitespace().next().unwrap()),
                "{errs:?}"
            );
        }
    }

    #[test]
    fn verdicts_follow_the_rules() {
        let levels = [
            level("resident", true, &[], Some(1), &[]),
            level("guest", true, &["door"], None, &["Mon-Fri 08:00-18:00"]),
            level("notify", false, &[], None, &[]),
            level("visitor", true, &[], Some(5), &[]),
        ];
        let p = Policy::new(&levels, &gates()).unwrap();
        let noon = at(2, 12, 0);
        let unlock = Action::Unlock {
            lock: "front_lock".into(),
        };
        assert_eq!(
            p.verdict("resident", "door", noon),
            Verdict::Granted {
                actions: vec![unlock.clone()]
            }
        );
        assert_eq!(
            p.verdict("resident", "lift", noon),
            Verdict::Granted {
                actions: vec![Action::CallLift { floor: 1 }]
            }
        );
        assert_eq!(
            p.verdict("guest", "door", noon),
            Verdict::Granted {
                actions: vec![unlock]
            }
        );
        let reason = |v: Verdict| match v {
            Verdict::Denied { reason } => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            reason(p.verdict("guest", "lift", noon)),
            "level 'guest' does not open lift"
        );
        assert_eq!(
            reason(p.verdict("guest", "door", at(5, 12, 0))),
            "outside the schedule of level 'guest' (Mon-Fri 08:00-18:00)"
        );
        assert_eq!(p.verdict("notify", "door", noon), Verdict::NotifyOnly);
        assert_eq!(reason(p.verdict("blocked", "door", noon)), "blocked");
        assert_eq!(
            reason(p.verdict("visitor", "lift", noon)),
            "the lift at lift does not serve floor 5"
        );
        assert_eq!(
            reason(p.verdict("staff", "door", noon)),
            "access level 'staff' is not configured"
        );
    }

    #[test]
    fn built_in_levels_without_configuration() {
        let p = Policy::default();
        let noon = at(0, 12, 0);
        // No gate configured: granted with no actions (Home Assistant acts on the event).
        assert_eq!(
            p.verdict("resident", "front", noon),
            Verdict::Granted { actions: vec![] }
        );
        assert_eq!(p.verdict("notify", "front", noon), Verdict::NotifyOnly);
        assert!(matches!(
            p.verdict("blocked", "front", noon),
            Verdict::Denied { .. }
        ));
        assert!(matches!(
            p.verdict("guest", "front", noon),
            Verdict::Denied { .. }
        ));
    }
}
