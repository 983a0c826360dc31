//! `facegate run`: the long-running service. Reads the options (JSON, as the add-on's `/data/options.json`),
//! opens the database, restores each camera's live settings, starts the Home Assistant bridge and one thread
//! per camera (frames -> pipeline -> reports fanned out to HA, the gate drivers and the audit log), and runs
//! until SIGINT/SIGTERM, when it marks itself `offline` in HA and disconnects cleanly.

mod people;
pub mod settings_store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};

use crate::config::ServiceConfig;
use crate::ha::bridge::{Bridge, BridgeOptions, CameraCommand, DeviceSetup};
use crate::ha::discovery::{slug, Device};
use crate::settings::{LiveSettings, SettingsHandle};

pub use people::GalleryPeople;
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
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading options {}", path.display()))?;
    ServiceConfig::from_json(&text).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        anyhow!("invalid options {}:\n  {}", path.display(), lines.join("\n  "))
    })
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

/// One camera's handles, as the camera thread needs them.
pub struct CameraSetup {
    pub index: usize,
    pub device: Device,
    pub settings: SettingsHandle,
    pub commands: std::sync::mpsc::Receiver<CameraCommand>,
}

async fn serve(cfg: ServiceConfig, opts: RunOptions) -> anyhow::Result<()> {
    let db = cfg.storage.database.clone();
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let people = Arc::new(GalleryPeople::open(&db)?);
    let store = Arc::new(
        SettingsStore::open(&db).with_context(|| format!("settings table in {}", db.display()))?,
    );
    let mut setups = Vec::new();
    let mut cameras = Vec::new();
    for (index, cam) in cfg.cameras.iter().enumerate() {
        let device = Device::new(&cam.name)
            .with_context(|| format!("option cameras[{index}].name"))?;
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
        cameras.push(CameraSetup {
            index,
            device,
            settings,
            commands: rx,
        });
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
    let bridge = Bridge::start(bridge_opts, setups, people.clone(), store)?;
    tracing::info!(
        cameras = cfg.cameras.len(),
        broker = %format!("{}:{}", cfg.mqtt.host, cfg.mqtt.port),
        "facegate running"
    );
    let _ = (&cameras, &opts);
    wait_for_signal().await;
    tracing::info!("stopping");
    bridge.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
