//! The Home Assistant scenarios, written once and run against either real HA: tests/ha_entities.rs and
//! tests/ha_recovery.rs run them on the HA `FACEGATE_HA` names (2024.3.3 by default), tests/ha_current.rs on
//! the current HA (2026.2.3), in the same `cargo test`.
//!
//! [`Rig`] is a facegate bridge for one camera device on a shared HA (tests/common/ha.rs), fed with pipeline
//! reports built by the test, with handles to everything the bridge touches (live settings, fake gallery,
//! settings sink, camera command channel).
#![allow(dead_code)]

pub mod entities;
pub mod recovery;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::common::ha::{
    mqtt_for, shared_version, unique, Broker, FakePeople, FakeSink, HaVersion, HomeAssistant,
};
use facegate::config::ServiceConfig;
use facegate::decide::{Decision, Verdict};
use facegate::ha::bridge::{Bridge, BridgeOptions, CameraCommand, DeviceSetup};
use facegate::ha::discovery::{person_slug, Device};
use facegate::outputs::{Bus, CameraId};
use facegate::pipeline::{FaceInView, FrameReport, PipelineEvent};
use facegate::settings::{LiveSettings, SettingsHandle};
use serde_json::Value;

/// How long a state may take to show in HA before a test fails.
pub const T: Duration = Duration::from_secs(15);

/// A bridge for one device on the shared HA, with handles to everything it touches.
pub struct Rig {
    pub rt: tokio::runtime::Runtime,
    bridge: Option<Bridge>,
    /// The service's event stream the bridge listens to (the tests publish on it as the cameras do).
    pub bus: Bus,
    pub camera: CameraId,
    pub device: Device,
    pub settings: SettingsHandle,
    pub people: Arc<FakePeople>,
    pub sink: Arc<FakeSink>,
    pub commands: mpsc::Receiver<CameraCommand>,
    version: HaVersion,
}

impl Rig {
    /// A bridge on the HA `FACEGATE_HA` names.
    pub fn start(base: &str, people: &[(&str, &str)], away_after: Duration) -> Rig {
        Self::start_on(HaVersion::from_env(), base, people, away_after)
    }

    /// A bridge on the shared HA `version`, for a device with a unique name, under base topic `base`.
    pub fn start_on(
        version: HaVersion,
        base: &str,
        people: &[(&str, &str)],
        away_after: Duration,
    ) -> Rig {
        let (broker, _) = shared_version(version);
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
        let bus = Bus::default();
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
                bus.subscribe(),
            )
            .unwrap()
        };
        Rig {
            rt,
            bridge: Some(bridge),
            camera: CameraId::new(&device.name, &device.slug),
            bus,
            device,
            settings,
            people,
            sink,
            commands,
            version,
        }
    }

    pub fn broker(&self) -> &'static Broker {
        &shared_version(self.version).0
    }

    pub fn ha(&self) -> &'static HomeAssistant {
        &shared_version(self.version).1
    }

    /// The entity id HA gave this device's entity `key`.
    pub fn id(&self, key: &str) -> String {
        self.ha()
            .entity_id(&format!("facegate_{}_{key}", self.device.slug), T)
    }

    /// The entity id HA gave person `name`'s entity `key`.
    pub fn person_id(&self, name: &str, key: &str) -> String {
        self.ha()
            .entity_id(&format!("facegate_people_{}_{key}", person_slug(name)), T)
    }

    /// Publishes `report` (and the face crop) on the bus, as a camera thread does.
    pub fn report(&self, report: FrameReport, jpeg: Option<Vec<u8>>) {
        self.bus.report(&self.camera, report, jpeg);
    }

    pub fn stop(mut self) {
        let b = self.bridge.take().unwrap();
        self.rt.block_on(b.shutdown());
    }
}

/// A frame report with one decision about track 1 at `gate`.
pub fn decision(gate: &str, verdict: Verdict, person: Option<&str>) -> FrameReport {
    let d = Decision {
        gate: gate.into(),
        track_id: 1,
        person: person.map(str::to_string),
        confidence: 0.9,
        liveness: 0.95,
        verdict,
        why: "test".into(),
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
pub fn jpeg(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 4, y as u8 * 4, seed]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap();
    out
}

/// Waits on HA's `state_changed` stream for `entity_id`'s new state to satisfy `pred`.
pub fn wait_change(
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

/// Decision -> state in HA, `n` times: HA's own `last_changed` of the access event entity minus the moment
/// the decision was handed to the bridge, in ms, sorted. Alternates unknown and spoof so every decision
/// changes the state; waits 200 ms between decisions so each is measured alone.
pub fn decision_latencies(rig: &Rig, changes: &mpsc::Receiver<Value>, n: usize) -> Vec<f64> {
    let access = rig.id("access");
    let mut lat = Vec::new();
    for i in 0..n {
        let (verdict, want) = if i % 2 == 0 {
            (Verdict::Unknown, "unknown")
        } else {
            (Verdict::Spoof, "spoof")
        };
        std::thread::sleep(Duration::from_millis(200));
        let sent = chrono::Utc::now();
        rig.report(decision(&rig.device.name, verdict, None), None);
        let st = wait_change(changes, &access, |s| s["attributes"]["event_type"] == want);
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
    lat
}

/// "median X ms, p95 Y ms, max Z ms over N decisions" of sorted latencies.
pub fn summary(lat: &[f64]) -> String {
    format!(
        "median {:.1} ms, p95 {:.1} ms, max {:.1} ms over {} decisions",
        lat[lat.len() / 2],
        lat[(lat.len() * 95) / 100],
        lat[lat.len() - 1],
        lat.len()
    )
}
