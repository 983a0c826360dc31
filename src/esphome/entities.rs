//! Entities as facegate sees them: kind, key, name, object id, and their states.
//!
//! ESPHome 2026.x no longer sends `object_id` to clients speaking API >= 1.14: clients derive it from the
//! entity name exactly as the firmware does (lower-case, spaces and anything but `[a-z0-9_-]` to `_`), and the
//! entity key is the 32-bit FNV-1 hash of that object id. Gates name their entities by object id.

use serde::Serialize;

use super::msg::Incoming;

/// The object id ESPHome derives from an entity name: "Door lock" -> "door_lock".
pub fn object_id_from_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            let c = if c == ' ' {
                '_'
            } else {
                c.to_ascii_lowercase()
            };
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The entity key for an object id (what the firmware uses in every state and command).
pub fn key_for(object_id: &str) -> u32 {
    esphome_native_api::hash::hash_fnv1(&object_id.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    BinarySensor,
    Sensor,
    Switch,
    TextSensor,
    Select,
    Lock,
    Button,
}

/// One entity of a board.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entity {
    pub kind: EntityKind,
    pub key: u32,
    pub name: String,
    pub object_id: String,
    /// A select's options (empty otherwise).
    pub options: Vec<String>,
}

impl Entity {
    /// The entity described by a list-entities message, if it is one.
    pub fn from_listing(m: &Incoming) -> Option<Entity> {
        let (kind, key, name, oid, options) = match m {
            Incoming::ListBinarySensor(e) => (
                EntityKind::BinarySensor,
                e.key,
                &e.name,
                &e.object_id,
                vec![],
            ),
            Incoming::ListSensor(e) => (EntityKind::Sensor, e.key, &e.name, &e.object_id, vec![]),
            Incoming::ListSwitch(e) => (EntityKind::Switch, e.key, &e.name, &e.object_id, vec![]),
            Incoming::ListTextSensor(e) => {
                (EntityKind::TextSensor, e.key, &e.name, &e.object_id, vec![])
            }
            Incoming::ListSelect(e) => (
                EntityKind::Select,
                e.key,
                &e.name,
                &e.object_id,
                e.options.clone(),
            ),
            Incoming::ListLock(e) => (EntityKind::Lock, e.key, &e.name, &e.object_id, vec![]),
            Incoming::ListButton(e) => (EntityKind::Button, e.key, &e.name, &e.object_id, vec![]),
            _ => return None,
        };
        // Older firmware still sends object_id; newer leaves it empty.
        let object_id = if oid.is_empty() {
            object_id_from_name(name)
        } else {
            oid.clone()
        };
        Some(Entity {
            kind,
            key,
            name: name.clone(),
            object_id,
            options,
        })
    }
}

/// A lock's state (ESPHome `LockState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LockState {
    Unknown,
    Locked,
    Unlocked,
    Jammed,
    Locking,
    Unlocking,
    Open,
}

impl LockState {
    pub fn from_wire(v: i32) -> LockState {
        match v {
            1 => LockState::Locked,
            2 => LockState::Unlocked,
            3 => LockState::Jammed,
            4 => LockState::Locking,
            5 => LockState::Unlocking,
            6 | 7 => LockState::Open,
            _ => LockState::Unknown,
        }
    }

    pub fn to_wire(self) -> i32 {
        match self {
            LockState::Unknown => 0,
            LockState::Locked => 1,
            LockState::Unlocked => 2,
            LockState::Jammed => 3,
            LockState::Locking => 4,
            LockState::Unlocking => 5,
            LockState::Open => 7,
        }
    }
}

/// The last known state of an entity.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum EntityState {
    Binary(bool),
    Number(f32),
    Text(String),
    Lock(LockState),
    /// The board has no value yet (`missing_state`).
    Missing,
}

impl EntityState {
    /// The (key, state) carried by a state message, if it is one.
    pub fn from_update(m: &Incoming) -> Option<(u32, EntityState)> {
        let miss = |missing: bool, s: EntityState| if missing { EntityState::Missing } else { s };
        Some(match m {
            Incoming::BinarySensorState(s) => {
                (s.key, miss(s.missing_state, EntityState::Binary(s.state)))
            }
            Incoming::SensorState(s) => (
                s.key,
                miss(
                    s.missing_state || s.state.is_nan(),
                    EntityState::Number(s.state),
                ),
            ),
            Incoming::SwitchState(s) => (s.key, EntityState::Binary(s.state)),
            Incoming::TextSensorState(s) => (
                s.key,
                miss(s.missing_state, EntityState::Text(s.state.clone())),
            ),
            Incoming::SelectState(s) => (
                s.key,
                miss(s.missing_state, EntityState::Text(s.state.clone())),
            ),
            Incoming::LockState(s) => (s.key, EntityState::Lock(LockState::from_wire(s.state))),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_and_keys_match_esphome() {
        assert_eq!(object_id_from_name("Door lock"), "door_lock");
        assert_eq!(object_id_from_name("Call floor 1"), "call_floor_1");
        assert_eq!(object_id_from_name("Lift status!"), "lift_status_");
        assert_eq!(object_id_from_name("Foo-Bar"), "foo-bar");
        // Reference values from ESPHome's hash_fnv1 (also the crate's own tests).
        assert_eq!(key_for("foo"), 0x408F5E13);
        assert_eq!(key_for("my_sensor_name"), 0x2760962A);
    }
}
