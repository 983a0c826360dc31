//! The access rule: the one place that decides what a gate does about a tracked face.
//!
//! The pipeline gathers [`Evidence`] about a track (where its identity votes point, whether the face is live
//! and why, how long and in how many frames it has been seen, the person's access level, the local time);
//! [`Rule::judge`] turns it into a [`Ruling`]: a [`Verdict`] with the reason in words, or "not yet" with what
//! is missing. It is pure (same evidence, same ruling) and it is the only code that asks the [`Policy`];
//! the [`Decider`](super::Decider) that owns it adds the cooldown.
//!
//! The rule, in order:
//! 1. while someone is enrolling at the camera, no face in view is decided (they are not in the gallery yet);
//! 2. nothing is decided before [`Rule::min_frames`] frames;
//! 3. a recognised person: not live -> `spoof`; live -> the policy's verdict for their access level at this
//!    gate and time; liveness pending -> wait;
//! 4. an unknown face: wait until it has been seen for [`Rule::unknown_after`] (a person whose first frames
//!    are blurred is not written off as unknown), then judge it by the passive checks alone, so a stranger is
//!    not held up by a blink window: live -> `unknown`, not live -> `spoof`, pending -> wait.
//!
//! Unknown faces and spoofs never actuate: only the policy's `granted` carries actions.

use std::fmt;
use std::time::Duration;

use super::policy::Policy;
use super::schedule::LocalTime;
use super::Verdict;

/// How long a track must have been consistently unknown before the unknown decision is taken.
pub const UNKNOWN_AFTER: Duration = Duration::from_millis(1500);

/// Where a track's identity votes point.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// The person, or `None` for unknown.
    pub person: Option<String>,
    /// The winner's share of the vote weight, in [0, 1].
    pub confidence: f32,
    /// Weighted mean distance of the winner's votes (nearest person's distance for unknown).
    pub distance: Option<f32>,
}

/// Where a track's liveness stands, and why.
#[derive(Clone, Debug, PartialEq)]
pub enum LiveVerdict {
    /// Not enough evidence yet.
    Pending,
    /// A live face: fused anti-spoof `score`, and the evidence in words.
    Live { score: f32, reason: String },
    /// A photo, a screen or a still image: `score`, and why in words.
    NotLive { score: f32, reason: String },
}

/// Everything the rule decides on, about one track at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    /// Where the identity votes point; `None` before the first vote.
    pub identity: Option<Identity>,
    /// Frames the face was seen in.
    pub frames: u32,
    /// Media time since the face was first seen.
    pub seen_for: Duration,
    /// Liveness under the configured policy (with a blink required when it is).
    pub liveness: LiveVerdict,
    /// Liveness from the passive checks alone (anti-spoof score, motion): what unknown faces are judged by.
    pub passive: LiveVerdict,
    /// Mean passive anti-spoof score, reported with the decision.
    pub liveness_score: f32,
    /// The recognised person's access level (`None`: unknown face, or a person without one).
    pub access_level: Option<String>,
    /// Local time at the gate, for schedules.
    pub local_time: LocalTime,
    /// Someone is enrolling at this camera.
    pub enrolling: bool,
}

/// Why no decision is taken yet.
#[derive(Clone, Debug, PartialEq)]
pub enum Wait {
    /// No identity vote yet.
    NoVotes,
    /// Fewer frames than the rule needs.
    FewFrames { seen: u32, needed: u32 },
    /// A recognised person whose liveness is not decided yet.
    Liveness,
    /// Unknown, but not for long enough to say so.
    UnknownTooSoon { seen_for: Duration, after: Duration },
    /// Unknown for long enough; the passive checks are not decided yet.
    PassiveLiveness,
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wait::NoVotes => write!(f, "no identity vote yet"),
            Wait::FewFrames { seen, needed } => write!(f, "{seen} of {needed} frames"),
            Wait::Liveness => write!(f, "recognised, liveness pending"),
            Wait::UnknownTooSoon { seen_for, after } => write!(
                f,
                "unknown for {:.1} s of {:.1} s",
                seen_for.as_secs_f32(),
                after.as_secs_f32()
            ),
            Wait::PassiveLiveness => write!(f, "unknown, passive liveness pending"),
        }
    }
}

/// What the rule says about a track.
#[derive(Clone, Debug, PartialEq)]
pub enum Ruling {
    /// Decide now: the verdict, and why in words.
    Decide { verdict: Verdict, why: String },
    /// Not yet: more evidence may decide.
    Wait(Wait),
    /// This track is never decided, and why.
    Never { why: String },
}

/// The rule's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rule {
    /// Frames a face must be seen in before anything is decided about it (at least 1).
    pub min_frames: u32,
    /// How long a face must have been seen before it is decided to be unknown.
    pub unknown_after: Duration,
}

impl Rule {
    /// The rule with `min_frames` (the options' `liveness.min_frames`) and the standard [`UNKNOWN_AFTER`].
    pub fn new(min_frames: u32) -> Self {
        Self {
            min_frames: min_frames.max(1),
            unknown_after: UNKNOWN_AFTER,
        }
    }

    /// The identity the rule would decide on: the votes' identity once enough frames are in. Outputs announce
    /// this one, so what is shown and what is decided never differ.
    pub fn settled<'a>(&self, ev: &'a Evidence) -> Option<&'a Identity> {
        ev.identity
            .as_ref()
            .filter(|_| ev.frames >= self.min_frames.max(1))
    }

    /// The ruling on `ev` at `gate`, asking `policy` about a recognised live person.
    pub fn judge(&self, ev: &Evidence, policy: &Policy, gate: &str) -> Ruling {
        let decide = |verdict: Verdict, why: String| Ruling::Decide { verdict, why };
        if ev.enrolling {
            return Ruling::Never {
                why: "someone is enrolling at this camera".into(),
            };
        }
        let Some(id) = &ev.identity else {
            return Ruling::Wait(Wait::NoVotes);
        };
        let needed = self.min_frames.max(1);
        if ev.frames < needed {
            return Ruling::Wait(Wait::FewFrames {
                seen: ev.frames,
                needed,
            });
        }
        match &id.person {
            Some(person) => {
                let who = format!("{person} (confidence {:.2})", id.confidence);
                match &ev.liveness {
                    LiveVerdict::Pending => Ruling::Wait(Wait::Liveness),
                    LiveVerdict::NotLive { reason, .. } => {
                        decide(Verdict::Spoof, format!("{who}, not live: {reason}"))
                    }
                    LiveVerdict::Live { reason, .. } => {
                        let level = ev.access_level.as_deref().unwrap_or("");
                        let verdict = policy.verdict(level, gate, ev.local_time);
                        let outcome = match &verdict {
                            Verdict::Denied { reason } => format!("denied: {reason}"),
                            v => v.kind().as_str().to_string(),
                        };
                        let why = format!("{who}, live: {reason}; level '{level}': {outcome}");
                        decide(verdict, why)
                    }
                }
            }
            None if ev.seen_for < self.unknown_after => Ruling::Wait(Wait::UnknownTooSoon {
                seen_for: ev.seen_for,
                after: self.unknown_after,
            }),
            None => {
                let who = format!(
                    "nobody enrolled matches after {:.1} s",
                    ev.seen_for.as_secs_f32()
                );
                match &ev.passive {
                    LiveVerdict::Pending => Ruling::Wait(Wait::PassiveLiveness),
                    LiveVerdict::Live { reason, .. } => {
                        decide(Verdict::Unknown, format!("{who}; live: {reason}"))
                    }
                    LiveVerdict::NotLive { reason, .. } => {
                        decide(Verdict::Spoof, format!("{who}; not live: {reason}"))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{AccessLevel, Action, GateActions};

    fn live() -> LiveVerdict {
        LiveVerdict::Live {
            score: 0.9,
            reason: "passive anti-spoof 0.90 over 3 frames".into(),
        }
    }

    fn not_live() -> LiveVerdict {
        LiveVerdict::NotLive {
            score: 0.2,
            reason: "passive anti-spoof 0.20 over 15 frames, below 0.50".into(),
        }
    }

    fn known(person: &str) -> Option<Identity> {
        Some(Identity {
            person: Some(person.into()),
            confidence: 0.9,
            distance: Some(0.4),
        })
    }

    fn unknown() -> Option<Identity> {
        Some(Identity {
            person: None,
            confidence: 1.0,
            distance: Some(0.8),
        })
    }

    /// A known resident, live, seen for 5 frames over 0.4 s on a Wednesday at noon.
    fn base() -> Evidence {
        Evidence {
            identity: known("ann"),
            frames: 5,
            seen_for: Duration::from_millis(400),
            liveness: live(),
            passive: live(),
            liveness_score: 0.9,
            access_level: Some("resident".into()),
            local_time: LocalTime {
                weekday: 2,
                minute: 12 * 60,
            },
            enrolling: false,
        }
    }

    /// Levels: resident (actuates), notify, guest (weekdays 08-18), blocked (built in).
    fn policy() -> Policy {
        let level = |name: &str, actuate: bool, schedule: &[&str]| AccessLevel {
            name: name.into(),
            actuate,
            gates: vec![],
            floor: None,
            schedule: schedule.iter().map(|s| s.to_string()).collect(),
        };
        let levels = [
            level("resident", true, &[]),
            level("notify", false, &[]),
            level("guest", true, &["Mon-Fri 08:00-18:00"]),
        ];
        let door = GateActions {
            name: "door".into(),
            lock: Some("front_lock".into()),
            floors: None,
        };
        Policy::new(&levels, &[door]).unwrap()
    }

    fn granted() -> Verdict {
        Verdict::Granted {
            actions: vec![Action::Unlock {
                lock: "front_lock".into(),
            }],
        }
    }

    fn denied(reason: &str) -> Verdict {
        Verdict::Denied {
            reason: reason.into(),
        }
    }

    /// What a ruling is, without its words: the verdict, the reason to wait, or "never".
    #[derive(Debug, PartialEq)]
    enum Expect {
        Decide(Verdict),
        Wait(Wait),
        Never,
    }

    fn expect(r: Ruling) -> Expect {
        match r {
            Ruling::Decide { verdict, .. } => Expect::Decide(verdict),
            Ruling::Wait(w) => Expect::Wait(w),
            Ruling::Never { .. } => Expect::Never,
        }
    }

    #[test]
    fn every_branch_of_the_rule() {
        let rule = Rule::new(3);
        let ms = Duration::from_millis;
        let late = ms(1500);
        #[rustfmt::skip]
        let table: Vec<(&str, Evidence, Expect)> = vec![
            ("known + live -> policy: resident is granted with the gate's actions",
                base(), Expect::Decide(granted())),
            ("known + live -> policy: notify level announces only",
                Evidence { access_level: Some("notify".into()), ..base() }, Expect::Decide(Verdict::NotifyOnly)),
            ("known + live -> policy: blocked is denied",
                Evidence { access_level: Some("blocked".into()), ..base() }, Expect::Decide(denied("blocked"))),
            ("known + live -> policy: a person without a level is denied",
                Evidence { access_level: None, ..base() },
                Expect::Decide(denied("access level '' is not configured"))),
            ("known + live -> policy: the schedule is read at the evidence's local time",
                Evidence { access_level: Some("guest".into()), local_time: LocalTime { weekday: 5, minute: 720 }, ..base() },
                Expect::Decide(denied("outside the schedule of level 'guest' (Mon-Fri 08:00-18:00)"))),
            ("known + live -> policy: ... and granted inside it",
                Evidence { access_level: Some("guest".into()), ..base() }, Expect::Decide(granted())),
            ("known + not live -> spoof (even when the passive checks alone pass)",
                Evidence { liveness: not_live(), ..base() }, Expect::Decide(Verdict::Spoof)),
            ("known + liveness pending -> wait",
                Evidence { liveness: LiveVerdict::Pending, ..base() }, Expect::Wait(Wait::Liveness)),
            ("known + pending stays pending long after UNKNOWN_AFTER",
                Evidence { liveness: LiveVerdict::Pending, seen_for: ms(10_000), ..base() }, Expect::Wait(Wait::Liveness)),
            ("min frames: 2 of 3 frames -> wait, however clear the evidence",
                Evidence { frames: 2, ..base() }, Expect::Wait(Wait::FewFrames { seen: 2, needed: 3 })),
            ("min frames: a spoof also waits for them",
                Evidence { frames: 2, liveness: not_live(), ..base() }, Expect::Wait(Wait::FewFrames { seen: 2, needed: 3 })),
            ("min frames: exactly min_frames decides",
                Evidence { frames: 3, ..base() }, Expect::Decide(granted())),
            ("no vote yet -> wait",
                Evidence { identity: None, frames: 0, ..base() }, Expect::Wait(Wait::NoVotes)),
            ("unknown before UNKNOWN_AFTER -> wait, even when passively live",
                Evidence { identity: unknown(), access_level: None, seen_for: ms(1499), ..base() },
                Expect::Wait(Wait::UnknownTooSoon { seen_for: ms(1499), after: UNKNOWN_AFTER })),
            ("unknown before UNKNOWN_AFTER -> wait, even when passively not live",
                Evidence { identity: unknown(), passive: not_live(), seen_for: ms(100), ..base() },
                Expect::Wait(Wait::UnknownTooSoon { seen_for: ms(100), after: UNKNOWN_AFTER })),
            ("unknown + passive live -> unknown (a blink window does not hold strangers up)",
                Evidence { identity: unknown(), liveness: LiveVerdict::Pending, seen_for: late, ..base() },
                Expect::Decide(Verdict::Unknown)),
            ("unknown + passive fail -> spoof",
                Evidence { identity: unknown(), liveness: LiveVerdict::Pending, passive: not_live(), seen_for: late, ..base() },
                Expect::Decide(Verdict::Spoof)),
            ("unknown + passive pending -> wait",
                Evidence { identity: unknown(), passive: LiveVerdict::Pending, seen_for: late, ..base() },
                Expect::Wait(Wait::PassiveLiveness)),
            ("unknown: the policy's level is never asked (an unknown face never actuates)",
                Evidence { identity: unknown(), seen_for: late, access_level: Some("resident".into()), ..base() },
                Expect::Decide(Verdict::Unknown)),
            ("enrolling -> never, whatever the evidence",
                Evidence { enrolling: true, ..base() }, Expect::Never),
            ("enrolling -> never, also for a spoof",
                Evidence { enrolling: true, liveness: not_live(), ..base() }, Expect::Never),
        ];
        let policy = policy();
        for (what, ev, want) in table {
            assert_eq!(expect(rule.judge(&ev, &policy, "door")), want, "{what}");
        }
    }

    #[test]
    fn min_frames_of_zero_means_one() {
        let rule = Rule::new(0);
        assert_eq!(rule.min_frames, 1);
        let ev = Evidence {
            frames: 1,
            ..base()
        };
        assert_eq!(
            expect(rule.judge(&ev, &policy(), "door")),
            Expect::Decide(granted())
        );
    }

    #[test]
    fn the_settled_identity_is_the_one_decided_on() {
        let rule = Rule::new(3);
        let few = Evidence {
            frames: 2,
            ..base()
        };
        assert_eq!(rule.settled(&few), None);
        assert_eq!(rule.settled(&base()), base().identity.as_ref());
    }

    #[test]
    fn decisions_say_why_in_words() {
        let rule = Rule::new(3);
        let policy = policy();
        let why = |ev: Evidence| match rule.judge(&ev, &policy, "door") {
            Ruling::Decide { why, .. } => why,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            why(base()),
            "ann (confidence 0.90), live: passive anti-spoof 0.90 over 3 frames; level 'resident': granted"
        );
        assert_eq!(
            why(Evidence {
                access_level: Some("notify".into()),
                ..base()
            }),
            "ann (confidence 0.90), live: passive anti-spoof 0.90 over 3 frames; level 'notify': notify_only"
        );
        assert_eq!(
            why(Evidence {
                access_level: Some("blocked".into()),
                ..base()
            }),
            "ann (confidence 0.90), live: passive anti-spoof 0.90 over 3 frames; level 'blocked': denied: blocked"
        );
        assert_eq!(
            why(Evidence {
                liveness: not_live(),
                ..base()
            }),
            "ann (confidence 0.90), not live: passive anti-spoof 0.20 over 15 frames, below 0.50"
        );
        let stranger = Evidence {
            identity: unknown(),
            seen_for: Duration::from_millis(1600),
            ..base()
        };
        assert_eq!(
            why(stranger.clone()),
            "nobody enrolled matches after 1.6 s; live: passive anti-spoof 0.90 over 3 frames"
        );
        assert_eq!(
            why(Evidence {
                passive: not_live(),
                ..stranger
            }),
            "nobody enrolled matches after 1.6 s; not live: passive anti-spoof 0.20 over 15 frames, below 0.50"
        );
        assert_eq!(
            Wait::FewFrames { seen: 1, needed: 3 }.to_string(),
            "1 of 3 frames"
        );
    }
}
