//! Commands from HA (`<base>/<device>/<entity>/set`, `<base>/people/<person>/access_level/set`): switches and
//! numbers change the camera's live settings (range-checked by [`SettingsHandle::update`], persisted, echoed),
//! the text holds the name to enroll, buttons start an enrollment or forget the last unknown face. Anything
//! malformed or out of range gets one log line and the old state republished, so HA shows what is in force.
//!
//! [`SettingsHandle::update`]: crate::settings::SettingsHandle::update

use super::{CameraCommand, State};
use crate::ha::discovery::{EntityKey, PersonEntity, PEOPLE_SEGMENT};
use crate::settings::LiveSettings;

/// Longest name accepted from the Enroll name text (as declared in discovery).
const MAX_NAME: usize = 64;

/// The settings entities' states: `(entity key, payload)`.
pub fn settings_states(s: &LiveSettings) -> [(EntityKey, String); 4] {
    let on = |b: bool| if b { "ON" } else { "OFF" }.to_string();
    [
        (EntityKey::Recognition, on(s.recognition_enabled)),
        (EntityKey::RequireBlink, on(s.require_blink)),
        (EntityKey::MatchThreshold, format!("{}", s.match_threshold)),
        (
            EntityKey::AntispoofThreshold,
            format!("{}", s.antispoof_threshold),
        ),
    ]
}

/// A switch payload.
pub fn parse_switch(payload: &str) -> Result<bool, String> {
    match payload {
        "ON" => Ok(true),
        "OFF" => Ok(false),
        other => Err(format!("expected ON or OFF, got {other:?}")),
    }
}

/// A number payload (range checks are the settings' job).
pub fn parse_number(payload: &str) -> Result<f32, String> {
    payload
        .trim()
        .parse::<f32>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("expected a number, got {payload:?}"))
}

/// A change to apply to the live settings.
type Change = Box<dyn FnOnce(&mut LiveSettings)>;

/// The change a settings command asks for.
fn setting_change(key: EntityKey, payload: &str) -> Result<Change, String> {
    Ok(match key {
        EntityKey::Recognition => {
            let v = parse_switch(payload)?;
            Box::new(move |s| s.recognition_enabled = v)
        }
        EntityKey::RequireBlink => {
            let v = parse_switch(payload)?;
            Box::new(move |s| s.require_blink = v)
        }
        EntityKey::MatchThreshold => {
            let v = parse_number(payload)?;
            Box::new(move |s| s.match_threshold = v)
        }
        EntityKey::AntispoofThreshold => {
            let v = parse_number(payload)?;
            Box::new(move |s| s.antispoof_threshold = v)
        }
        _ => return Err("not a settings entity".into()),
    })
}

impl State {
    pub(super) async fn on_command(&mut self, topic: &str, raw: &[u8]) {
        let Some(rest) = topic
            .strip_prefix(&self.topics.base_topic)
            .and_then(|r| r.strip_prefix('/'))
        else {
            return;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let payload = match std::str::from_utf8(raw) {
            Ok(p) => p,
            Err(_) => {
                tracing::warn!(topic, "refused MQTT command: payload is not UTF-8");
                return self.echo_after_refusal(&parts).await;
            }
        };
        match parts.as_slice() {
            [PEOPLE_SEGMENT, person, "access_level", "set"] => {
                self.access_level_command(person, payload).await
            }
            [device, key, "set"] => match EntityKey::parse(key) {
                Some(key) => self.device_command(topic, device, key, payload).await,
                None => tracing::warn!(topic, "refused MQTT command: no such entity"),
            },
            _ => {}
        }
    }

    /// Republishes the state a refused (non-UTF-8) command targeted.
    async fn echo_after_refusal(&mut self, parts: &[&str]) {
        if let [device, _key, "set"] = parts {
            if let Some(i) = self.device_index(device) {
                self.echo_settings(i).await;
            }
        }
    }

    async fn echo_settings(&mut self, i: usize) {
        let s = self.devices[i].setup.settings.get();
        for (key, payload) in settings_states(&s) {
            let topic = self.state_topic(i, key);
            self.force_state(topic, payload.into_bytes()).await;
        }
    }

    async fn device_command(&mut self, topic: &str, device: &str, key: EntityKey, payload: &str) {
        let Some(i) = self.device_index(device) else {
            tracing::warn!(topic, "refused MQTT command: no such device");
            return;
        };
        match key {
            EntityKey::Recognition
            | EntityKey::RequireBlink
            | EntityKey::MatchThreshold
            | EntityKey::AntispoofThreshold => {
                let handle = self.devices[i].setup.settings.clone();
                let result = setting_change(key, payload)
                    .and_then(|change| handle.update(change).map_err(|e| e.to_string()));
                match result {
                    Ok(s) => {
                        tracing::info!(
                            device,
                            setting = %key,
                            value = payload,
                            "live setting changed"
                        );
                        if let Err(e) = self.sink.save(device, &s) {
                            tracing::warn!(device, error = %e, "live setting applied but not persisted");
                        }
                    }
                    Err(why) => {
                        tracing::warn!(
                            topic,
                            payload,
                            "refused MQTT command: {why}; keeping the current value"
                        );
                    }
                }
                self.echo_settings(i).await;
            }
            EntityKey::EnrollName => {
                if payload.chars().count() > MAX_NAME {
                    tracing::warn!(
                        topic,
                        "refused MQTT command: name longer than {MAX_NAME} characters"
                    );
                } else {
                    self.devices[i].enroll_name = payload.trim().to_string();
                }
                let topic = self.state_topic(i, EntityKey::EnrollName);
                let name = self.devices[i].enroll_name.clone();
                self.force_state(topic, name.into_bytes()).await;
            }
            EntityKey::Enroll if payload == "PRESS" => self.enroll(i).await,
            EntityKey::ForgetUnknown if payload == "PRESS" => self.forget_unknown(i).await,
            _ => tracing::warn!(
                topic,
                payload,
                "refused MQTT command: unknown entity or payload"
            ),
        }
    }

    async fn enroll(&mut self, i: usize) {
        let name = self.devices[i].enroll_name.clone();
        let refuse = if name.is_empty() {
            Some("type the person's name into Enroll name first".to_string())
        } else if self
            .persons
            .values()
            .any(|p| p.name.eq_ignore_ascii_case(&name))
        {
            Some(format!("name already taken: {name}"))
        } else {
            match &self.devices[i].setup.commands {
                Some(tx) => tx
                    .send(CameraCommand::Enroll { name: name.clone() })
                    .err()
                    .map(|_| "the camera is not running".to_string()),
                None => Some("the camera is not running".to_string()),
            }
        };
        if let Some(reason) = refuse {
            tracing::warn!(device = %self.devices[i].setup.device.slug, name, "enrollment refused: {reason}");
            let topic = self.state_topic(i, EntityKey::Enrollment);
            let payload = super::payloads::enrollment_event(&name, false, 0, Some(&reason));
            self.event(topic, payload.to_string().into_bytes()).await;
        } else {
            tracing::info!(device = %self.devices[i].setup.device.slug, name, "enrollment requested from Home Assistant");
        }
    }

    /// Clears the last face and last person if the last decision was about an unknown face.
    async fn forget_unknown(&mut self, i: usize) {
        if !self.devices[i].last_was_unknown {
            tracing::info!("forget last unknown: the last face was not unknown; nothing to forget");
            return;
        }
        self.devices[i].last_was_unknown = false;
        if let Some(tx) = &self.devices[i].setup.commands {
            let _ = tx.send(CameraCommand::ForgetUnknown);
        }
        let image = self.state_topic(i, EntityKey::LastFace);
        self.cache.remove(&image);
        // An empty retained message deletes the retained face from the broker.
        self.publish(&image, Vec::new(), true).await;
        let topic = self.state_topic(i, EntityKey::LastPerson);
        self.set_state(topic, br#"{"person":"none"}"#.to_vec())
            .await;
    }

    async fn access_level_command(&mut self, person_slug: &str, level: &str) {
        let state = self
            .topics
            .person_state(person_slug, PersonEntity::AccessLevel);
        let Some(name) = self.persons.get(person_slug).map(|p| p.name.clone()) else {
            tracing::warn!(person = person_slug, "refused access level: no such person");
            return;
        };
        if !self.levels.iter().any(|l| l == level) {
            tracing::warn!(person = %name, level, "refused access level: not one of {:?}", self.levels);
        } else {
            match self.people.set_access_level(&name, level) {
                Ok(()) => {
                    tracing::info!(person = %name, level, "access level changed from Home Assistant");
                    if let Some(p) = self.persons.get_mut(person_slug) {
                        p.level = level.to_string();
                    }
                }
                Err(e) => tracing::warn!(person = %name, level, "access level not changed: {e}"),
            }
        }
        let current = self.persons[person_slug].level.clone();
        self.force_state(state, current.into_bytes()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_parsing_refuses_garbage() {
        assert_eq!(parse_switch("ON"), Ok(true));
        assert_eq!(parse_switch("OFF"), Ok(false));
        assert!(parse_switch("on").is_err());
        assert_eq!(parse_number(" 0.45 "), Ok(0.45));
        assert!(parse_number("NaN").is_err());
        assert!(parse_number("inf").is_err());
        assert!(parse_number("abc").is_err());
        assert!(setting_change(EntityKey::Fps, "1").is_err());
    }

    #[test]
    fn settings_states_are_what_ha_reads() {
        let s = LiveSettings {
            recognition_enabled: true,
            require_blink: false,
            match_threshold: 0.45,
            antispoof_threshold: 0.5,
        };
        assert_eq!(
            settings_states(&s),
            [
                (EntityKey::Recognition, "ON".to_string()),
                (EntityKey::RequireBlink, "OFF".to_string()),
                (EntityKey::MatchThreshold, "0.45".to_string()),
                (EntityKey::AntispoofThreshold, "0.5".to_string()),
            ]
        );
    }
}
