//! Bringing the demo's world up: the models, the broker (embedded or given) and a watcher of facegate's
//! topics, the simulated lock + lift board with the histories the summary checks, the service's options, and
//! the enrolled resident.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{
    AccessLevel, BoardConfig, CameraConfig, GateConfig, HttpConfig, LiftConfig, LivenessConfig,
    MqttConfig, ServiceConfig, SourceConfig, StorageConfig, VisionConfig,
};
use crate::esphome::sim::{key, SimBoard, SimConfig, FLOORS};
use crate::esphome::EntityState;
use crate::gallery::{enrollment_sample, MatchParams, QualityLimits, SeenIn, SharedGallery};
use crate::models::{ModelError, ModelStore};
use crate::vision::{AnalyzeOptions, CropPadding, FaceAnalyzer, VisionError};

use super::broker::{self, Watcher};
use super::media::{Media, Who};
use super::{DemoError, DemoOptions};

/// The demo's gate (camera + lock + lift): its Home Assistant device is "Front door".
pub const GATE: &str = "Front door";
/// The lock entity's object id on the board (as in `firmware/`).
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

/// The broker the service publishes to, and the demo's own subscriber on facegate's topics (what Home
/// Assistant would receive).
pub struct Mqtt {
    pub url: String,
    pub host: String,
    pub port: u16,
    pub embedded: bool,
    pub watcher: Watcher,
}

pub async fn mqtt(opts: &DemoOptions) -> Result<Mqtt, DemoError> {
    let (host, port, embedded) = match &opts.mqtt {
        Some((h, p)) => (h.clone(), *p, false),
        None => {
            let port = broker::free_port()?;
            broker::start_embedded(port)?;
            ("127.0.0.1".to_string(), port, true)
        }
    };
    let watcher = Watcher::start(&host, port, &MqttConfig::default().base_topic).await?;
    Ok(Mqtt {
        url: format!("mqtt://{host}:{port}"),
        host,
        port,
        embedded,
        watcher,
    })
}

/// The simulated board (a door lock and a lift, as `firmware/` builds them) and what it reported doing.
pub struct Boards {
    pub board: SimBoard,
    /// The lock's reported states, in order, from the state before the first scene.
    pub lock_states: Arc<Mutex<Vec<String>>>,
    /// The lift's reported floors, in order, from the floor before the first scene.
    pub lift_floors: Arc<Mutex<Vec<i32>>>,
}

pub async fn boards() -> Result<Boards, DemoError> {
    let cfg = SimConfig {
        relock: Duration::from_secs(3),
        travel_per_floor: Duration::from_millis(1500),
        ..SimConfig::default()
    };
    let err = |e: crate::esphome::EspError| DemoError::Board(e.to_string());
    let board = SimBoard::start(cfg, 0).await.map_err(err)?;
    // Histories from the board's own state changes (what the device did, not what was asked).
    let lock_states = Arc::new(Mutex::new(vec![lock_name(board.board.lock_state())]));
    let lift_floors = Arc::new(Mutex::new(vec![board.board.floor()]));
    let mut changes = board.board.changes();
    let (locks, floors) = (lock_states.clone(), lift_floors.clone());
    tokio::spawn(async move {
        while let Ok((k, v)) = changes.recv().await {
            match v {
                EntityState::Lock(l) if k == key("Door lock") => {
                    if let Ok(mut s) = locks.lock() {
                        s.push(lock_name(l));
                    }
                }
                EntityState::Number(f) if k == key("Current floor") => {
                    if let Ok(mut s) = floors.lock() {
                        s.push(f.round() as i32);
                    }
                }
                _ => {}
            }
        }
    });
    Ok(Boards {
        board,
        lock_states,
        lift_floors,
    })
}

fn lock_name(l: crate::esphome::entities::LockState) -> String {
    format!("{l:?}").to_lowercase()
}

/// The demo's options, as `facegate run` reads them: one camera on one gate whose board has the lock and the
/// lift; residents open the door and call the lift to their floor; passive liveness (stills cannot blink)
/// and a short cooldown (the same person is seen as a spoof and then in person within seconds). The camera's
/// source is replaced by the demo's film ([`super::film`]).
pub fn service_config(db: &Path, mqtt: &Mqtt, board_port: u16, http_port: u16) -> ServiceConfig {
    ServiceConfig {
        mqtt: MqttConfig {
            host: mqtt.host.clone(),
            port: mqtt.port,
            ..MqttConfig::default()
        },
        cameras: vec![CameraConfig {
            name: GATE.into(),
            source: SourceConfig::Replay {
                path: PathBuf::from("(the demo's film)"),
                fps: super::film::FPS as u32,
                looped: false,
            },
            gate: GATE.into(),
        }],
        gates: vec![GateConfig {
            name: GATE.into(),
            board: Some(BoardConfig {
                host: "127.0.0.1".into(),
                port: board_port,
                encryption_key: Default::default(),
            }),
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
        storage: StorageConfig {
            database: db.to_path_buf(),
            audit_retention_days: 1,
        },
        http: HttpConfig {
            port: http_port,
            ..HttpConfig::default()
        },
        ..ServiceConfig::default()
    }
}

/// How many of the offered variants passed the quality checks.
pub struct Enrolled {
    pub accepted: usize,
    pub offered: usize,
}

/// Enrolls `who` from the bundled photo's variants (each checked by the one enrollment rule, as `facegate
/// enroll` checks photos) into the gallery in the database `db` (the one the service then opens).
pub fn enroll(
    analyzer: &FaceAnalyzer,
    media: &Media,
    who: Who,
    level: &str,
    db: &Path,
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
    let shared = SharedGallery::open(db, MatchParams::default()).map_err(e)?;
    shared
        .enroll(who.name(), Some(level), &samples)
        .map_err(e)?;
    Ok(Enrolled {
        accepted: samples.len(),
        offered: variants.len(),
    })
}
