//! `facegate run`: the long-running service. Reads the options (JSON, as the add-on's `/data/options.json`),
//! opens the database, restores each camera's live settings, starts the outputs ([`crate::outputs`]: gate
//! drivers, audit log, Home Assistant bridge, live view) and one thread per camera that only produces events
//! on the service's bus, and runs until SIGINT/SIGTERM. One shutdown: a [`CancellationToken`] stops the
//! cameras, then the outputs drain the bus in order ([`ServiceHandle::shutdown`]), all within the add-on's
//! 20 s `timeout`. [`Service::start`] is also what `facegate demo` runs.

pub mod camera;
mod people;
pub mod settings_store;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
use crate::outputs::{self, audit::AuditOutput, gate::GateOutput, Bus, CameraId, ServiceEvent};
use crate::pipeline::Pipeline;
use crate::settings::{LiveSettings, SettingsHandle};
use crate::vision::FaceAnalyzer;
use camera::{CameraContext, SourceFactory};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
    rt.block_on(async {
        let service = Service::start(
            cfg,
            ServiceOptions {
                models: opts.models.clone(),
                threads: opts.threads,
                ..ServiceOptions::default()
            },
        )
        .await?;
        wait_for_signal().await;
        tracing::info!("stopping");
        service.shutdown().await;
        anyhow::Ok(())
    })?;
    // Anything still running (a camera blocked in a read) must not hold the exit up.
    rt.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

/// What [`Service::start`] takes besides the options: parts a caller (the demo, tests) provides itself.
pub struct ServiceOptions {
    /// Model folder override (the global `--models`).
    pub models: Option<PathBuf>,
    pub threads: usize,
    /// The face models, already loaded (otherwise loaded from `models`).
    pub analyzer: Option<Arc<FaceAnalyzer>>,
    /// Frame sources by camera name, instead of the ones the options configure (the demo's film).
    pub sources: HashMap<String, SourceFactory>,
    /// Where the HTTP server listens (the options give the port).
    pub http_ip: IpAddr,
    /// Peers trusted like HA's ingress, instead of the options' (the demo trusts localhost).
    pub ingress_peers: Option<Vec<IpAddr>>,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            models: None,
            threads: 0,
            analyzer: None,
            sources: HashMap::new(),
            http_ip: IpAddr::from([0, 0, 0, 0]),
            ingress_peers: None,
        }
    }
}

/// The service: cameras producing events, outputs listening to them.
pub struct Service;

/// A running service. [`ServiceHandle::shutdown`] stops it in order.
pub struct ServiceHandle {
    bus: Bus,
    http_addr: SocketAddr,
    stop: CancellationToken,
    cameras: Vec<std::thread::JoinHandle<()>>,
    http: crate::http::ServerHandle,
    gate: GateOutput,
    audit: AuditOutput,
    bridge: Bridge,
    tasks: TaskTracker,
}

/// Shutdown must end within the add-on's `timeout` (20 s): this much is given to the orderly part.
pub const SHUTDOWN_LIMIT: Duration = Duration::from_secs(15);

impl Service {
    /// Opens the database, restores each camera's live settings, starts the outputs (gate drivers, audit
    /// log, Home Assistant, live view, HTTP server) and one thread per camera. Must run on a multi-thread
    /// tokio runtime.
    pub async fn start(cfg: ServiceConfig, opts: ServiceOptions) -> anyhow::Result<ServiceHandle> {
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
        let audit = Audit::new(database, cfg.storage.audit_retention_days)
            .with_context(|| format!("audit log in {}", db.display()))?;
        let analyzer = match opts.analyzer {
            Some(a) => a,
            None => {
                let models = match &opts.models {
                    Some(dir) => ModelStore::new(vec![dir.clone()]),
                    None => ModelStore::discover(),
                };
                let vision = VisionConfig {
                    threads: opts.threads,
                    ..cfg.vision.clone()
                };
                Arc::new(
                    tokio::task::block_in_place(|| FaceAnalyzer::load(&models, &vision))
                        .context("cannot load the face models")?,
                )
            }
        };

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

        // The outputs subscribe before any camera can produce.
        let bus = Bus::default();
        let (actuators, clients) = gate_actuators(&cfg);
        let gate = GateOutput::start(actuators, clients, bus.clone(), bus.subscribe());
        let audit = AuditOutput::start(audit, bus.subscribe());
        let bridge_opts = BridgeOptions {
            mqtt: cfg.mqtt.clone(),
            client_id: format!("facegate-{}", slug(&cfg.mqtt.base_topic)),
            access_levels: cfg.access_levels.iter().map(|l| l.name.clone()).collect(),
            away_after: Duration::from_secs(cfg.mqtt.away_after_s as u64),
            event_max_age: Duration::from_secs(cfg.mqtt.event_max_age_s as u64),
            diag_every: Duration::from_secs(5),
            people_every: Duration::from_secs(30),
        };
        let bridge = Bridge::start(
            bridge_opts,
            setups,
            Arc::new(gallery.clone()),
            store,
            bus.subscribe(),
        )?;
        let view = LiveView::default();
        let names: Vec<String> = cameras.iter().map(|c| c.0.name.clone()).collect();
        let tasks = TaskTracker::new();
        let (feeds, view_tasks) = outputs::view::start(&view, &names, bus.subscribe());
        for t in view_tasks {
            tasks.spawn(async move {
                let _ = t.await;
            });
        }

        let enroller = Arc::new(crate::http::GalleryEnroller::new(
            analyzer.clone(),
            gallery.clone(),
        ));
        let mut http_cfg = cfg.http.clone();
        if let Some(peers) = &opts.ingress_peers {
            http_cfg.ingress_peers = peers.clone();
        }
        let addr = SocketAddr::new(opts.http_ip, cfg.http.port);
        let http = crate::http::serve(addr, view.clone(), enroller, &http_cfg).await?;

        let stop = CancellationToken::new();
        let mut sources = opts.sources;
        let mut threads = Vec::new();
        for ((cam, device, settings, commands), feed) in cameras.into_iter().zip(feeds) {
            let pipeline = Pipeline::new(
                cam.gate.clone(),
                analyzer.clone(),
                gallery.clone(),
                policy.clone(),
                settings,
                cfg.liveness.clone(),
            );
            let open = sources
                .remove(&cam.name)
                .unwrap_or_else(|| camera::configured_source(cam.source.clone()));
            let cx = CameraContext {
                camera: CameraId::new(&cam.name, &device.slug),
                open,
                pipeline,
                commands,
                bus: bus.clone(),
                feed,
                stop: stop.clone(),
                rt: tokio::runtime::Handle::current(),
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
        Ok(ServiceHandle {
            bus,
            http_addr: http.local_addr(),
            stop,
            cameras: threads,
            http,
            gate,
            audit,
            bridge,
            tasks,
        })
    }
}

impl ServiceHandle {
    /// A receiver of the service's events from now on (what the outputs see).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ServiceEvent> {
        self.bus.subscribe()
    }

    /// Where the HTTP server listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Stops in order, within [`SHUTDOWN_LIMIT`]: the cameras and the HTTP server stop; the gate output
    /// starts what is still on the bus, lets in-flight actions finish or drop at their deadline and closes
    /// the board connections; then the event stream closes and the audit log writes its last rows and closes
    /// the database, Home Assistant hears of the last outcomes and marks facegate `offline`.
    pub async fn shutdown(self) {
        let started = std::time::Instant::now();
        let ServiceHandle {
            bus,
            stop,
            cameras,
            http,
            gate,
            audit,
            bridge,
            tasks,
            ..
        } = self;
        stop.cancel();
        let orderly = async move {
            let joined = tokio::task::spawn_blocking(move || {
                for t in cameras {
                    let _ = t.join();
                }
            });
            let (_, _) = tokio::join!(joined, http.shutdown());
            gate.stop().await;
            // The last sender: the stream closes once every output has read what is on it.
            drop(bus);
            tokio::join!(audit.join(), bridge.finished());
            tasks.close();
            tasks.wait().await;
        };
        if tokio::time::timeout(SHUTDOWN_LIMIT, orderly).await.is_err() {
            tracing::error!(
                limit_s = SHUTDOWN_LIMIT.as_secs(),
                "shutdown did not finish in time; leaving anyway"
            );
        } else {
            tracing::info!(took_s = started.elapsed().as_secs_f64(), "stopped cleanly");
        }
    }
}

/// The ESPHome drivers of every gate with a board (one connection per board, shared by its gates), and those
/// connections; boards may be down at start: their clients keep trying in the background.
fn gate_actuators(
    cfg: &ServiceConfig,
) -> (
    HashMap<String, GateActuator>,
    Vec<crate::esphome::client::Client>,
) {
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
    (out, clients.into_values().collect())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
