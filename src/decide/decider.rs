//! [`Decider`]: the owner of one gate's decision. It holds the [`Rule`], the [`Policy`] the rule asks and the
//! [`Cooldowns`], and turns a track's [`Evidence`] into at most one published [`Decision`]. The pipeline asks
//! it on every frame until it answers something other than "wait".

use std::time::{Duration, SystemTime};

use super::rule::{Evidence, Rule, Ruling, Wait};
use super::{Cooldowns, Decision, Policy, Verdict};

/// What the decider did with a track's evidence.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A decision to publish; the track is decided.
    Decided(Decision),
    /// The rule decided, but the same person was decided about at this gate within the cooldown: nothing is
    /// published; the track is decided.
    CooledDown { verdict: Verdict, why: String },
    /// No decision yet, and why.
    Wait(Wait),
    /// The track is never decided, and why.
    Never { why: String },
}

impl Outcome {
    /// Whether the track is done with: decided, cooled down or never to be decided.
    pub fn is_final(&self) -> bool {
        !matches!(self, Outcome::Wait(_))
    }
}

/// The decision of one gate: the rule, its policy and its cooldowns.
#[derive(Debug)]
pub struct Decider {
    gate: String,
    rule: Rule,
    policy: Policy,
    cooldowns: Cooldowns,
}

impl Decider {
    /// The decider of `gate`, with one decision per person per `cooldown`.
    pub fn new(gate: impl Into<String>, rule: Rule, policy: Policy, cooldown: Duration) -> Self {
        Self {
            gate: gate.into(),
            rule,
            policy,
            cooldowns: Cooldowns::new(cooldown),
        }
    }

    /// The gate this decider decides for.
    pub fn gate(&self) -> &str {
        &self.gate
    }

    /// The rule (the pipeline asks it which identity is settled, to announce it).
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// Rules on the evidence of track `track_id` at media time `now` (cooldowns) and wall time `at`.
    pub fn decide(
        &mut self,
        track_id: u64,
        ev: &Evidence,
        now: Duration,
        at: SystemTime,
    ) -> Outcome {
        let (verdict, why) = match self.rule.judge(ev, &self.policy, &self.gate) {
            Ruling::Decide { verdict, why } => (verdict, why),
            Ruling::Wait(w) => return Outcome::Wait(w),
            Ruling::Never { why } => return Outcome::Never { why },
        };
        // `judge` only decides with an identity.
        let Some(id) = ev.identity.as_ref() else {
            return Outcome::Wait(Wait::NoVotes);
        };
        if !self
            .cooldowns
            .try_take(&self.gate, id.person.as_deref(), now)
        {
            return Outcome::CooledDown { verdict, why };
        }
        Outcome::Decided(Decision {
            gate: self.gate.clone(),
            track_id,
            person: id.person.clone(),
            confidence: id.confidence,
            liveness: ev.liveness_score,
            verdict,
            why,
            at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{Identity, LiveVerdict, LocalTime};

    fn evidence(person: Option<&str>) -> Evidence {
        let live = LiveVerdict::Live {
            score: 0.8,
            reason: "ok".into(),
        };
        Evidence {
            identity: Some(Identity {
                person: person.map(str::to_string),
                confidence: 0.75,
                distance: Some(0.4),
            }),
            frames: 3,
            seen_for: Duration::from_secs(2),
            liveness: live.clone(),
            passive: live,
            liveness_score: 0.8,
            access_level: Some("resident".into()),
            local_time: LocalTime {
                weekday: 0,
                minute: 0,
            },
            enrolling: false,
        }
    }

    #[test]
    fn a_decision_carries_the_evidence_and_the_cooldown_holds_repeats() {
        let s = Duration::from_secs;
        let mut d = Decider::new("door", Rule::new(3), Policy::default(), s(10));
        let at = SystemTime::UNIX_EPOCH + s(1000);
        let ann = evidence(Some("ann"));
        match d.decide(7, &ann, s(0), at) {
            Outcome::Decided(dec) => assert_eq!(
                dec,
                Decision {
                    gate: "door".into(),
                    track_id: 7,
                    person: Some("ann".into()),
                    confidence: 0.75,
                    liveness: 0.8,
                    verdict: Verdict::Granted { actions: vec![] },
                    why: "ann (confidence 0.75), live: ok; level 'resident': granted".into(),
                    at,
                }
            ),
            other => panic!("{other:?}"),
        }
        // The same person on another track within the cooldown: decided, not published.
        let again = d.decide(8, &ann, s(9), at);
        assert!(
            matches!(
                &again,
                Outcome::CooledDown {
                    verdict: Verdict::Granted { .. },
                    ..
                }
            ),
            "{again:?}"
        );
        assert!(again.is_final());
        // Someone else, and the unknown face, have their own cooldowns.
        assert!(matches!(
            d.decide(9, &evidence(Some("bob")), s(9), at),
            Outcome::Decided(_)
        ));
        assert!(matches!(
            d.decide(10, &evidence(None), s(9), at),
            Outcome::Decided(Decision {
                verdict: Verdict::Unknown,
                ..
            })
        ));
        // Waiting is not final and takes no cooldown.
        let pending = Evidence {
            liveness: LiveVerdict::Pending,
            ..evidence(Some("cat"))
        };
        let w = d.decide(11, &pending, s(9), at);
        assert_eq!(w, Outcome::Wait(Wait::Liveness));
        assert!(!w.is_final());
        assert!(matches!(
            d.decide(11, &evidence(Some("cat")), s(9), at),
            Outcome::Decided(_)
        ));
    }
}
