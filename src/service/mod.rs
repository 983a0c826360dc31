//! `facegate run`: the long-running service. Reads the options (JSON, as the add-on's `/data/options.json`),
//! opens the database, restores each camera's live settings, starts the Home Assistant bridge and one thread
//! per camera (frames -> pipeline -> reports fanned out to HA, the gate drivers and the audit log), and runs
//! until SIGINT/SIGTERM, when it marks itself `offline` in HA and disconnects cleanly.

pub mod camera;
mod people;
pub mod settings_store;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context};

use crate::audit::Audit;
use crate::config::{ServiceConfig, VisionConfig};
use crate::decide::Policy;
use crate::esphome::driver::GateActuator;
use crate::gallery::{MatchParams, SharedGallery};
use crate::ha::bridge::{Bridge, BridgeOptions, DeviceSetup};
use crate::ha::discovery::{slug, Device};
use crate::http::LiveView;
use crate::models::ModelStore;
use crate::pipeline::Pipeline;
use crate::settings::{LiveSettings, SettingsHandle};
use crate::vision::FaceAnalyzer;
use camera::CameraContext;

pub use settings_store::SettingsStore;

/// What `facegate run` needs besides the options file.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub options: PathBuf,
    /// Model folder override (the global `--models`).
    pub models: Option<PathBuf>,
    pub threads: usize,
}

/// Reads and validates the options file; every problem is listed, naming the option.
pub fn load_options(path: &Path) -> anyhow::Result<ServiceConfig> {
    Ok(crate::config::load_options(path)?)
}

/// Runs the service until a termination signal.
pub fn run(opts: &RunOptions) -> anyhow::Result<()> {
    let cfg = load_options(&opts.options)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(cfg, opts.clone()))
}

async fn serve(cfg: ServiceConfig, opts: RunOptions) -> anyhow::Result<()> {
    let db = cfg.storage.database.clone();
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let policy = Policy::from_config(&cfg).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        anyhow!("invalid options: {}", lines.join("; "))
    })?;
    let params = MatchParams {
        threshold: cfg.vision.match_threshold,
        ..MatchParams::default()
    };
    // One connection for the gallery, the live settings and the audit log.
    let database = crate::store::Store::open(&db)
        .with_context(|| format!("opening the database {}", db.display()))?;
    let gallery = SharedGallery::new(crate::gallery::Gallery::new(database.clone()), params)
        .with_context(|| format!("reading the gallery in {}", db.display()))?;
    let store = Arc::new(SettingsStore::new(database.clone()));
    let audit = Arc::new(Mutex::new(
        Audit::new(database, cfg.storage.audit_retention_days)
            .with_context(|| format!("audit log in {}", db.display()))?,
    ));
    let models = match &opts.models {
        Some(dir) => ModelStore::new(vec![dir.clone()]),
        None => ModelStore::discover(),
    };
    let vision = VisionConfig {
        threads: opts.threads,
        ..cfg.vision.clone()
    };
    let analyzer = Arc::new(
        tokio::task::block_in_place(|| FaceAnalyzer::load(&models, &vision))
            .context("cannot load the face models")?,
    );

    let mut setups = Vec::new();
    let mut cameras = Vec::new();
    for (index, cam) in cfg.cameras.iter().enumerate() {
        let device =
            Device::new(&cam.name).with_context(|| format!("option cameras[{index}].name"))?;
        let settings = match store.load(&device.slug) {
            Some(s) => {
                tracing::info!(camera = %cam.name, ?s, "live settings restored from the database");
                s
            }
            None => LiveSettings::from_config(&cfg),
        };
        let settings = SettingsHandle::new(settings);
        let (tx, rx) = std::sync::mpsc::channel();
        setups.push(DeviceSetup {
            device: device.clone(),
            settings: settings.clone(),
            commands: Some(tx),
        });
        cameras.push((cam.clone(), device, settings, rx));
    }
    let bridge_opts = BridgeOptions {
        mqtt: cfg.mqtt.clone(),
        client_id: format!("facegate-{}", slug(&cfg.mqtt.base_topic)),
        access_levels: cfg.access_levels.iter().map(|l| l.name.clone()).collect(),
        away_after: Duration::from_secs(cfg.mqtt.away_after_s as u64),
        event_max_age: Duration::from_secs(cfg.mqtt.event_max_age_s as u64),
        diag_every: Duration::from_secs(5),
        people_every: Duration::from_secs(30),
    };
    let bridge = Bridge::start(bridge_opts, setups, Arc::new(gallery.clone()), store)?;

    let view = LiveView::default();
    let enroller = Arc::new(crate::http::GalleryEnroller::new(
        analyzer.clone(),
        gallery.clone(),
    ));
    let addr = SocketAddr::from(([0, 0, 0, 0], cfg.http.port));
    let http = crate::http::serve(addr, view.clone(), enroller, &cfg.http).await?;

    let actuators = gate_actuators(&cfg);
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for (cam, device, settings, commands) in cameras {
        view.add_camera(&cam.name);
        let pipeline = Pipeline::new(
            cam.gate.clone(),
            analyzer.clone(),
            gallery.clone(),
            policy.clone(),
            settings,
            cfg.liveness.clone(),
        );
        let cx = CameraContext {
            name: cam.name.clone(),
            device: device.slug.clone(),
            source: cam.source.clone(),
            pipeline,
            commands,
            bridge: bridge.sender(),
            view: view.clone(),
            audit: Some(audit.clone()),
            actuator: actuators
                .get(&cam.gate)
                .cloned()
                .map(|a| (a, tokio::runtime::Handle::current())),
            stop: stop.clone(),
        };
        let t = std::thread::Builder::new()
            .name(format!("camera {}", cam.name))
            .spawn(move || camera::run_camera(cx))
            .context("starting a camera thread")?;
        threads.push(t);
    }
    tracing::info!(
        cameras = cfg.cameras.len(),
        broker = %format!("{}:{}", cfg.mqtt.host, cfg.mqtt.port),
        http = %http.local_addr(),
        "facegate running"
    );
    wait_for_signal().await;
    tracing::info!("stopping");
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = tokio::task::block_in_place(|| t.join());
    }
    http.shutdown().await;
    bridge.shutdown().await;
    Ok(())
}

/// The ESPHome drivers of every gate with a board (one connection per board, shared by its gates); boards
/// may be down at start: their clients keep trying in the background.
fn gate_actuators(cfg: &ServiceConfig) -> HashMap<String, GateActuator> {
    let mut clients: HashMap<(String, u16), crate::esphome::client::Client> = HashMap::new();
    let mut out = HashMap::new();
    for g in &cfg.gates {
        let client = g.board.as_ref().and_then(|b| {
            let key = (b.host.clone(), b.port);
            if let Some(c) = clients.get(&key) {
                return Some(c.clone());
            }
            match crate::esphome::client::BoardConfig::from_config(b) {
                Ok(bc) => {
                    let c = crate::esphome::client::Client::start(bc);
                    clients.insert(key, c.clone());
                    Some(c)
                }
                Err(e) => {
                    tracing::warn!(gate = %g.name, "board not usable: {e}");
                    None
                }
            }
        });
        out.insert(g.name.clone(), GateActuator::from_config(g, client));
    }
    out
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
