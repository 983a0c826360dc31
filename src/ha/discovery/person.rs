//! Per enrolled person: a `device_tracker` (`home` when recognised at any gate, `not_home` after a timeout, so
//! it can be attached to an HA person) and a `select` with the person's access level, on an HA device named
//! after the person. Topics live under `<base>/people/<person>/...`, configs under
//! `<prefix>/<component>/facegate_people_<person>/<key>/config`; a removed person gets empty retained configs.

use serde_json::{json, Value};

use super::{origin_block, slug, ConfigMessage, Topics};

/// The topic segment under the base topic that holds the people (no camera may be named so).
pub const PEOPLE_SEGMENT: &str = "people";

/// The entities every person has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersonEntity {
    /// `device_tracker`, states `home` / `not_home`.
    Presence,
    /// `select` of the access levels; commands write the gallery.
    AccessLevel,
}

impl PersonEntity {
    pub const ALL: [PersonEntity; 2] = [PersonEntity::Presence, PersonEntity::AccessLevel];

    pub fn key(self) -> &'static str {
        match self {
            PersonEntity::Presence => "presence",
            PersonEntity::AccessLevel => "access_level",
        }
    }

    pub fn component(self) -> &'static str {
        match self {
            PersonEntity::Presence => "device_tracker",
            PersonEntity::AccessLevel => "select",
        }
    }
}

/// A person's topic segment: [`slug`] of the name, or (a name with no ASCII letters or digits, e.g. in
/// another script) `p` and a stable hash, so every name gets a usable, stable id.
pub fn person_slug(name: &str) -> String {
    let s = slug(name);
    if !s.is_empty() {
        return s;
    }
    use sha2::Digest;
    let h = sha2::Sha256::digest(name.as_bytes());
    format!(
        "p{}",
        h[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

impl Topics {
    /// Where facegate publishes a person entity's state.
    pub fn person_state(&self, person_slug: &str, e: PersonEntity) -> String {
        format!(
            "{}/{PEOPLE_SEGMENT}/{person_slug}/{}/state",
            self.base_topic,
            e.key()
        )
    }

    /// Where HA sends a person entity's commands (the access level select).
    pub fn person_command(&self, person_slug: &str, e: PersonEntity) -> String {
        format!(
            "{}/{PEOPLE_SEGMENT}/{person_slug}/{}/set",
            self.base_topic,
            e.key()
        )
    }

    /// The retained discovery config topic of a person entity.
    pub fn person_config(&self, person_slug: &str, e: PersonEntity) -> String {
        format!(
            "{}/{}/facegate_{PEOPLE_SEGMENT}_{person_slug}/{}/config",
            self.discovery_prefix,
            e.component(),
            e.key()
        )
    }
}

/// The discovery config of one person entity. `levels` are the access level options of the select.
pub fn person_payload(topics: &Topics, name: &str, e: PersonEntity, levels: &[String]) -> Value {
    let ps = person_slug(name);
    let mut v = json!({
        "unique_id": format!("facegate_{PEOPLE_SEGMENT}_{ps}_{}", e.key()),
        "availability_topic": topics.availability(),
        "device": {
            "identifiers": [format!("facegate_{PEOPLE_SEGMENT}_{ps}")],
            "name": name,
            "manufacturer": "facegate",
            "model": "Enrolled person",
            "sw_version": env!("CARGO_PKG_VERSION"),
        },
        "o": origin_block(),
        "state_topic": topics.person_state(&ps, e),
    });
    match e {
        PersonEntity::Presence => {
            // `name: null`: the entity takes the device's (the person's) name: device_tracker.<person>.
            v["name"] = Value::Null;
            v["payload_home"] = json!("home");
            v["payload_not_home"] = json!("not_home");
            v["source_type"] = json!("router");
            v["icon"] = json!("mdi:account");
        }
        PersonEntity::AccessLevel => {
            v["name"] = json!("Access level");
            v["entity_category"] = json!("config");
            v["command_topic"] = json!(topics.person_command(&ps, e));
            v["options"] = json!(levels);
            v["icon"] = json!("mdi:key");
        }
    }
    v
}

/// Both discovery configs of a person, ready to publish retained.
pub fn person_messages(topics: &Topics, name: &str, levels: &[String]) -> Vec<ConfigMessage> {
    let ps = person_slug(name);
    PersonEntity::ALL
        .iter()
        .map(|&e| ConfigMessage {
            topic: topics.person_config(&ps, e),
            payload: person_payload(topics, name, e, levels)
                .to_string()
                .into_bytes(),
        })
        .collect()
}

/// Empty retained configs (and states) that remove a person's entities from HA and the broker.
pub fn person_removal_messages(topics: &Topics, person_slug: &str) -> Vec<ConfigMessage> {
    PersonEntity::ALL
        .iter()
        .flat_map(|&e| {
            [
                topics.person_config(person_slug, e),
                topics.person_state(person_slug, e),
            ]
        })
        .map(|topic| ConfigMessage {
            topic,
            payload: Vec::new(),
        })
        .collect()
}

/// The person slug in a person config topic (`<prefix>/<component>/facegate_people_<slug>/<key>/config`),
/// so configs retained by an earlier run can be found and removed when the person is gone.
pub fn person_slug_in_config_topic(topics: &Topics, topic: &str) -> Option<String> {
    let rest = topic.strip_prefix(&format!("{}/", topics.discovery_prefix))?;
    let mut parts = rest.split('/');
    let (_component, node, _key, last) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if last != "config" || parts.next().is_some() {
        return None;
    }
    node.strip_prefix(&format!("facegate_{PEOPLE_SEGMENT}_"))
        .map(str::to_string)
}
