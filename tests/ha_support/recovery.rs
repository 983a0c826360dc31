//! Recovery against a real Home Assistant and a real mosquitto, each restarted under a running bridge: after a
//! broker restart (which loses every retained message) and after an HA restart, every entity must be available
//! again with its correct state; an access event that happened while the broker was down is delivered once
//! after the reconnect. Prints the recovery times (docs/HA.md).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::common::ha::{mqtt_for, Broker, FakePeople, FakeSink, HaVersion, HomeAssistant};
use facegate::config::ServiceConfig;
use facegate::decide::{Decision, Verdict};
use facegate::ha::bridge::{Bridge, BridgeOptions, DeviceSetup};
use facegate::ha::discovery::{Device, ENTITIES};
use facegate::outputs::{Bus, CameraId, CameraState};
use facegate::pipeline::{FrameReport, PipelineEvent};
use facegate::settings::{LiveSettings, SettingsHandle};
use serde_json::Value;

const T: Duration = Duration::from_secs(60);

/// Entity id -> state, for every entity of the device and the person (but the events: their state is the
/// time of the last event).
fn states(ha: &HomeAssistant, prefixes: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in prefixes {
        for (_, e) in ha.registry(p) {
            let id = e["entity_id"].as_str().unwrap().to_string();
            if id.starts_with("event.") {
                continue;
            }
            let s = ha
                .state(&id)
                .map(|s| s["state"].as_str().unwrap_or("").to_string())
                .unwrap_or_else(|| "missing".into());
            out.push((id, s));
        }
    }
    out.sort();
    out
}

/// Waits until the states equal `want` (all available and correct); returns how long it took.
fn wait_restored(ha: &HomeAssistant, prefixes: &[&str], want: &[(String, String)]) -> Duration {
    let start = Instant::now();
    loop {
        let now = states(ha, prefixes);
        if now == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < T,
            "not restored after {T:?}:\n now {now:?}\nwant {want:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn report(gate: &str, verdict: Verdict, person: Option<&str>) -> FrameReport {
    FrameReport {
        events: vec![PipelineEvent::Decision {
            frame: 1,
            t: 0.0,
            decision: Decision {
                gate: gate.into(),
                track_id: 1,
                person: person.map(str::to_string),
                confidence: 0.9,
                liveness: 0.9,
                verdict,
                why: "test".into(),
                at: SystemTime::now(),
            },
        }],
        ..FrameReport::default()
    }
}

pub fn broker_and_ha_restarts_end_with_every_entity_available_and_correct(v: HaVersion) {
    crate::common::ha::logs();
    let broker = Broker::start();
    let ha = HomeAssistant::start_version(&broker, v);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let device = Device::new("Porch").unwrap();
    let settings = SettingsHandle::new(LiveSettings::from_config(&ServiceConfig::default()));
    settings.update(|s| s.match_threshold = 0.44).unwrap();
    let opts = BridgeOptions {
        mqtt: mqtt_for(&broker, "fgrec"),
        client_id: "fg-recovery".into(),
        access_levels: vec!["resident".into()],
        away_after: Duration::from_secs(600),
        event_max_age: Duration::from_secs(60),
        diag_every: Duration::from_secs(5),
        people_every: Duration::from_secs(30),
    };
    let bus = Bus::default();
    let camera = CameraId::new("Porch", "porch");
    let bridge = {
        let _g = rt.enter();
        Bridge::start(
            opts,
            vec![DeviceSetup {
                device: device.clone(),
                settings,
                commands: None,
            }],
            FakePeople::with(&[("Carol", "resident")]),
            Arc::new(FakeSink::default()),
            bus.subscribe(),
        )
        .unwrap()
    };
    let prefixes = ["facegate_porch_", "facegate_people_carol_"];
    let end = Instant::now() + T;
    while ha.registry(prefixes[0]).len() < ENTITIES.len() || ha.registry(prefixes[1]).len() < 2 {
        assert!(Instant::now() < end, "entities never appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    let access = ha.entity_id("facegate_porch_access", T);
    let last = ha.entity_id("facegate_porch_last_person", T);
    bus.report(
        &camera,
        report("Porch", Verdict::NotifyOnly, Some("Carol")),
        None,
    );
    ha.wait_state(&last, T, |s| s["state"] == "Carol");
    bus.camera_state(&camera, CameraState::Streaming);
    let cam = ha.entity_id("facegate_porch_camera", T);
    ha.wait_state(&cam, T, |s| s["state"] == "streaming");
    let mt = ha.entity_id("facegate_porch_match_threshold", T);
    ha.wait_state(&mt, T, |s| s["state"] == "0.44");
    // Diagnostics are published every 5 s: wait for the first, so the picture is complete.
    let fps = ha.entity_id("facegate_porch_fps", T);
    ha.wait_state(&fps, T, |s| s["state"] == "0.0");
    let want = states(&ha, &prefixes);
    assert!(
        want.iter()
            .all(|(_, s)| s != "unavailable" && s != "missing"),
        "{want:?}"
    );

    // Broker restart, with an access event while it is down.
    let changes = ha.ws().subscribe_events("state_changed");
    broker.stop();
    std::thread::sleep(Duration::from_secs(1));
    bus.report(&camera, report("Porch", Verdict::Spoof, None), None);
    std::thread::sleep(Duration::from_millis(500));
    let restarted = Instant::now();
    broker.restart();
    // The spoof (no person) makes the last person `unknown`; everything else is as before.
    let want: Vec<(String, String)> = want
        .into_iter()
        .map(|(id, s)| {
            if id == last {
                (id, "unknown".into())
            } else {
                (id, s)
            }
        })
        .collect();
    let took = wait_restored(&ha, &prefixes, &want);
    eprintln!(
        "HA {}: broker restart -> every entity available and correct: {:.2} s",
        v.release(),
        restarted.elapsed().as_secs_f64()
    );
    let _ = took;
    // The queued spoof event arrives once (the event entity's state is its last event).
    let end = Instant::now() + T;
    let mut spoofs = 0;
    while Instant::now() < end {
        match changes.recv_timeout(Duration::from_secs(3)) {
            Ok(ev) => {
                let ns: &Value = &ev["data"]["new_state"];
                if ev["data"]["entity_id"] == access.as_str()
                    && ns["attributes"]["event_type"] == "spoof"
                {
                    spoofs += 1;
                }
            }
            Err(_) => break,
        }
    }
    assert_eq!(spoofs, 1, "the queued event is delivered exactly once");

    // HA restart.
    let stopped = Instant::now();
    ha.restart(&broker);
    let up = stopped.elapsed();
    let took = wait_restored(&ha, &prefixes, &want);
    eprintln!(
        "HA {}: HA restart: online after {:.2} s, every entity available and correct {:.2} s later",
        v.release(),
        up.as_secs_f64(),
        took.as_secs_f64()
    );
    rt.block_on(bridge.shutdown());
}
