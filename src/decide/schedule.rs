//! Schedules of access levels in local time: "Mon-Fri 08:00-18:00", "Sat,Sun 10:00-14:00", "daily 22:00-06:00".
//!
//! Parsed up front ([`Window::parse`]) so that a typo is a configuration error naming the option, not a door
//! that silently never opens; evaluated against a [`LocalTime`] the decision is given (so tests and replays
//! of old footage choose their clock).

use chrono::{Datelike, Timelike};

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

    /// The window as written in the options.
    pub fn text(&self) -> &str {
        &self.text
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(weekday: u8, h: u16, m: u16) -> LocalTime {
        LocalTime {
            weekday,
            minute: h * 60 + m,
        }
    }

    #[test]
    fn windows_parse_and_contain() {
        let w = Window::parse("Mon-Fri 08:00-18:00").unwrap();
        assert!(w.contains(at(0, 8, 0)));
        assert!(w.contains(at(4, 17, 59)));
        assert!(!w.contains(at(4, 18, 0)));
        assert!(!w.contains(at(5, 12, 0)));
        // Overnight, belonging to the start day; day ranges may wrap.
        let w = Window::parse("fri-sun 22:00-06:00").unwrap();
        assert!(w.contains(at(4, 23, 0)));
        assert!(w.contains(at(5, 5, 59)), "Saturday early = Friday night");
        assert!(w.contains(at(0, 3, 0)), "Monday early = Sunday night");
        assert!(!w.contains(at(0, 23, 0)));
        let w = Window::parse("Sat,Sunday 10:00-24:00").unwrap();
        assert!(w.contains(at(6, 23, 59)) && !w.contains(at(2, 12, 0)));
        assert!(Window::parse("07:00-09:00").unwrap().contains(at(3, 8, 0)));
    }
}
