//! The access policy of DESIGN.md: who may do what, where and when.
//!
//! A [`Policy`] is built once from the options ([`Policy::from_config`]) and answers, for a recognised live
//! person at a gate at a local time, which [`Verdict`] applies: granted with the gate's actions, notify-only,
//! or denied with a reason a user understands. Schedules ("Mon-Fri 08:00-18:00") are parsed up front so a
//! typo is a configuration error naming the option, not a door that silently never opens.
//!
//! Rules, in order: a person whose level is not configured, or whose level is `blocked`, is denied; a level
//! restricted to some gates is denied elsewhere; a level with a schedule is denied outside it; a level that
//! does not actuate is notify-only; otherwise granted with the gate's actions (unlock its lock; call its lift
//! to the level's floor, which must be one the lift serves). Without configured levels the built-in ones apply:
//! `resident` (actuates everywhere), `notify` (announces only) and `blocked`.

use std::collections::HashMap;

use chrono::{Datelike, Timelike};

use super::{Action, Verdict};
use crate::config::{AccessLevel, ConfigError, GateConfig, ServiceConfig};

/// The level that is always denied.
pub const BLOCKED: &str = "blocked";

/// A weekday and a minute of the day in local time (Monday = 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    pub weekday: u8,
    pub minute: u16,
}

impl LocalTime {
    /// The current local time of the machine (TZ or /etc/localtime).
    pub fn now() -> Self {
        Self::from_system(std::time::SystemTime::now())
    }

    /// `t` in the machine's local time zone.
    pub fn from_system(t: std::time::SystemTime) -> Self {
        let local: chrono::DateTime<chrono::Local> = t.into();
        Self {
            weekday: local.weekday().num_days_from_monday() as u8,
            minute: (local.hour() * 60 + local.minute()) as u16,
        }
    }
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// One window of a schedule: on these weekdays, from `start` to `end` (minutes of the day). A window whose
/// end is before its start runs overnight and belongs to the day it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    days: [bool; 7],
    start: u16,
    end: u16,
    text: String,
}

impl Window {
    /// Parses `"Mon-Fri 08:00-18:00"`, `"Sat,Sun 10:00-14:00"`, `"daily 22:00-06:00"` or `"07:00-09:00"`
    /// (every day). Day names are English, three letters or full, any case.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let (days_text, times_text) = match parts.as_slice() {
            [times] => ("daily", *times),
            [days, times] => (*days, *times),
            _ => return Err(format!("'{text}' is not like \"Mon-Fri 08:00-18:00\"")),
        };
        let days = parse_days(days_text).map_err(|e| format!("'{text}': {e}"))?;
        let (start, end) = times_text
            .split_once('-')
            .ok_or_else(|| format!("'{text}': '{times_text}' is not a range like 08:00-18:00"))?;
        let start = parse_clock(start).map_err(|e| format!("'{text}': {e}"))?;
        let end = parse_clock(end).map_err(|e| format!("'{text}': {e}"))?;
        if start == end {
            return Err(format!("'{text}': the window is empty"));
        }
        Ok(Self {
            days,
            start,
            end,
            text: text.trim().to_string(),
        })
    }

    /// Whether `t` falls in this window (start inclusive, end exclusive).
    pub fn contains(&self, t: LocalTime) -> bool {
        let day = t.weekday as usize % 7;
        if self.start < self.end {
            self.days[day] && (self.start..self.end).contains(&t.minute)
        } else {
            let yesterday = (day + 6) % 7;
            (self.days[day] && t.minute >= self.start)
                || (self.days[yesterday] && t.minute < self.end)
        }
    }
}

fn parse_day(s: &str) -> Result<usize, String> {
    let lower = s.to_ascii_lowercase();
    DAYS.iter()
        .position(|d| lower.len() >= 3 && (lower == *d || full_day(d) == lower))
        .ok_or_else(|| format!("'{s}' is not a day (Mon, Tue, ... Sun)"))
}

fn full_day(short: &str) -> &'static str {
    match short {
        "mon" => "monday",
        "tue" => "tuesday",
        "wed" => "wednesday",
        "thu" => "thursday",
        "fri" => "friday",
        "sat" => "saturday",
        _ => "sunday",
    }
}

fn parse_days(text: &str) -> Result<[bool; 7], String> {
    let lower = text.to_ascii_lowercase();
    if lower == "daily" || lower == "*" || lower == "every" {
        return Ok([true; 7]);
    }
    let mut days = [false; 7];
    for item in text.split(',').filter(|s| !s.is_empty()) {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse_day(a)?, parse_day(b)?);
                let mut d = a;
                loop {
                    days[d] = true;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[parse_day(item)?] = true,
        }
    }
    if days.iter().any(|d| *d) {
        Ok(days)
    } else {
        Err("no day given".into())
    }
}

fn parse_clock(s: &str) -> Result<u16, String> {
    let bad = || format!("'{s}' is not a time like 08:30");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) || s.len() > 5 {
        return Err(bad());
    }
    Ok(h * 60 + m)
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

/// What a gate does on a grant.
#[derive(Clone, Debug, PartialEq, Default)]
struct GateRule {
    lock: Option<String>,
    /// Floors the gate's lift serves (None: no lift).
    floors: Option<Vec<i32>>,
}

/// The whole policy: access levels and gate actions.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    levels: HashMap<String, LevelRule>,
    gates: HashMap<String, GateRule>,
}

impl Default for Policy {
    /// The built-in levels and no configured gates (decisions are published; nothing actuates directly).
    fn default() -> Self {
        Self::new(&[], &[]).expect("built-in levels are valid")
    }
}

impl Policy {
    /// The policy of the options; every bad schedule string is a [`ConfigError`] naming its option.
    pub fn from_config(config: &ServiceConfig) -> Result<Self, Vec<ConfigError>> {
        Self::new(&config.access_levels, &config.gates)
    }

    /// A policy from levels and gates (built-in levels when `levels` is empty).
    pub fn new(levels: &[AccessLevel], gates: &[GateConfig]) -> Result<Self, Vec<ConfigError>> {
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
                    Err(problem) => errors.push(ConfigError {
                        option: format!("access_levels[{i}].schedule[{j}]"),
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
        let gates = gates
            .iter()
            .map(|g| {
                (
                    g.name.clone(),
                    GateRule {
                        lock: g.lock.clone(),
                        floors: g.lift.as_ref().map(|l| l.floors.clone()),
                    },
                )
            })
            .collect();
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
            let windows: Vec<&str> = rule.schedule.iter().map(|w| w.text.as_str()).collect();
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
#[path = "policy_tests.rs"]
mod tests;
