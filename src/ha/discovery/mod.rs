//! MQTT discovery payloads, declared as data: [`ENTITIES`] lists every entity a facegate device offers, and
//! [`config_payload`] turns one [`EntitySpec`] into the JSON config Home Assistant reads. Pure functions (no
//! I/O), so the exact payloads are unit-tested. Entities are named by [`EntityKey`] everywhere in code, so a
//! misspelt key does not compile; adding an entity is its key (one line in `entity_keys!`), its row in
//! [`ENTITIES`], and the bridge publishing the value it shows (`state_topic(i, EntityKey::...)`).
//!
//! Choices that matter to HA users:
//! - Unique ids are `facegate_<device>_<entity>`: stable across restarts and renames of the display name only
//!   when the slug is kept, so HA keeps its customisations and history.
//! - Entity `name`s are short ("Last person"); HA prefixes the device name, which gives voice-assistant
//!   friendly names such as "Front door Last person".
//! - Per-component discovery (`<prefix>/<component>/<node>/<object>/config`), which Home Assistant 2024.3
//!   (the newest on Python 3.11) and current releases both read; device-based discovery (`cmps`) is newer.
//! - Full key names for legibility, except the origin block `o` (as HA's own documentation writes it).

use serde_json::{json, Map, Value};

use super::HaError;
use crate::config::MqttConfig;
use crate::decide::VerdictKind;
use crate::settings::{ANTISPOOF_THRESHOLD_RANGE, MATCH_THRESHOLD_RANGE};

mod person;
pub use person::{
    person_messages, person_payload, person_removal_messages, person_slug,
    person_slug_in_config_topic, PersonEntity, PEOPLE_SEGMENT,
};

/// Home Assistant entity platforms facegate uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    Event,
    Sensor,
    BinarySensor,
    Image,
    Switch,
    Number,
    Text,
    Button,
}

impl Component {
    /// The platform name in discovery topics.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Event => "event",
            Component::Sensor => "sensor",
            Component::BinarySensor => "binary_sensor",
            Component::Image => "image",
            Component::Switch => "switch",
            Component::Number => "number",
            Component::Text => "text",
            Component::Button => "button",
        }
    }
}

/// How HA files an entity: main controls/sensors, settings, or diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    Primary,
    Config,
    Diagnostic,
}

/// The platform-specific part of an entity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// Fires with one of `types`; payload `{"event_type": ..., attributes...}` on the state topic.
    Event { types: &'static [&'static str] },
    /// A value read from the JSON state by `value_key`; the whole JSON object gives the attributes.
    JsonSensor { value_key: &'static str },
    /// A plain numeric sensor.
    NumberSensor { unit: &'static str, precision: u8 },
    /// A plain text sensor.
    TextSensor,
    /// `ON` / `OFF`.
    BinarySensor { device_class: &'static str },
    /// A JPEG published as raw bytes.
    Jpeg,
    /// `ON` / `OFF`, commanded from HA.
    Switch,
    /// A number commanded from HA within `[min, max]`.
    Number { min: f64, max: f64, step: f64 },
    /// Free text commanded from HA, at most `max` characters.
    Text { max: u32 },
    /// A press (payload `PRESS`).
    Button,
}

/// Declares [`EntityKey`]: every entity of a facegate device, with its object id. The object id is the
/// topic segment (`<base>/<device>/<id>/...`) and part of the unique id: never change one.
macro_rules! entity_keys {
    ($($(#[$doc:meta])* $key:ident = $id:literal,)*) => {
        /// An entity of a facegate device. Code names entities by these (a misspelt one does not compile);
        /// [`ENTITIES`] has one row per key.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EntityKey {
            $($(#[$doc])* $key,)*
        }

        impl EntityKey {
            /// Every key, in declaration order.
            pub const ALL: &'static [EntityKey] = &[$(EntityKey::$key,)*];

            /// The object id: topic segment and unique-id part.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EntityKey::$key => $id,)*
                }
            }
        }
    };
}

entity_keys! {
    Access = "access",
    Enrollment = "enrollment",
    GateAction = "gate_action",
    LastPerson = "last_person",
    FacePresent = "face_present",
    LastFace = "last_face",
    Recognition = "recognition",
    RequireBlink = "require_blink",
    MatchThreshold = "match_threshold",
    AntispoofThreshold = "antispoof_threshold",
    EnrollName = "enroll_name",
    Enroll = "enroll",
    ForgetUnknown = "forget_unknown",
    Fps = "fps",
    Latency = "latency",
    Camera = "camera",
}

impl EntityKey {
    /// The key whose object id is `id` (a topic segment from the broker), if any.
    pub fn parse(id: &str) -> Option<EntityKey> {
        EntityKey::ALL.iter().copied().find(|k| k.as_str() == id)
    }

    /// Its row in [`ENTITIES`].
    pub fn spec(self) -> &'static EntitySpec {
        ENTITIES
            .iter()
            .find(|e| e.key == self)
            .expect("every EntityKey has a row in ENTITIES (unit-tested)")
    }
}

impl std::fmt::Display for EntityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entity of a facegate device.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EntitySpec {
    pub key: EntityKey,
    /// Display name, without the device name.
    pub name: &'static str,
    pub component: Component,
    pub kind: Kind,
    pub category: Category,
    /// Material Design icon, when HA's default for the platform says nothing.
    pub icon: Option<&'static str>,
}

/// The access event types: every [`VerdictKind`], in its order and words (`notify_only` is its own type, so
/// HA hears the truth and an automation that unlocks on `granted` does not fire for an announce-only level).
pub const ACCESS_EVENT_TYPES: &[&str] = &[
    VerdictKind::Granted.as_str(),
    VerdictKind::NotifyOnly.as_str(),
    VerdictKind::Denied.as_str(),
    VerdictKind::Unknown.as_str(),
    VerdictKind::Spoof.as_str(),
];

/// The outcomes of an enrollment requested from HA (attributes: name, samples, reason).
pub const ENROLLMENT_EVENT_TYPES: &[&str] = &["enrolled", "failed"];

/// How a gate action (unlock, lift call) ended on the ESPHome board (attributes: gate, person, track, action,
/// reason, timings).
pub const GATE_EVENT_TYPES: &[&str] = &["confirmed", "unconfirmed", "dropped"];

const fn spec(
    key: EntityKey,
    name: &'static str,
    component: Component,
    kind: Kind,
    category: Category,
    icon: Option<&'static str>,
) -> EntitySpec {
    EntitySpec {
        key,
        name,
        component,
        kind,
        category,
        icon,
    }
}

use Category::{Config, Diagnostic, Primary};
use Component as C;
use EntityKey as K;

/// Every entity of one facegate device (camera + gate), in the order HA lists them.
pub const ENTITIES: &[EntitySpec] = &[
    spec(
        K::Access,
        "Access",
        C::Event,
        Kind::Event {
            types: ACCESS_EVENT_TYPES,
        },
        Primary,
        Some("mdi:door"),
    ),
    spec(
        K::Enrollment,
        "Enrollment",
        C::Event,
        Kind::Event {
            types: ENROLLMENT_EVENT_TYPES,
        },
        Primary,
        Some("mdi:account-plus"),
    ),
    spec(
        K::GateAction,
        "Gate action",
        C::Event,
        Kind::Event {
            types: GATE_EVENT_TYPES,
        },
        Primary,
        Some("mdi:gate"),
    ),
    spec(
        K::LastPerson,
        "Last person",
        C::Sensor,
        Kind::JsonSensor {
            value_key: "person",
        },
        Primary,
        Some("mdi:account"),
    ),
    spec(
        K::FacePresent,
        "Face present",
        C::BinarySensor,
        Kind::BinarySensor {
            device_class: "occupancy",
        },
        Primary,
        None,
    ),
    spec(
        K::LastFace,
        "Last face",
        C::Image,
        Kind::Jpeg,
        Primary,
        None,
    ),
    spec(
        K::Recognition,
        "Recognition",
        C::Switch,
        Kind::Switch,
        Config,
        Some("mdi:face-recognition"),
    ),
    spec(
        K::RequireBlink,
        "Require blink",
        C::Switch,
        Kind::Switch,
        Config,
        Some("mdi:eye"),
    ),
    spec(
        K::MatchThreshold,
        "Match threshold",
        C::Number,
        Kind::Number {
            min: MATCH_THRESHOLD_RANGE.0 as f64,
            max: MATCH_THRESHOLD_RANGE.1 as f64,
            step: 0.01,
        },
        Config,
        Some("mdi:tune"),
    ),
    spec(
        K::AntispoofThreshold,
        "Anti-spoof threshold",
        C::Number,
        Kind::Number {
            min: ANTISPOOF_THRESHOLD_RANGE.0 as f64,
            max: ANTISPOOF_THRESHOLD_RANGE.1 as f64,
            step: 0.01,
        },
        Config,
        Some("mdi:shield-account"),
    ),
    spec(
        K::EnrollName,
        "Enroll name",
        C::Text,
        Kind::Text { max: 64 },
        Config,
        Some("mdi:account-plus"),
    ),
    spec(
        K::Enroll,
        "Enroll",
        C::Button,
        Kind::Button,
        Config,
        Some("mdi:account-plus"),
    ),
    spec(
        K::ForgetUnknown,
        "Forget last unknown",
        C::Button,
        Kind::Button,
        Config,
        Some("mdi:account-remove"),
    ),
    spec(
        K::Fps,
        "Frame rate",
        C::Sensor,
        Kind::NumberSensor {
            unit: "fps",
            precision: 1,
        },
        Diagnostic,
        Some("mdi:speedometer"),
    ),
    spec(
        K::Latency,
        "Frame latency",
        C::Sensor,
        Kind::NumberSensor {
            unit: "ms",
            precision: 0,
        },
        Diagnostic,
        Some("mdi:timer-outline"),
    ),
    spec(
        K::Camera,
        "Camera",
        C::Sensor,
        Kind::TextSensor,
        Diagnostic,
        Some("mdi:cctv"),
    ),
];

/// One facegate device as HA sees it: a camera and the gate it watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Topic segment and id part, from [`slug`]: `front_door`.
    pub slug: String,
    /// Display name: `Front door`.
    pub name: String,
}

impl Device {
    /// A device named as in the options; fails when the name has nothing to build topics from (or would
    /// collide with the people's topics).
    pub fn new(name: &str) -> Result<Self, HaError> {
        let slug = slug(name);
        if slug.is_empty() || slug == PEOPLE_SEGMENT {
            return Err(HaError::BadDeviceName(name.to_string()));
        }
        Ok(Self {
            slug,
            name: name.trim().to_string(),
        })
    }
}

/// Lower-case ASCII letters and digits, runs of anything else become one `_` (none at the ends), so a name is
/// a safe MQTT topic segment and entity-id part: "Front door #2" -> `front_door_2`.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// Where a device's topics live, from the MQTT options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    pub discovery_prefix: String,
    pub base_topic: String,
}

impl Topics {
    pub fn new(mqtt: &MqttConfig) -> Self {
        Self {
            discovery_prefix: mqtt.discovery_prefix.trim_end_matches('/').to_string(),
            base_topic: mqtt.base_topic.trim_end_matches('/').to_string(),
        }
    }

    /// `online` / `offline` of the whole facegate service, retained; the connection's last will. Every entity
    /// lists it, so a crash or a lost connection makes them all unavailable at once.
    pub fn availability(&self) -> String {
        format!("{}/availability", self.base_topic)
    }

    /// Where facegate publishes an entity's state (or event, or image bytes).
    pub fn state(&self, device: &Device, spec: &EntitySpec) -> String {
        format!("{}/{}/{}/state", self.base_topic, device.slug, spec.key)
    }

    /// Where HA sends commands for an entity.
    pub fn command(&self, device: &Device, spec: &EntitySpec) -> String {
        format!("{}/{}/{}/set", self.base_topic, device.slug, spec.key)
    }

    /// The retained discovery config topic; an empty retained payload there removes the entity from HA.
    pub fn config(&self, device: &Device, spec: &EntitySpec) -> String {
        format!(
            "{}/{}/facegate_{}/{}/config",
            self.discovery_prefix,
            spec.component.as_str(),
            device.slug,
            spec.key
        )
    }

    /// HA's birth/will topic: `online` there means "republish discovery and states".
    pub fn ha_status(&self) -> String {
        format!("{}/status", self.discovery_prefix)
    }
}

/// The `device` block shared by all entities of a device: HA groups them on one device page.
pub fn device_block(device: &Device) -> Value {
    json!({
        "identifiers": [format!("facegate_{}", device.slug)],
        "name": device.name,
        "manufacturer": "facegate",
        "model": "Face access gate",
        "sw_version": env!("CARGO_PKG_VERSION"),
    })
}

/// The origin block: tells HA (and its logs) which software sent the discovery message.
pub fn origin_block() -> Value {
    json!({
        "name": "facegate",
        "sw": env!("CARGO_PKG_VERSION"),
    })
}

/// The discovery config of one entity of `device`.
pub fn config_payload(topics: &Topics, device: &Device, spec: &EntitySpec) -> Value {
    let mut c = Map::new();
    let mut put = |k: &str, v: Value| {
        c.insert(k.to_string(), v);
    };
    put("name", json!(spec.name));
    put(
        "unique_id",
        json!(format!("facegate_{}_{}", device.slug, spec.key)),
    );
    put("availability_topic", json!(topics.availability()));
    put("device", device_block(device));
    put("o", origin_block());
    match spec.category {
        Category::Primary => {}
        Category::Config => put("entity_category", json!("config")),
        Category::Diagnostic => put("entity_category", json!("diagnostic")),
    }
    if let Some(icon) = spec.icon {
        put("icon", json!(icon));
    }
    let state = json!(topics.state(device, spec));
    let command = json!(topics.command(device, spec));
    match spec.kind {
        Kind::Event { types } => {
            put("state_topic", state);
            put("event_types", json!(types));
        }
        Kind::JsonSensor { value_key } => {
            put("state_topic", state.clone());
            put(
                "value_template",
                json!(format!("{{{{ value_json.{value_key} }}}}")),
            );
            put("json_attributes_topic", state);
        }
        Kind::NumberSensor { unit, precision } => {
            put("state_topic", state);
            put("unit_of_measurement", json!(unit));
            put("state_class", json!("measurement"));
            put("suggested_display_precision", json!(precision));
        }
        Kind::TextSensor => put("state_topic", state),
        Kind::BinarySensor { device_class } => {
            put("state_topic", state);
            put("device_class", json!(device_class));
        }
        Kind::Jpeg => {
            put("image_topic", state);
            put("content_type", json!("image/jpeg"));
        }
        Kind::Switch => {
            put("state_topic", state);
            put("command_topic", command);
        }
        Kind::Number { min, max, step } => {
            put("state_topic", state);
            put("command_topic", command);
            // The ranges come from f32 settings: round so HA shows 0.3, not 0.30000001192092896.
            let r = |x: f64| (x * 1e4).round() / 1e4;
            put("min", json!(r(min)));
            put("max", json!(r(max)));
            put("step", json!(step));
            put("mode", json!("box"));
        }
        Kind::Text { max } => {
            put("state_topic", state);
            put("command_topic", command);
            put("min", json!(0));
            put("max", json!(max));
        }
        Kind::Button => put("command_topic", command),
    }
    Value::Object(c)
}

/// One retained message to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigMessage {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// The discovery configs of every entity in [`ENTITIES`] for `device`, ready to publish retained.
pub fn discovery_messages(topics: &Topics, device: &Device) -> Vec<ConfigMessage> {
    ENTITIES
        .iter()
        .map(|spec| ConfigMessage {
            topic: topics.config(device, spec),
            payload: config_payload(topics, device, spec)
                .to_string()
                .into_bytes(),
        })
        .collect()
}

/// Empty retained payloads that remove every entity of `device` from HA (a device taken out of the options).
pub fn removal_messages(topics: &Topics, device: &Device) -> Vec<ConfigMessage> {
    ENTITIES
        .iter()
        .map(|spec| ConfigMessage {
            topic: topics.config(device, spec),
            payload: Vec::new(),
        })
        .collect()
}

/// The filter that finds every facegate device's retained discovery (each has the access event entity), so
/// a device published by an earlier run and since taken out of the options can be cleared.
pub fn device_config_filter(topics: &Topics) -> String {
    let access = EntityKey::Access.spec();
    format!(
        "{}/{}/+/{}/config",
        topics.discovery_prefix,
        access.component.as_str(),
        access.key
    )
}

/// The device slug in an access-event config topic (`<prefix>/event/facegate_<slug>/access/config`).
pub fn device_slug_in_config_topic(topics: &Topics, topic: &str) -> Option<String> {
    let access = EntityKey::Access.spec();
    let rest = topic.strip_prefix(&format!(
        "{}/{}/",
        topics.discovery_prefix,
        access.component.as_str()
    ))?;
    let node = rest.strip_suffix(&format!("/{}/config", access.key))?;
    let slug = node.strip_prefix("facegate_")?;
    (!slug.is_empty() && !slug.contains('/')).then(|| slug.to_string())
}

/// The table entry whose object id is `id` (a topic segment), if any; code uses [`EntityKey::spec`].
pub fn entity(id: &str) -> Option<&'static EntitySpec> {
    EntityKey::parse(id).map(EntityKey::spec)
}

#[cfg(test)]
mod tests;
