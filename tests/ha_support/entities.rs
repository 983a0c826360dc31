//! Entities, decisions and controls against a real Home Assistant and a real mosquitto: every entity exists
//! with its exact entity id and name on the right device and the right state, and HA logs nothing about our
//! discovery; decisions fire the access event and update the last person, the face image and the person's
//! tracker; HA's controls reach the live settings, the gallery and the enrollment channel; people removed are
//! removed from HA. Also measures decision -> state in HA.

use std::time::{Duration, Instant};

use super::{decision, decision_latencies, jpeg, summary, wait_change, Rig, T};
use crate::common::ha::{collect, unique, HaVersion};
use facegate::config::ServiceConfig;
use facegate::decide::{Action, Verdict};
use facegate::gallery::PersonInfo;
use facegate::ha::bridge::CameraCommand;
use facegate::ha::discovery::{person_slug, slug, ENTITIES};
use facegate::pipeline::{FrameReport, PipelineEvent};
use serde_json::{json, Value};

pub fn entities_exist_with_names_device_and_states(v: HaVersion) {
    let alice = unique("Alice");
    let rig = Rig::start_on(
        v,
        "fgent",
        &[(&alice, "resident")],
        Duration::from_secs(600),
    );
    let ha = rig.ha();
    assert_eq!(ha.release(), v.release(), "the HA under test");
    let prefix = format!("facegate_{}_", rig.device.slug);
    let end = Instant::now() + T;
    while ha.registry(&prefix).len() < ENTITIES.len() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    let entries = ha.registry(&prefix);
    assert_eq!(entries.len(), ENTITIES.len());
    let devices = ha.devices();
    let dev = devices
        .iter()
        .find(|d| d["name"] == rig.device.name.as_str())
        .expect("the camera's device");
    assert_eq!(dev["manufacturer"], "facegate");
    assert_eq!(dev["model"], "Face access gate");
    for spec in ENTITIES {
        let (_, e) = entries
            .iter()
            .find(|(u, _)| *u == format!("{prefix}{}", spec.key))
            .unwrap();
        assert_eq!(e["device_id"], dev["id"], "{}", spec.key);
        // Exactly `<platform>.<device>_<name>`, on every HA version (automations refer to these ids).
        let id = e["entity_id"].as_str().unwrap();
        assert_eq!(
            id,
            format!(
                "{}.{}_{}",
                spec.component.as_str(),
                rig.device.slug,
                slug(spec.name)
            )
        );
        let st = ha.wait_state(id, T, |s| s["state"] != "unavailable");
        assert_eq!(
            st["attributes"]["friendly_name"],
            format!("{} {}", rig.device.name, spec.name),
            "{id}"
        );
    }
    let state = |key: &str| ha.state(&rig.id(key)).unwrap()["state"].clone();
    assert_eq!(state("recognition"), "on");
    assert_eq!(state("require_blink"), "off");
    let default = ServiceConfig::default().vision.match_threshold.to_string();
    assert_eq!(state("match_threshold"), default.as_str());
    assert_eq!(state("camera"), "starting");
    assert_eq!(state("face_present"), "off");
    let mt = ha.state(&rig.id("match_threshold")).unwrap();
    assert_eq!(mt["attributes"]["min"], 0.3);
    assert_eq!(mt["attributes"]["max"], 0.7);
    // The person's tracker and access level, on a device named after them.
    let tracker = rig.person_id(&alice, "presence");
    assert_eq!(tracker, format!("device_tracker.{}", person_slug(&alice)));
    let t = ha.wait_state(&tracker, T, |s| s["state"] == "not_home");
    assert_eq!(t["attributes"]["friendly_name"], alice.as_str());
    let level = rig.person_id(&alice, "access_level");
    assert_eq!(
        level,
        format!("select.{}_access_level", person_slug(&alice))
    );
    let l = ha.wait_state(&level, T, |s| s["state"] == "resident");
    assert_eq!(l["attributes"]["options"], json!(["resident", "guest"]));
    // HA read every discovery payload without a complaint (deprecations included).
    let complaints = discovery_complaints(&ha.log());
    assert!(complaints.is_empty(), "{}", complaints.join("\n"));
    rig.stop();
}

pub fn decisions_fire_events_and_update_states_image_and_tracker(v: HaVersion) {
    let alice = unique("Alice");
    let rig = Rig::start_on(v, "fgdec", &[(&alice, "resident")], Duration::from_secs(2));
    let ha = rig.ha();
    let (access, last, face, present) = (
        rig.id("access"),
        rig.id("last_person"),
        rig.id("last_face"),
        rig.id("face_present"),
    );
    let tracker = rig.person_id(&alice, "presence");
    ha.wait_state(&access, T, |s| s["state"] != "unavailable");
    let changes = ha.ws().subscribe_events("state_changed");

    // An unknown face: the event fires with `unknown`, the last person says so, the image serves the crop.
    let crop = jpeg(1);
    rig.report(
        decision(&rig.device.name, Verdict::Unknown, None),
        Some(crop.clone()),
    );
    let ev = wait_change(&changes, &access, |s| {
        s["attributes"]["event_type"] == "unknown"
    });
    assert_eq!(ev["attributes"]["person"], Value::Null);
    assert_eq!(ev["attributes"]["gate"], rig.device.name.as_str());
    assert_eq!(ev["attributes"]["action"], "none");
    let lp = ha.wait_state(&last, T, |s| s["state"] == "unknown");
    assert_eq!(lp["attributes"]["verdict"], "unknown");
    ha.wait_state(&present, T, |s| s["state"] == "on");
    let end = Instant::now() + T;
    loop {
        let (ct, bytes) = ha.image(&face);
        if bytes == crop {
            assert_eq!(ct, "image/jpeg");
            break;
        }
        assert!(Instant::now() < end, "image entity never served the crop");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A granted decision for Alice: event with person and action, tracker home, then not_home after 2 s.
    let granted = Verdict::Granted {
        actions: vec![Action::Unlock {
            lock: "door_lock".into(),
        }],
    };
    rig.report(
        decision(&rig.device.name, granted, Some(&alice)),
        Some(jpeg(2)),
    );
    let ev = wait_change(&changes, &access, |s| {
        s["attributes"]["event_type"] == "granted"
    });
    assert_eq!(ev["attributes"]["person"], alice.as_str());
    assert_eq!(ev["attributes"]["action"], "unlock door_lock");
    ha.wait_state(&last, T, |s| s["state"] == alice.as_str());
    let home = Instant::now();
    ha.wait_state(&tracker, T, |s| s["state"] == "home");
    ha.wait_state(&tracker, T, |s| s["state"] == "not_home");
    let away = home.elapsed();
    assert!(away >= Duration::from_millis(1500), "{away:?}");

    // Diagnostics: frame rate and latency from the reports.
    ha.wait_state(&rig.id("latency"), T, |s| s["state"] == "40");

    // Decision -> state in HA (HA's own `last_changed` of the event entity minus the hand-over to the bridge).
    let lat = decision_latencies(&rig, &changes, 30);
    eprintln!(
        "decision -> HA {} state: {}",
        rig.ha().version.release(),
        summary(&lat)
    );
    rig.stop();
}

pub fn controls_in_ha_reach_settings_gallery_and_enrollment(v: HaVersion) {
    let alice = unique("Alice");
    let rig = Rig::start_on(
        v,
        "fgctl",
        &[(&alice, "resident")],
        Duration::from_secs(600),
    );
    let ha = rig.ha();
    let mt = rig.id("match_threshold");
    let default = ServiceConfig::default().vision.match_threshold.to_string();
    ha.wait_state(&mt, T, |s| s["state"] == default.as_str());

    ha.call_service(
        "number",
        "set_value",
        json!({"entity_id": mt, "value": 0.45}),
    );
    ha.wait_state(&mt, T, |s| s["state"] == "0.45");
    assert_eq!(rig.settings.get().match_threshold, 0.45);
    let rec = rig.id("recognition");
    ha.call_service("switch", "turn_off", json!({"entity_id": rec}));
    ha.wait_state(&rec, T, |s| s["state"] == "off");
    assert!(!rig.settings.get().recognition_enabled);
    let saved = rig.sink.0.lock().unwrap().clone();
    assert_eq!(saved.last().unwrap().1, rig.settings.get(), "persisted");

    // Access level from the person's select writes the gallery.
    let level = rig.person_id(&alice, "access_level");
    ha.call_service(
        "select",
        "select_option",
        json!({"entity_id": level, "option": "guest"}),
    );
    ha.wait_state(&level, T, |s| s["state"] == "guest");
    assert_eq!(rig.people.level(&alice).as_deref(), Some("guest"));

    // Enrollment: pressing Enroll with no name fails with a reason; with a name the camera is asked.
    let changes = ha.ws().subscribe_events("state_changed");
    let enroll = rig.id("enroll");
    let events = rig.id("enrollment");
    ha.call_service("button", "press", json!({"entity_id": enroll}));
    let ev = wait_change(&changes, &events, |s| {
        s["attributes"]["event_type"] == "failed"
    });
    assert!(ev["attributes"]["reason"]
        .as_str()
        .unwrap()
        .contains("Enroll name"));
    let bob = unique("Bob");
    ha.call_service(
        "text",
        "set_value",
        json!({"entity_id": rig.id("enroll_name"), "value": bob}),
    );
    ha.wait_state(&rig.id("enroll_name"), T, |s| s["state"] == bob.as_str());
    ha.call_service("button", "press", json!({"entity_id": enroll}));
    let cmd = rig.commands.recv_timeout(T).expect("enroll command");
    assert_eq!(cmd, CameraCommand::Enroll { name: bob.clone() });
    // The pipeline enrolls and reports; HA gets the event and Bob's entities.
    rig.people.list.lock().unwrap().push(PersonInfo {
        name: bob.clone(),
        access_level: "resident".into(),
        embeddings: 5,
        created: 0,
    });
    let done = FrameReport {
        events: vec![PipelineEvent::Enrollment {
            name: bob.clone(),
            ok: true,
            samples: 5,
            reason: None,
        }],
        ..FrameReport::default()
    };
    rig.report(done, None);
    let ev = wait_change(&changes, &events, |s| {
        s["attributes"]["event_type"] == "enrolled"
    });
    assert_eq!(ev["attributes"]["name"], bob.as_str());
    assert_eq!(ev["attributes"]["samples"], 5);
    let bob_tracker = rig.person_id(&bob, "presence");
    ha.wait_state(&bob_tracker, T, |s| s["state"] == "not_home");
    // Enrolling a name already taken is refused before the camera is asked.
    ha.call_service("button", "press", json!({"entity_id": enroll}));
    let ev = wait_change(&changes, &events, |s| {
        s["attributes"]["event_type"] == "failed"
    });
    assert!(ev["attributes"]["reason"]
        .as_str()
        .unwrap()
        .contains("already taken"));

    // Removing Alice from the gallery removes her entities from HA.
    let alice_tracker = rig.person_id(&alice, "presence");
    rig.people.list.lock().unwrap().retain(|p| p.name != alice);
    let end = Instant::now() + T;
    while ha.state(&alice_tracker).is_some() {
        assert!(Instant::now() < end, "{alice_tracker} still in HA");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ha.state(&level).is_none());
    // Nothing of hers stays retained on the broker (her states are cleared after HA dropped the entities),
    // and HA logged no complaint about it (HA 2024.3 logs an error for an empty state on a live select).
    std::thread::sleep(Duration::from_secs(3));
    let ps = person_slug(&alice);
    let left = collect(
        rig.broker(),
        &[
            &format!("fgctl/people/{ps}/#"),
            &format!("homeassistant/+/facegate_people_{ps}/+/config"),
        ],
        Duration::from_secs(1),
    );
    assert!(left.is_empty(), "{:?}", left.keys());
    let complaints = discovery_complaints(&ha.log());
    assert!(complaints.is_empty(), "{}", complaints.join("\n"));
    rig.stop();
}

/// The warnings and errors in HA's log about MQTT or discovery (each with its continuation lines: HA logs the
/// offending payload on the next lines).
pub fn discovery_complaints(log: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut inside = false;
    for line in log.lines() {
        let header = line.len() > 24 && line.as_bytes()[4] == b'-' && line.contains(" (");
        if header {
            let lower = line.to_lowercase();
            inside = (line.contains(" WARNING ") || line.contains(" ERROR "))
                && (lower.contains("mqtt")
                    || lower.contains("discovery")
                    || lower.contains("facegate"));
            if inside {
                out.push(line.to_string());
            }
        } else if inside {
            if let Some(last) = out.last_mut() {
                last.push('\n');
                last.push_str(line);
            }
        }
    }
    out
}
