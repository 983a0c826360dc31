//! The bridge against a real Home Assistant 2024.3.3 and a real mosquitto (tests/common/ha.rs), fed with
//! pipeline reports built here (the camera side is proven in tests/ha_service.rs): every entity exists with
//! its name on the right device and the right state; decisions fire the access event and update the last
//! person, the face image and the person's tracker; HA's controls reach the live settings, the gallery and
//! the enrollment channel; people removed are removed from HA. Also measures decision -> state in HA.

mod common;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::ha::{mqtt_for, shared, unique, FakePeople, FakeSink, HomeAssistant};
use facegate::config::ServiceConfig;
use facegate::decide::{Action, Decision, Verdict};
use facegate::gallery::PersonInfo;
use facegate::ha::bridge::{
    Bridge, BridgeInput, BridgeOptions, BridgeSender, CameraCommand, DeviceSetup,
};
use facegate::ha::discovery::{person_slug, Device, ENTITIES};
use facegate::pipeline::{FaceInView, FrameReport, PipelineEvent};
use facegate::settings::{LiveSettings, SettingsHandle};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(15);

/// A bridge for one device on the shared HA, with handles to everything it touches.
struct Rig {
    rt: tokio::runtime::Runtime,
    bridge: Option<Bridge>,
    tx: BridgeSender,
    device: Device,
    settings: SettingsHandle,
    people: Arc<FakePeople>,
    sink: Arc<FakeSink>,
    commands: mpsc::Receiver<CameraCommand>,
}

impl Rig {
    fn start(base: &str, people: &[(&str, &str)], away_after: Duration) -> Rig {
        let (broker, _) = shared();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let device = Device::new(&unique("Front door")).unwrap();
        let settings = SettingsHandle::new(LiveSettings::from_config(&ServiceConfig::default()));
        let (ctx, commands) = mpsc::channel();
        let people = FakePeople::with(people);
        let sink = Arc::new(FakeSink::default());
        let opts = BridgeOptions {
            mqtt: mqtt_for(broker, base),
            client_id: format!("fg-{base}"),
            access_levels: vec!["resident".into(), "guest".into()],
            away_after,
            event_max_age: Duration::from_secs(60),
            diag_every: Duration::from_secs(1),
            people_every: Duration::from_secs(1),
        };
        let bridge = {
            let _g = rt.enter();
            Bridge::start(
                opts,
                vec![DeviceSetup {
                    device: device.clone(),
                    settings: settings.clone(),
                    commands: Some(ctx),
                }],
                people.clone(),
                sink.clone(),
            )
            .unwrap()
        };
        let tx = bridge.sender();
        Rig {
            rt,
            bridge: Some(bridge),
            tx,
            device,
            settings,
            people,
            sink,
            commands,
        }
    }

    fn ha(&self) -> &'static HomeAssistant {
        &shared().1
    }

    /// The entity id HA gave this device's entity `key`.
    fn id(&self, key: &str) -> String {
        self.ha()
            .entity_id(&format!("facegate_{}_{key}", self.device.slug), T)
    }

    fn person_id(&self, name: &str, key: &str) -> String {
        self.ha()
            .entity_id(&format!("facegate_people_{}_{key}", person_slug(name)), T)
    }

    fn report(&self, report: FrameReport, jpeg: Option<Vec<u8>>) {
        assert!(self.tx.send(BridgeInput::Report {
            device: self.device.slug.clone(),
            report,
            face_jpeg: jpeg,
        }));
    }

    fn stop(mut self) {
        let b = self.bridge.take().unwrap();
        self.rt.block_on(b.shutdown());
    }
}

fn decision(gate: &str, verdict: Verdict, person: Option<&str>) -> FrameReport {
    let d = Decision {
        gate: gate.into(),
        track_id: 1,
        person: person.map(str::to_string),
        confidence: 0.9,
        liveness: 0.95,
        verdict,
        at: SystemTime::now(),
    };
    FrameReport {
        frame: 1,
        faces: vec![FaceInView {
            track: 1,
            bbox: [10.0, 10.0, 80.0, 80.0],
            person: person.map(str::to_string),
            blinks: 0,
            live: Some(true),
        }],
        events: vec![PipelineEvent::Decision {
            frame: 1,
            t: 0.1,
            decision: d,
        }],
        latency_s: 0.04,
    }
}

/// A small JPEG (a gradient, no person), as the face crop.
fn jpeg(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 4, y as u8 * 4, seed]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap();
    out
}

/// Waits on HA's `state_changed` stream for `entity_id`'s new state to satisfy `pred`.
fn wait_change(
    rx: &mpsc::Receiver<Value>,
    entity_id: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let end = Instant::now() + T;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let ev = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no state_changed for {entity_id}"));
        if ev["data"]["entity_id"] == entity_id && pred(&ev["data"]["new_state"]) {
            return ev["data"]["new_state"].clone();
        }
    }
}

#[test]
fn entities_exist_with_names_device_and_states() {
    let alice = unique("Alice");
    let rig = Rig::start("fgent", &[(&alice, "resident")], Duration::from_secs(600));
    let ha = rig.ha();
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
        let id = e["entity_id"].as_str().unwrap();
        assert!(
            id.starts_with(&format!("{}.", spec.component.as_str())),
            "{id}"
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
    let l = ha.wait_state(&level, T, |s| s["state"] == "resident");
    assert_eq!(l["attributes"]["options"], json!(["resident", "guest"]));
    rig.stop();
}

#[test]
fn decisions_fire_events_and_update_states_image_and_tracker() {
    let alice = unique("Alice");
    let rig = Rig::start("fgdec", &[(&alice, "resident")], Duration::from_secs(2));
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

    // Decision -> state in HA (the event entity's state changes when HA has processed the message).
    let mut lat = Vec::new();
    for i in 0..30 {
        let verdict = if i % 2 == 0 {
            Verdict::Unknown
        } else {
            Verdict::Spoof
        };
        let want = if i % 2 == 0 { "unknown" } else { "spoof" };
        // Let the previous event settle, so each measurement is one decision alone.
        std::thread::sleep(Duration::from_millis(200));
        let sent = chrono::Utc::now();
        rig.report(decision(&rig.device.name, verdict, None), None);
        let st = wait_change(&changes, &access, |s| s["attributes"]["event_type"] == want);
        // HA's own timestamp of the state change, against the moment the decision was handed over.
        let changed =
            chrono::DateTime::parse_from_rfc3339(st["last_changed"].as_str().unwrap()).unwrap();
        lat.push(
            (changed.with_timezone(&chrono::Utc) - sent)
                .num_microseconds()
                .unwrap() as f64
                / 1000.0,
        );
    }
    lat.sort_by(f64::total_cmp);
    eprintln!(
        "decision -> HA state: median {:.1} ms, p95 {:.1} ms, max {:.1} ms over {} decisions",
        lat[lat.len() / 2],
        lat[(lat.len() * 95) / 100],
        lat[lat.len() - 1],
        lat.len()
    );
    rig.stop();
}

#[test]
fn controls_in_ha_reach_settings_gallery_and_enrollment() {
    let alice = unique("Alice");
    let rig = Rig::start("fgctl", &[(&alice, "resident")], Duration::from_secs(600));
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
    rig.stop();
}
