//! `facegate run` end to end against a real Home Assistant 2024.3.3 and a real mosquitto: the real binary,
//! real models, a replay camera playing frames of a real clip from ../shared/faces (two seconds of the
//! person, then an empty scene, looped). Through HA's APIs only: the camera streams, the unknown face fires
//! the access event with `unknown` and its crop is served by the image entity; pressing Enroll in HA enrolls
//! the face in view and the next visit is recognised (event with the person, tracker `home`); switching
//! Recognition off in HA stops decisions; the settings changed in HA survive a restart of facegate.

mod common;

const D0: &str = "blink/liveportrait_driving_d0.mp4";

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::ha::{shared, stop_child, Broker};
use common::service::{self, start_facegate};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(120);

/// Frames 1-50 of the d0 clip (the lower face covered from row `mask_from` when given), then 20 grey frames
/// (the person leaves), as JPEG files in `dir`.
fn replay_folder(dir: &std::path::Path, mask_from: Option<u32>) {
    service::clip_frames(dir, D0, "a", 1, 50, mask_from);
    service::grey_frames(dir, "b", 20, 512, 512);
}

fn options(dir: &std::path::Path, broker: &Broker, camera: &str, base: &str) -> std::path::PathBuf {
    service::options(
        dir,
        broker,
        camera,
        base,
        json!({"name": "Door"}),
        json!([{"name": "resident"}]),
    )
}

fn wait_change(
    rx: &mpsc::Receiver<Value>,
    entity_id: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    service::wait_change(rx, entity_id, T, pred)
}

#[test]
fn facegate_run_end_to_end_through_home_assistant() {
    let (broker, ha) = shared();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("frames")).unwrap();
    replay_folder(&dir.path().join("frames"), None);
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
    // The next visit is recognised: notify_only (the level announces only), the tracker goes home.
    let ev = wait_change(&changes, &access, |s| s["attributes"]["person"] == "Dana");
    assert_eq!(ev["attributes"]["event_type"], "notify_only");
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

/// Rows from this y down are covered in the threshold test's frames (a scarf over the lower face of d0, whose
/// face spans rows ~125-447): the same person, matched at ~0.33-0.44 instead of ~0.16-0.26 (measured by the
/// test itself), so a threshold inside the number's range 0.3-0.7 falls below every frame's distance.
const MASK_FROM: u32 = 270;

/// The access events of `entity` after unix time `after` (+0.5 s: a track that had voted before the change
/// may still be decided on the old threshold within its first frames), until one satisfies `done`; every
/// such event must satisfy `each`.
fn next_access(
    rx: &mpsc::Receiver<Value>,
    entity: &str,
    after: f64,
    each: impl Fn(&Value) -> bool,
) -> Value {
    loop {
        // (HA also reports the entity appearing and going available: states without an event.)
        let ev = wait_change(rx, entity, |s| s["attributes"]["at"].is_number());
        let at = ev["attributes"]["at"].as_f64().unwrap();
        if at < after + 0.5 {
            continue;
        }
        assert!(each(&ev), "unexpected decision after the change: {ev}");
        return ev;
    }
}

/// Issue 3: the match threshold `number` set through HA's `number.set_value` changes facegate's decisions
/// about the SAME replayed frames of an enrolled person: recognised at the default, `unknown` once the threshold
/// is below every frame's distance (chosen from the distances `facegate identify` measures on those frames),
/// recognised again when set back. A value outside the range is refused by HA (its range is the one facegate's
/// discovery declared) and, sent straight to the command topic, by facegate: the state stays, the person is
/// still recognised.
#[test]
fn match_threshold_set_in_home_assistant_changes_the_decision() {
    let (broker, ha) = shared();
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    replay_folder(&frames, Some(MASK_FROM));
    // Enrolled from the end of the clip (frames 60, 70, 78: never replayed), uncovered.
    let samples = dir.path().join("enroll");
    std::fs::create_dir(&samples).unwrap();
    service::clip_frames(&samples, D0, "e", 60, 19, None);
    let db = dir.path().join("facegate.db");
    let picks: Vec<_> = [0, 10, 18]
        .iter()
        .map(|i| samples.join(format!("e{i:04}.jpg")))
        .collect();
    service::enroll(&db, "Dana", "resident", &picks);

    let replayed: Vec<_> = (0..50)
        .map(|i| frames.join(format!("a{i:04}.jpg")))
        .collect();
    let mut d = service::distances(&db, &replayed);
    d.sort_by(f32::total_cmp);
    let (min, max) = (d[0], d[d.len() - 1]);
    let default = facegate::config::VisionConfig::default().match_threshold;
    let (range_lo, _) = facegate::settings::MATCH_THRESHOLD_RANGE;
    let low = (((min - 0.02) * 100.0).floor() / 100.0).max(range_lo);
    eprintln!(
        "distances of the 50 replayed frames: min {min:.3} median {:.3} max {max:.3}; default {default}, \
         lowered to {low}",
        d[d.len() / 2]
    );
    assert!(
        max < default - 0.03,
        "not every frame matches at the default: {d:?}"
    );
    assert!(
        min - low >= 0.015,
        "no threshold in range below every frame: {d:?}"
    );

    let options = options(dir.path(), broker, "Threshold cam", "fgthr");
    let log = dir.path().join("facegate.log");
    let mut fg = start_facegate(&options, &log);
    let id = |key: &str| ha.entity_id(&format!("facegate_threshold_cam_{key}"), T);
    let changes = ha.ws().subscribe_events("state_changed");
    let (access, threshold) = (id("access"), id("match_threshold"));
    let number_is = |v: f32| {
        move |s: &Value| {
            s["state"]
                .as_str()
                .and_then(|t| t.parse::<f32>().ok())
                .is_some_and(|x| (x - v).abs() < 1e-4)
        }
    };
    ha.wait_state(&threshold, T, number_is(default));
    // (Level `resident` without `actuate` here: recognised is `notify_only`.)
    let recognised = |ev: &Value| {
        ev["attributes"]["event_type"] == "notify_only" && ev["attributes"]["person"] == "Dana"
    };
    let unknown = |ev: &Value| {
        ev["attributes"]["event_type"] == "unknown" && ev["attributes"]["person"].is_null()
    };
    // At the default: recognised.
    next_access(&changes, &access, 0.0, recognised);

    // Out of range through HA: HA refuses the call (the range facegate declared), the state stays.
    let r = ureq::post(&ha.url("/api/services/number/set_value"))
        .set("Authorization", &format!("Bearer {}", ha.token))
        .send_json(json!({"entity_id": threshold, "value": 0.1}));
    match r {
        Err(ureq::Error::Status(code, _)) if code >= 400 => {
            eprintln!("HA answered number.set_value 0.1 with HTTP {code}")
        }
        r => panic!("HA accepted 0.1: {r:?}"),
    }
    // Straight to facegate's command topic: refused with a log line, the old state republished.
    let (client, mut conn) = broker.client("threshold-test");
    std::thread::spawn(move || for _ in conn.iter() {});
    client
        .publish(
            "fgthr/threshold_cam/match_threshold/set",
            rumqttc::QoS::AtLeastOnce,
            false,
            b"0.1".to_vec(),
        )
        .unwrap();
    service::wait_log(&log, "outside 0.3..=0.7", 1, T);
    let refused = service::unix_now();
    assert!(number_is(default)(&ha.state(&threshold).unwrap()));
    // 0.1 would have made Dana unknown: the next visit is still recognised.
    next_access(&changes, &access, refused, recognised);

    // Lowered below every frame's distance: the same frames give `unknown`.
    ha.call_service(
        "number",
        "set_value",
        json!({"entity_id": threshold, "value": low}),
    );
    ha.wait_state(&threshold, T, number_is(low));
    let lowered = service::unix_now();
    next_access(&changes, &access, lowered, unknown);

    // Back to the default: recognised again.
    ha.call_service(
        "number",
        "set_value",
        json!({"entity_id": threshold, "value": default}),
    );
    ha.wait_state(&threshold, T, number_is(default));
    let raised = service::unix_now();
    next_access(&changes, &access, raised, recognised);
    stop_child(&mut fg, Duration::from_secs(20));

    // The audit log saw the same: unknown after the lowering, recognised after raising.
    let rows = service::audit_rows(&db);
    let verdict_after = |t: f64| {
        rows.iter()
            .rev()
            .find(|r| r["time"].as_f64().unwrap() >= t + 0.5)
            .map(|r| r["verdict"].as_str().unwrap().to_string())
    };
    assert_eq!(
        verdict_after(lowered).as_deref(),
        Some("unknown"),
        "{rows:?}"
    );
    // The audit log uses the same word as HA.
    assert_eq!(
        verdict_after(raised).as_deref(),
        Some("notify_only"),
        "{rows:?}"
    );
}
