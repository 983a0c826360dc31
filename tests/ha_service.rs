//! `facegate run` end to end against a real Home Assistant 2024.3.3 and a real mosquitto: the real binary,
//! real models, a replay camera playing frames of a real clip from ../shared/faces (two seconds of the
//! person, then an empty scene, looped). Through HA's APIs only: the camera streams, the unknown face fires
//! the access event with `unknown` and its crop is served by the image entity; pressing Enroll in HA enrolls
//! the face in view and the next visit is recognised (event with the person, tracker `home`); switching
//! Recognition off in HA stops decisions; the settings changed in HA survive a restart of facegate.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::ha::{free_port, shared, spawn_guarded, stop_child, Broker};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(120);

/// Frames 1-50 of the d0 clip, then 20 grey frames (the person leaves), as JPEG files in `dir`.
fn replay_folder(dir: &std::path::Path) {
    let clip = common::face("blink/liveportrait_driving_d0.mp4");
    let status = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i"])
        .arg(&clip)
        .args(["-frames:v", "50", "-q:v", "3"])
        .arg(dir.join("a%04d.jpg"))
        .status()
        .expect("ffmpeg (scripts/setup-media.sh installs it)");
    assert!(status.success());
    let first = image::open(dir.join("a0001.jpg")).unwrap();
    let grey =
        image::RgbImage::from_pixel(first.width(), first.height(), image::Rgb([118, 118, 118]));
    for i in 0..20 {
        grey.save(dir.join(format!("b{i:04}.jpg"))).unwrap();
    }
}

fn options(dir: &std::path::Path, broker: &Broker, camera: &str, base: &str) -> std::path::PathBuf {
    let o = json!({
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "username": Broker::USER,
                 "password": Broker::PASSWORD, "base_topic": base, "away_after_s": 600},
        "cameras": [{"name": camera, "gate": "Door",
                     "source": {"type": "replay", "path": dir.join("frames"), "fps": 10, "looped": true}}],
        "gates": [{"name": "Door"}],
        "access_levels": [{"name": "resident"}],
        "liveness": {"require_blink": false, "cooldown_s": 1.0},
        "storage": {"database": dir.join("facegate.db")},
        "http": {"port": free_port()},
    });
    let p = dir.join("options.json");
    std::fs::write(&p, o.to_string()).unwrap();
    p
}

fn start_facegate(options: &std::path::Path, log: &std::path::Path) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_facegate"));
    let models = std::env::join_paths([
        common::repo().join("models"),
        common::shared().join("models"),
    ])
    .unwrap();
    cmd.env("FACEGATE_MODELS", models)
        .arg("run")
        .arg("--options")
        .arg(options)
        .env("FACEGATE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    spawn_guarded(cmd)
}

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
            .unwrap_or_else(|_| panic!("no matching state_changed for {entity_id}"));
        if ev["data"]["entity_id"] == entity_id && pred(&ev["data"]["new_state"]) {
            return ev["data"]["new_state"].clone();
        }
    }
}

#[test]
fn facegate_run_end_to_end_through_home_assistant() {
    let (broker, ha) = shared();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("frames")).unwrap();
    replay_folder(&dir.path().join("frames"));
    let options = options(dir.path(), broker, "Door cam", "fge2e");
    let log = dir.path().join("facegate.log");
    let mut fg = start_facegate(&options, &log);
    let id = |key: &str| ha.entity_id(&format!("facegate_door_cam_{key}"), T);
    let changes = ha.ws().subscribe_events("state_changed");
    let camera = id("camera");
    ha.wait_state(&camera, T, |s| s["state"] == "streaming");

    // The unknown face: event `unknown`, last person `unknown`, the crop on the image entity.
    let access = id("access");
    let ev = wait_change(&changes, &access, |s| {
        s["attributes"]["event_type"] == "unknown"
    });
    assert_eq!(ev["attributes"]["gate"], "Door");
    assert_eq!(ev["attributes"]["person"], Value::Null);
    ha.wait_state(&id("last_person"), T, |s| s["state"] == "unknown");
    let (ct, jpeg) = ha.image(&id("last_face"));
    assert_eq!(ct, "image/jpeg");
    let crop = image::load_from_memory(&jpeg).expect("a JPEG");
    assert!(
        crop.width() >= 64 && crop.width() <= 256,
        "{}",
        crop.width()
    );

    // Enroll from HA: name + button; the pipeline takes samples of the face in view.
    ha.call_service(
        "text",
        "set_value",
        json!({"entity_id": id("enroll_name"), "value": "Dana"}),
    );
    ha.wait_state(&id("enroll_name"), T, |s| s["state"] == "Dana");
    let enrollment = id("enrollment");
    ha.call_service("button", "press", json!({"entity_id": id("enroll")}));
    let ev = wait_change(&changes, &enrollment, |s| s["attributes"]["name"] == "Dana");
    assert_eq!(ev["attributes"]["event_type"], "enrolled", "{ev}");
    assert_eq!(ev["attributes"]["samples"], 5);
    // The next visit is recognised: granted (announce only), the tracker goes home.
    let ev = wait_change(&changes, &access, |s| s["attributes"]["person"] == "Dana");
    assert_eq!(ev["attributes"]["event_type"], "granted");
    assert_eq!(ev["attributes"]["action"], "notify");
    ha.wait_state("device_tracker.dana", T, |s| s["state"] == "home");
    ha.wait_state(&id("last_person"), T, |s| s["state"] == "Dana");

    // Recognition off in HA: no more decisions while the person keeps coming back.
    ha.call_service(
        "switch",
        "turn_off",
        json!({"entity_id": id("recognition")}),
    );
    ha.wait_state(&id("recognition"), T, |s| s["state"] == "off");
    ha.call_service(
        "number",
        "set_value",
        json!({"entity_id": id("match_threshold"), "value": 0.4}),
    );
    ha.wait_state(&id("match_threshold"), T, |s| s["state"] == "0.4");
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(15) {
        if let Ok(ev) = changes.recv_timeout(Duration::from_millis(200)) {
            assert_ne!(
                ev["data"]["entity_id"],
                access.as_str(),
                "a decision while paused: {ev}"
            );
        }
    }

    // Restart facegate: the settings changed in HA come back from the database.
    stop_child(&mut fg, Duration::from_secs(20));
    ha.wait_state(&camera, T, |s| s["state"] == "unavailable");
    let mut fg = start_facegate(&options, &log);
    ha.wait_state(&camera, T, |s| s["state"] == "streaming");
    assert_eq!(ha.state(&id("recognition")).unwrap()["state"], "off");
    assert_eq!(ha.state(&id("match_threshold")).unwrap()["state"], "0.4");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("live settings restored from the database"),
        "{text}"
    );
    stop_child(&mut fg, Duration::from_secs(20));
}
