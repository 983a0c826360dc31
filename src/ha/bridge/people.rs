//! The per-person entities: the bridge lists the gallery (at start, after an enrollment, every 30 s), publishes
//! a `device_tracker` and an access level `select` for each person, removes those of people who are gone
//! (also people retained by an earlier run), and moves trackers `home` on a recognition and back to
//! `not_home` after [`super::BridgeOptions::away_after`].

use std::time::{Duration, Instant};

use super::{Person, State};
use crate::decide::{Decision, Verdict};
use crate::ha::discovery::{person_messages, person_slug, ConfigMessage, PersonEntity};

/// How long after removing a person's configs their retained states are cleared: HA has dropped the
/// entities (and their subscriptions) by then, even on a loaded machine (it takes milliseconds).
pub(super) const CLEAR_STATES_AFTER: Duration = Duration::from_secs(2);

impl State {
    /// Every person's discovery configs.
    pub(super) fn person_configs(&self) -> Vec<ConfigMessage> {
        self.persons
            .values()
            .flat_map(|p| person_messages(&self.topics, &p.name, &self.levels))
            .collect()
    }

    /// Re-reads the gallery and brings the person entities in line with it.
    pub(super) async fn refresh_people(&mut self) {
        self.last_people_refresh = Instant::now();
        let list = match self.people.people() {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("cannot list enrolled people: {e}");
                return;
            }
        };
        let mut levels = self.opts.access_levels.clone();
        for p in &list {
            if !levels.contains(&p.access_level) {
                levels.push(p.access_level.clone());
            }
        }
        let levels_changed = levels != self.levels;
        self.levels = levels;
        let current: std::collections::BTreeSet<String> =
            list.iter().map(|p| person_slug(&p.name)).collect();
        let gone: Vec<String> = self
            .persons
            .keys()
            .filter(|s| !current.contains(*s))
            .cloned()
            .collect();
        for s in gone {
            self.remove_person(&s).await;
        }
        for p in list {
            let ps = person_slug(&p.name);
            let is_new = !self.persons.contains_key(&ps);
            self.persons.insert(
                ps.clone(),
                Person {
                    name: p.name.clone(),
                    level: p.access_level.clone(),
                },
            );
            if is_new || levels_changed {
                for m in person_messages(&self.topics, &p.name, &self.levels) {
                    self.publish(&m.topic, m.payload, true).await;
                }
            }
            if is_new {
                tracing::info!(person = %p.name, "person entities published");
                let presence = self.topics.person_state(&ps, PersonEntity::Presence);
                self.set_state(presence, b"not_home".to_vec()).await;
            }
            let level = self.topics.person_state(&ps, PersonEntity::AccessLevel);
            self.set_state(level, p.access_level.into_bytes()).await;
        }
    }

    /// Empty retained configs for a person who is no longer enrolled, now; empty retained states
    /// [`CLEAR_STATES_AFTER`] later. An empty state reaching the still-subscribed entity is an error in HA
    /// 2024.3's log ("Invalid option for select...: ''"): HA drops the entity on the empty config first.
    pub(super) async fn remove_person(&mut self, ps: &str) {
        tracing::info!(
            person = ps,
            "person removed: clearing their Home Assistant entities"
        );
        self.persons.remove(ps);
        self.home.remove(ps);
        let due = Instant::now() + CLEAR_STATES_AFTER;
        for e in PersonEntity::ALL {
            let config = self.topics.person_config(ps, e);
            self.publish(&config, Vec::new(), true).await;
            let state = self.topics.person_state(ps, e);
            self.cache.remove(&state);
            if !self.clear_later.iter().any(|(_, t)| *t == state) {
                self.clear_later.push((due, state));
            }
        }
    }

    /// Clears the retained states of removed people that are due (kept while the link is down; dropped
    /// when the person came back meanwhile, whose states are live again).
    pub(super) async fn clear_removed_states(&mut self, now: Instant) {
        if !self.connected {
            return;
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.clear_later)
            .into_iter()
            .partition(|(t, _)| *t <= now);
        self.clear_later = later;
        for (_, topic) in due {
            if !self.cache.contains_key(&topic) {
                self.publish(&topic, Vec::new(), true).await;
            }
        }
    }

    /// A decision about a known, live person marks them `home`.
    pub(super) async fn seen(&mut self, d: &Decision) {
        let Some(name) = &d.person else { return };
        if matches!(d.verdict, Verdict::Unknown | Verdict::Spoof) {
            return;
        }
        let ps = person_slug(name);
        if !self.persons.contains_key(&ps) {
            return;
        }
        self.home.insert(ps.clone(), Instant::now());
        let topic = self.topics.person_state(&ps, PersonEntity::Presence);
        self.set_state(topic, b"home".to_vec()).await;
    }

    pub(super) async fn expire_trackers(&mut self, now: Instant) {
        let away: Vec<String> = self
            .home
            .iter()
            .filter(|(_, t)| now.duration_since(**t) >= self.opts.away_after)
            .map(|(s, _)| s.clone())
            .collect();
        for ps in away {
            self.home.remove(&ps);
            let topic = self.topics.person_state(&ps, PersonEntity::Presence);
            self.set_state(topic, b"not_home".to_vec()).await;
        }
    }
}
