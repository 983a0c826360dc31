//! Bringing the demo's world up: the models, the broker and Home Assistant discovery, the two simulated
//! boards with facegate's drivers on them, and the enrolled resident.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{
    AccessLevel, GateConfig, LiftConfig, LivenessConfig, MqttConfig, ServiceConfig, VisionConfig,
};
use crate::esphome::sim::{key, SimBoard, SimConfig, FLOORS};
use crate::esphome::{BoardConfig, Client, EntityState, GateActuator, LiftDriver, LockDriver};
use crate::gallery::{enrollment_sample, MatchParams, QualityLimits, SeenIn, SharedGallery};
use crate::ha::discovery::{Device, Topics};
use crate::models::{ModelError, ModelStore};
use crate::vision::{AnalyzeOptions, CropPadding, FaceAnalyzer, VisionError};

use super::broker::{self, EventPublisher, Watcher};
use super::media::{Media, Who};
use super::{DemoError, DemoOptions};

/// The demo's gate (camera + lock + lift): its Home Assistant device is "Front door".
pub const GATE: &str = "Front door";
/// The lock entity's object id on the lock board (as in `firmware/`).
pub const LOCK: &str = "door_lock";
/// The resident's floor: the simulated lift serves floors 0 and 1.
pub const RESIDENT_FLOOR: i32 = 1;

/// Loads every network; a missing model is an error that says how to fetch it.
pub fn analyzer(opts: &DemoOptions) -> Result<FaceAnalyzer, DemoError> {
    let store = if opts.models.is_empty() {
        ModelStore::discover()
    } else {
        ModelStore::new(opts.models.clone())
    };
    FaceAnalyzer::load(&store, &VisionConfig::default()).map_err(|e| match e {
        VisionError::Model(m @ (ModelError::Missing { .. } | ModelError::Checksum { .. })) => {
            DemoError::Models(m.to_string())
        }
        other => DemoError::Vision(other.to_string()),
    })
}

/// MQTT as Home Assistant would see it: discovery announced, a watcher on facegate's topics, and the
/// access-event publisher.
pub struct Mqtt {
    pub url: String,
    pub events: EventPublisher,
    pub watcher: Watcher,
}

pub async fn mqtt(opts: &DemoOptions) -> Result<(Mqtt, bool), DemoError> {
    let (host, port, embedded) = match &opts.mqtt {
        Some((h, p)) => (h.clone(), *p, false),
        None => {
            let port = broker::free_port()?;
            broker::start_embedded(port)?;
            ("127.0.0.1".to_string(), port, true)
        }
    };
    let cfg = MqttConfig {
        host: host.clone(),
        port,
        ..MqttConfig::default()
    };
    let device = Device::new(GATE).map_err(|e| DemoError::Broker(e.to_string()))?;
    let topics = Topics::new(&cfg);
    let watcher = Watcher::start(&host, port, &cfg.base_topic).await?;
    let events = EventPublisher::connect(&host, port, &topics, &device).await?;
    let url = format!("mqtt://{host}:{port}");
    Ok((
        Mqtt {
            url,
            events,
            watcher,
        },
        embedded,
    ))
}

/// The two boards, facegate's connections to them, and the histories the summary checks.
pub struct Boards {
    pub lock_board: SimBoard,
    pub lift_board: SimBoard,
    pub actuator: GateActuator,
    pub lock_states: Arc<Mutex<Vec<String>>>,
    pub lift_floors: Arc<Mutex<Vec<i32>>>,
}

pub async fn boards() -> Result<Boards, DemoError> {
    let cfg = SimConfig {
        relock: Duration::from_secs(3),
        travel_per_floor: Duration::from_millis(1500),
        ..SimConfig::default()
    };
    let err = |e: crate::esphome::EspError| DemoError::Board(e.to_string());
    let lock_board = SimBoard::start(cfg.clone(), 0).await.map_err(err)?;
    let lift_board = SimBoard::start(cfg, 0).await.map_err(err)?;
    let connect = |port: u16| async move {
        let c = Client::connect(BoardConfig::new("127.0.0.1", port, None))
            .await
            .map_err(err)?;
        c.wait_connected(Duration::from_secs(5))
            .await
            .map_err(err)?;
        Ok::<Client, DemoError>(c)
    };
    let lock_client = connect(lock_board.port()).await?;
    let lift_client = connect(lift_board.port()).await?;
    let actuator = GateActuator {
        gate: GATE.into(),
        lock: Some(LockDriver::new(lock_client, GATE, LOCK)),
        lift: Some(LiftDriver::new(lift_client, GATE)),
    };
    // Histories from the boards' own state changes (what the device did, not what we asked).
    let lock_states = Arc::new(Mutex::new(vec![lock_name(lock_board.board.lock_state())]));
    let lift_floors = Arc::new(Mutex::new(vec![lift_board.board.floor()]));
    let mut changes = lock_board.board.changes();
    let keep = lock_states.clone();
    tokio::spawn(async move {
        while let Ok((k, v)) = changes.recv().await {
            if let (true, EntityState::Lock(l)) = (k == key("Door lock"), v) {
                if let Ok(mut s) = keep.lock() {
                    s.push(lock_name(l));
                }
            }
        }
    });
    let mut changes = lift_board.board.changes();
    let keep = lift_floors.clone();
    tokio::spawn(async move {
        while let Ok((k, v)) = changes.recv().await {
            if let (true, EntityState::Number(f)) = (k == key("Current floor"), v) {
                if let Ok(mut s) = keep.lock() {
                    s.push(f.round() as i32);
                }
            }
        }
    });
    Ok(Boards {
        lock_board,
        lift_board,
        actuator,
        lock_states,
        lift_floors,
    })
}

fn lock_name(l: crate::esphome::entities::LockState) -> String {
    format!("{l:?}").to_lowercase()
}

/// The demo's options, as `facegate run` would read them: one gate with the lock and the lift, residents
/// open the door and call the lift to their floor; passive liveness (stills cannot blink) and a short
/// cooldown (the same person is seen as a spoof and then in person within seconds).
pub fn service_config() -> ServiceConfig {
    ServiceConfig {
        gates: vec![GateConfig {
            name: GATE.into(),
            // The demo drives two boards (lock, lift) for this gate itself: see [`boards`].
            board: None,
            lock: Some(LOCK.into()),
            lift: Some(LiftConfig {
                target_floor: "target_floor".into(),
                current_floor: "current_floor".into(),
                floors: (0..FLOORS).collect(),
            }),
        }],
        access_levels: vec![AccessLevel {
            name: "resident".into(),
            actuate: true,
            gates: vec![],
            floor: Some(RESIDENT_FLOOR),
            schedule: vec![],
        }],
        liveness: LivenessConfig {
            require_blink: false,
            min_frames: 3,
            cooldown_s: 0.5,
            ..LivenessConfig::default()
        },
        ..ServiceConfig::default()
    }
}

/// The gallery after enrollment, and how many of the offered variants passed the quality checks.
pub struct Enrolled {
    pub shared: SharedGallery,
    pub accepted: usize,
    pub offered: usize,
}

/// Enrolls `who` from the bundled photo's variants (each checked by the one enrollment rule, as `facegate
/// enroll` checks photos) into an in-memory gallery.
pub fn enroll(
    analyzer: &FaceAnalyzer,
    media: &Media,
    who: Who,
    level: &str,
) -> Result<Enrolled, DemoError> {
    let limits = QualityLimits::default();
    let variants = media.enrollment_variants(who);
    let mut samples = Vec::new();
    let opts = AnalyzeOptions {
        padding: CropPadding::Auto,
        landmarks: false,
    };
    for (name, img) in &variants {
        let faces = analyzer
            .analyze_detailed(img, opts)
            .map_err(|e| DemoError::Vision(e.to_string()))?;
        let source = format!("bundled: {} ({name})", who.name());
        match enrollment_sample(&faces, &limits, SeenIn::Photo, source) {
            Ok(sample) => samples.push(sample),
            Err(why) => tracing::warn!(variant = %name, %why, "enrollment variant refused"),
        }
    }
    if samples.is_empty() {
        return Err(DemoError::Enroll(
            "no variant passed the quality checks".into(),
        ));
    }
    let e = |e: crate::gallery::GalleryError| DemoError::Enroll(e.to_string());
    let shared = SharedGallery::in_memory(MatchParams::default()).map_err(e)?;
    shared
        .enroll(who.name(), Some(level), &samples)
        .map_err(e)?;
    Ok(Enrolled {
        shared,
        accepted: samples.len(),
        offered: variants.len(),
    })
}
