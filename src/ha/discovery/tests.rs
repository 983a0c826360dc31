//! Exact discovery payloads, one test per entity kind: what HA 2024.3 and current HA read.

use serde_json::{json, Value};

use super::*;

fn topics() -> Topics {
    Topics::new(&MqttConfig::default())
}

fn front() -> Device {
    Device::new("Front door").unwrap()
}

fn payload(key: &str) -> Value {
    config_payload(&topics(), &front(), entity(key).unwrap())
}

/// The keys every entity carries, merged with the platform-specific ones.
fn common(key: &str, name: &str, extra: Value) -> Value {
    let mut v = json!({
        "name": name,
        "unique_id": format!("facegate_front_door_{key}"),
        "availability_topic": "facegate/availability",
        "device": {
            "identifiers": ["facegate_front_door"],
            "name": "Front door",
            "manufacturer": "facegate",
            "model": "Face access gate",
            "sw_version": env!("CARGO_PKG_VERSION"),
        },
        "o": {"name": "facegate", "sw": env!("CARGO_PKG_VERSION")},
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

#[test]
fn event_access() {
    let want = common(
        "access",
        "Access",
        json!({
            "icon": "mdi:door",
            "state_topic": "facegate/front_door/access/state",
            "event_types": ["granted", "notify_only", "denied", "unknown", "spoof"],
        }),
    );
    assert_eq!(payload("access"), want);
    assert_eq!(
        topics().config(&front(), entity("access").unwrap()),
        "homeassistant/event/facegate_front_door/access/config"
    );
}

#[test]
fn sensor_last_person_json() {
    let want = common(
        "last_person",
        "Last person",
        json!({
            "icon": "mdi:account",
            "state_topic": "facegate/front_door/last_person/state",
            "value_template": "{{ value_json.person }}",
            "json_attributes_topic": "facegate/front_door/last_person/state",
        }),
    );
    assert_eq!(payload("last_person"), want);
}

#[test]
fn sensor_diagnostic_number_and_text() {
    let want = common(
        "fps",
        "Frame rate",
        json!({
            "entity_category": "diagnostic",
            "icon": "mdi:speedometer",
            "state_topic": "facegate/front_door/fps/state",
            "unit_of_measurement": "fps",
            "state_class": "measurement",
            "suggested_display_precision": 1,
        }),
    );
    assert_eq!(payload("fps"), want);
    let want = common(
        "camera",
        "Camera",
        json!({
            "entity_category": "diagnostic",
            "icon": "mdi:cctv",
            "state_topic": "facegate/front_door/camera/state",
        }),
    );
    assert_eq!(payload("camera"), want);
}

#[test]
fn binary_sensor_face_present() {
    let want = common(
        "face_present",
        "Face present",
        json!({
            "state_topic": "facegate/front_door/face_present/state",
            "device_class": "occupancy",
        }),
    );
    assert_eq!(payload("face_present"), want);
    assert_eq!(
        topics().config(&front(), entity("face_present").unwrap()),
        "homeassistant/binary_sensor/facegate_front_door/face_present/config"
    );
}

#[test]
fn image_last_face() {
    let want = common(
        "last_face",
        "Last face",
        json!({
            "image_topic": "facegate/front_door/last_face/state",
            "content_type": "image/jpeg",
        }),
    );
    assert_eq!(payload("last_face"), want);
}

#[test]
fn switch_settings() {
    let want = common(
        "recognition",
        "Recognition",
        json!({
            "entity_category": "config",
            "icon": "mdi:face-recognition",
            "state_topic": "facegate/front_door/recognition/state",
            "command_topic": "facegate/front_door/recognition/set",
        }),
    );
    assert_eq!(payload("recognition"), want);
    assert_eq!(
        payload("require_blink")["command_topic"],
        "facegate/front_door/require_blink/set"
    );
}

#[test]
fn number_thresholds() {
    let want = common(
        "match_threshold",
        "Match threshold",
        json!({
            "entity_category": "config",
            "icon": "mdi:tune",
            "state_topic": "facegate/front_door/match_threshold/state",
            "command_topic": "facegate/front_door/match_threshold/set",
            "min": 0.3, "max": 0.7, "step": 0.01, "mode": "box",
        }),
    );
    assert_eq!(payload("match_threshold"), want);
    assert_eq!(
        payload("antispoof_threshold")["name"],
        "Anti-spoof threshold"
    );
}

#[test]
fn text_and_button_enrollment() {
    let want = common(
        "enroll_name",
        "Enroll name",
        json!({
            "entity_category": "config",
            "icon": "mdi:account-plus",
            "state_topic": "facegate/front_door/enroll_name/state",
            "command_topic": "facegate/front_door/enroll_name/set",
            "min": 0, "max": 64,
        }),
    );
    assert_eq!(payload("enroll_name"), want);
    let want = common(
        "enroll",
        "Enroll",
        json!({
            "entity_category": "config",
            "icon": "mdi:account-plus",
            "command_topic": "facegate/front_door/enroll/set",
        }),
    );
    assert_eq!(payload("enroll"), want);
    assert_eq!(
        topics().config(&front(), entity("enroll").unwrap()),
        "homeassistant/button/facegate_front_door/enroll/config"
    );
}

#[test]
fn table_keys_and_ids_are_unique_and_messages_cover_it() {
    let mut keys: Vec<_> = ENTITIES.iter().map(|e| e.key).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), ENTITIES.len());
    // Every key has exactly one row, and its object id parses back to it.
    assert_eq!(keys.len(), EntityKey::ALL.len());
    for &k in EntityKey::ALL {
        assert_eq!(k.spec().key, k);
        assert_eq!(EntityKey::parse(k.as_str()), Some(k));
        assert_eq!(entity(k.as_str()).map(|e| e.key), Some(k));
    }
    assert_eq!(EntityKey::parse("match_treshold"), None);
    let msgs = discovery_messages(&topics(), &front());
    assert_eq!(msgs.len(), ENTITIES.len());
    for (m, spec) in msgs.iter().zip(ENTITIES) {
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(v, config_payload(&topics(), &front(), spec));
    }
    let gone = removal_messages(&topics(), &front());
    assert!(gone
        .iter()
        .zip(&msgs)
        .all(|(g, m)| g.topic == m.topic && g.payload.is_empty()));
}

#[test]
fn custom_prefixes_and_slugs() {
    let mqtt = MqttConfig {
        discovery_prefix: "ha/".into(),
        base_topic: "gates".into(),
        ..MqttConfig::default()
    };
    let t = Topics::new(&mqtt);
    let lift = Device::new("  Lift — Floor #2 ").unwrap();
    assert_eq!(lift.slug, "lift_floor_2");
    assert_eq!(lift.name, "Lift — Floor #2");
    assert_eq!(t.availability(), "gates/availability");
    assert_eq!(
        t.config(&lift, entity("last_face").unwrap()),
        "ha/image/facegate_lift_floor_2/last_face/config"
    );
    assert_eq!(t.ha_status(), "ha/status");
    assert!(matches!(
        Device::new(" #!? "),
        Err(HaError::BadDeviceName(_))
    ));
    // The people's topics live under <base>/people: no camera may take that name.
    assert!(matches!(
        Device::new("People"),
        Err(HaError::BadDeviceName(_))
    ));
}

#[test]
fn person_entities_tracker_and_access_level() {
    let t = topics();
    let levels = vec!["resident".to_string(), "guest".to_string()];
    let device = json!({
        "identifiers": ["facegate_people_alice_b"],
        "name": "Alice B.",
        "manufacturer": "facegate",
        "model": "Enrolled person",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    let o = json!({"name": "facegate", "sw": env!("CARGO_PKG_VERSION")});
    assert_eq!(
        person_payload(&t, "Alice B.", PersonEntity::Presence, &levels),
        json!({
            "name": null,
            "unique_id": "facegate_people_alice_b_presence",
            "availability_topic": "facegate/availability",
            "device": device,
            "o": o,
            "state_topic": "facegate/people/alice_b/presence/state",
            "payload_home": "home",
            "payload_not_home": "not_home",
            "source_type": "router",
            "icon": "mdi:account",
        })
    );
    assert_eq!(
        person_payload(&t, "Alice B.", PersonEntity::AccessLevel, &levels),
        json!({
            "name": "Access level",
            "unique_id": "facegate_people_alice_b_access_level",
            "availability_topic": "facegate/availability",
            "device": device,
            "o": o,
            "state_topic": "facegate/people/alice_b/access_level/state",
            "command_topic": "facegate/people/alice_b/access_level/set",
            "entity_category": "config",
            "options": ["resident", "guest"],
            "icon": "mdi:key",
        })
    );
    let msgs = person_messages(&t, "Alice B.", &levels);
    assert_eq!(
        msgs.iter().map(|m| m.topic.as_str()).collect::<Vec<_>>(),
        [
            "homeassistant/device_tracker/facegate_people_alice_b/presence/config",
            "homeassistant/select/facegate_people_alice_b/access_level/config",
        ]
    );
    assert_eq!(
        person_slug_in_config_topic(&t, &msgs[1].topic).as_deref(),
        Some("alice_b")
    );
    assert_eq!(
        person_slug_in_config_topic(&t, "homeassistant/select/facegate_front_door/x/config"),
        None
    );
    let gone = person_removal_messages(&t, "alice_b");
    assert_eq!(gone.len(), 4);
    assert!(gone.iter().all(|m| m.payload.is_empty()));
    // A name without ASCII letters still gets a stable, usable id.
    let s = person_slug("张伟");
    assert!(s.starts_with('p') && s.len() == 13, "{s}");
    assert_eq!(s, person_slug("张伟"));
}

#[test]
fn device_configs_of_earlier_runs_are_found() {
    let t = topics();
    let f = device_config_filter(&t);
    assert_eq!(f, "homeassistant/event/+/access/config");
    let topic = t.config(&front(), EntityKey::Access.spec());
    assert_eq!(
        device_slug_in_config_topic(&t, &topic).as_deref(),
        Some("front_door")
    );
    for other in [
        "homeassistant/event/zigbee_x/access/config",
        "homeassistant/event/facegate_front_door/enrollment/config",
        "homeassistant/sensor/facegate_front_door/access/config",
        "homeassistant/event/facegate_/access/config",
    ] {
        assert_eq!(device_slug_in_config_topic(&t, other), None, "{other}");
    }
}
