//! The shipped blueprints (addon/blueprints/) in the real Home Assistant: each is listed by `blueprint/list`
//! without an error, an automation instantiated from each loads (its entity is on), an automation missing a
//! required input does not, and two of them act: a granted decision on an MQTT event entity makes Home
//! Assistant unlock an MQTT lock, and a spoof makes it send a notification carrying the face image.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::ha::{Broker, HomeAssistant};
use serde_json::{json, Value};

const BLUEPRINTS: [&str; 3] = [
    "announce_arrivals.yaml",
    "notify_unknown_or_spoof.yaml",
    "unlock_through_home_assistant.yaml",
];

/// One automation per blueprint, plus one without its required lock.
const AUTOMATIONS: &str = r#"
- id: facegate_announce
  alias: facegate announce
  use_blueprint:
    path: facegate/announce_arrivals.yaml
    input:
      access_event: event.bp_door_access
      speaker: media_player.hall
      tts_entity: tts.piper
- id: facegate_notify
  alias: facegate notify
  use_blueprint:
    path: facegate/notify_unknown_or_spoof.yaml
    input:
      access_event: event.bp_door_access
      face_image: image.bp_door_last_face
      notify_service: notify.persistent_notification
- id: facegate_unlock
  alias: facegate unlock
  use_blueprint:
    path: facegate/unlock_through_home_assistant.yaml
    input:
      access_event: event.bp_door_access
      lock_entity: lock.bp_door_lock
- id: facegate_unlock_without_lock
  alias: facegate unlock without lock
  use_blueprint:
    path: facegate/unlock_through_home_assistant.yaml
    input:
      access_event: event.bp_door_access
"#;

/// MQTT discovery for an event entity shaped like facegate's Access event, and a lock.
fn discover(client: &rumqttc::Client) {
    let device = json!({"identifiers": ["bp_door"], "name": "BP door"});
    let event = json!({"name": "Access", "unique_id": "bp_door_access", "object_id": "bp_door_access",
        "state_topic": "bp/door/access", "event_types": ["granted", "notify_only", "denied", "unknown", "spoof"],
        "device": device});
    let lock = json!({"name": "Lock", "unique_id": "bp_door_lock", "object_id": "bp_door_lock",
        "command_topic": "bp/door/lock/set", "state_topic": "bp/door/lock/state", "device": device});
    for (topic, payload) in [
        ("homeassistant/event/bp_door/access/config", event),
        ("homeassistant/lock/bp_door/lock/config", lock),
    ] {
        client
            .publish(topic, rumqttc::QoS::AtLeastOnce, true, payload.to_string())
            .unwrap();
    }
    client
        .publish(
            "bp/door/lock/state",
            rumqttc::QoS::AtLeastOnce,
            true,
            "LOCKED",
        )
        .unwrap();
}

#[test]
fn blueprints_load_instantiate_and_act_in_home_assistant() {
    let broker = Broker::start();
    let ha = HomeAssistant::start(&broker);
    let dir = ha.dir.path();
    let target = dir.join("blueprints/automation/facegate");
    std::fs::create_dir_all(&target).unwrap();
    for b in BLUEPRINTS {
        std::fs::copy(
            common::repo().join("addon/blueprints").join(b),
            target.join(b),
        )
        .unwrap();
    }
    std::fs::write(dir.join("automations.yaml"), AUTOMATIONS).unwrap();
    let mut config = std::fs::read_to_string(dir.join("configuration.yaml")).unwrap();
    config.push_str("automation: !include automations.yaml\nnotify:\n");
    std::fs::write(dir.join("configuration.yaml"), config).unwrap();
    ha.restart(&broker);

    // Listed, each with its metadata and no error.
    let list = ha
        .ws()
        .call(json!({"type": "blueprint/list", "domain": "automation"}));
    for b in BLUEPRINTS {
        let entry = &list[format!("facegate/{b}")];
        assert!(entry["error"].is_null(), "{b}: {entry}");
        assert!(
            entry["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("facegate - "),
            "{b}: {entry}"
        );
        assert_eq!(entry["metadata"]["domain"], "automation");
    }

    // Instantiated: the three complete automations are on; the one missing its lock is not running.
    for id in ["facegate_announce", "facegate_notify", "facegate_unlock"] {
        let s = ha.wait_state(&format!("automation.{id}"), Duration::from_secs(30), |_| {
            true
        });
        assert_eq!(s["state"], "on", "automation.{id}: {s}; log: {}", ha.log());
    }
    let broken = ha.state("automation.facegate_unlock_without_lock");
    assert!(
        broken.as_ref().is_none_or(|s| s["state"] == "unavailable"),
        "{broken:?}"
    );
    assert!(
        ha.log().contains("Missing input lock_entity"),
        "{}",
        ha.log()
    );

    // Acting: a grant unlocks the lock through HA; a spoof notifies with the face image.
    let (client, mut conn) = broker.client("blueprint-test");
    client
        .subscribe("bp/door/lock/set", rumqttc::QoS::AtLeastOnce)
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    let _ = tx.send(String::from_utf8_lossy(&p.payload).into_owned());
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    discover(&client);
    ha.wait_state("lock.bp_door_lock", Duration::from_secs(30), |s| {
        s["state"] == "locked"
    });
    ha.wait_state("event.bp_door_access", Duration::from_secs(30), |_| true);

    let publish = |v: Value| {
        client
            .publish(
                "bp/door/access",
                rumqttc::QoS::AtLeastOnce,
                false,
                v.to_string(),
            )
            .unwrap()
    };
    publish(json!({"event_type": "granted", "person": "Anna", "gate": "Front door"}));
    let command = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no unlock command; log: {}", ha.log()));
    assert_eq!(command, "UNLOCK");

    publish(json!({"event_type": "spoof", "person": null, "gate": "Front door"}));
    let mut ws = ha.ws();
    let end = std::time::Instant::now() + Duration::from_secs(30);
    let note = loop {
        let notes = ws.call(json!({"type": "persistent_notification/get"}));
        if let Some(n) = notes.as_array().and_then(|a| a.first()) {
            break n.clone();
        }
        assert!(
            std::time::Instant::now() < end,
            "no notification; log: {}",
            ha.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(note["title"], "Spoof attempt at Front door", "{note}");
    assert_eq!(
        note["message"], "A photo or screen was held up to the camera.",
        "{note}"
    );
    // The unknown-or-spoof blueprint ignores grants: exactly one notification.
    let notes = ws.call(json!({"type": "persistent_notification/get"}));
    assert_eq!(notes.as_array().unwrap().len(), 1, "{notes}");
}
