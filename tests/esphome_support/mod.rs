//! Helpers for the ESPHome tests: a fast simulated board, a misbehaving TCP front for it, and the real
//! host-platform firmware (built by scripts/setup-esphome.sh; a missing part is a failure, never a skip).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use facegate::esphome::noise::Key;
use facegate::esphome::sim::{SimBoard, SimConfig};
use facegate::esphome::{BoardConfig, Client};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

pub const KEY: &str = "px7tsbK3C7bpXHr2OevEV2ZMg/FrNBw2+O2pNPbedtA=";
pub const OTHER_KEY: &str = "3ub9uT2IHYMm8+4lmOeycsYB4uKJnH+gJuW2rbYp5GE=";

pub fn key() -> Key {
    Key::from_base64(KEY).unwrap()
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A simulated board with short timers so tests run fast.
pub fn fast_sim(key: Option<Key>) -> SimConfig {
    SimConfig {
        key,
        relock: Duration::from_millis(600),
        travel_per_floor: Duration::from_millis(400),
        ..SimConfig::default()
    }
}

pub async fn sim(key: Option<Key>) -> SimBoard {
    SimBoard::start(fast_sim(key), 0).await.unwrap()
}

/// Client settings with quick reconnects.
pub fn board(port: u16, key: Option<Key>) -> BoardConfig {
    let mut c = BoardConfig::new("127.0.0.1", port, key);
    c.backoff_min = Duration::from_millis(50);
    c.backoff_max = Duration::from_millis(300);
    c.connect_timeout = Duration::from_secs(3);
    c
}

/// A TCP front for a board: the first `bad` connections get `garbage` and are closed; later ones are
/// forwarded to `target`. `freeze` stops forwarding (a board that hangs without closing).
pub struct Front {
    pub port: u16,
    pub freeze: Arc<AtomicBool>,
    pub accepted: Arc<AtomicUsize>,
}

pub async fn front(target: u16, bad: usize, garbage: Vec<u8>) -> Front {
    front_with(target, bad, garbage, Vec::new()).await
}

/// Like [`front`], and forwarded connections first receive `inject` (extra frames from "the board").
pub async fn front_with(target: u16, bad: usize, garbage: Vec<u8>, inject: Vec<u8>) -> Front {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let freeze = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let (fz, acc) = (freeze.clone(), accepted.clone());
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = l.accept().await {
            let n = acc.fetch_add(1, Ordering::SeqCst);
            if n < bad {
                let _ = inbound.write_all(&garbage).await;
                let _ = inbound.shutdown().await;
                continue;
            }
            let fz = fz.clone();
            let inject = inject.clone();
            tokio::spawn(async move {
                if inbound.write_all(&inject).await.is_err() {
                    return;
                }
                let Ok(outbound) = TcpStream::connect(("127.0.0.1", target)).await else {
                    return;
                };
                let (mut ri, mut wi) = inbound.into_split();
                let (mut ro, mut wo) = outbound.into_split();
                let a = pump(&mut ri, &mut wo, fz.clone());
                let b = pump(&mut ro, &mut wi, fz);
                tokio::select! { _ = a => {}, _ = b => {} }
            });
        }
    });
    Front {
        port,
        freeze,
        accepted,
    }
}

async fn pump(
    r: &mut tokio::net::tcp::OwnedReadHalf,
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    freeze: Arc<AtomicBool>,
) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if freeze.load(Ordering::SeqCst) {
            continue; // swallow: the peer hears nothing, the socket stays open
        }
        if w.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The ESPHome venv made by scripts/setup-esphome.sh.
pub fn venv() -> PathBuf {
    let cache = std::env::var("FACEGATE_CACHE").unwrap_or_else(|_| "/var/cache/facegate".into());
    let v = PathBuf::from(cache).join("esphome-venv");
    assert!(
        v.join("bin/esphome").exists() && v.join("bin/python").exists(),
        "{} is missing: run scripts/setup-esphome.sh (installs esphome + aioesphomeapi and builds the host firmware)",
        v.display()
    );
    v
}

/// The real host-platform firmware binary for `firmware/<name>.yaml` (cached build; builds if needed).
pub fn firmware(name: &str) -> PathBuf {
    let out = Command::new(repo().join("scripts/firmware-build-host.sh"))
        .arg(venv())
        .arg(format!("firmware/{name}.yaml"))
        .current_dir(repo())
        .stderr(Stdio::inherit())
        .output()
        .expect("running scripts/firmware-build-host.sh");
    assert!(
        out.status.success(),
        "building the {name} host firmware failed"
    );
    let p = PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .lines()
            .last()
            .unwrap_or_default(),
    );
    assert!(p.exists(), "firmware binary {} missing", p.display());
    p
}

/// A running real firmware process, killed on drop.
pub struct Firmware {
    pub child: Child,
    pub port: u16,
    path: PathBuf,
}

impl Firmware {
    pub fn start(name: &str, port: u16) -> Firmware {
        let path = firmware(name);
        let child = spawn(&path);
        Firmware { child, port, path }
    }

    /// Kills the process (the board goes away).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again (the board comes back, in its boot state).
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(&self.path);
    }

    /// Connects, retrying while the process starts listening.
    pub async fn client(&self, cfg: BoardConfig) -> Client {
        for _ in 0..100 {
            if let Ok(c) = Client::connect(cfg.clone()).await {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "firmware on port {} never accepted a native-API client",
            self.port
        );
    }
}

fn spawn(path: &PathBuf) -> Child {
    Command::new(path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting host firmware")
}

impl Drop for Firmware {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Serialises tests that use the firmware's fixed ports.
pub fn firmware_lock() -> &'static tokio::sync::Mutex<()> {
    static L: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    L.get_or_init(|| tokio::sync::Mutex::new(()))
}

pub fn median_p95(v: Vec<f64>) -> (f64, f64) {
    (
        facegate::stats::median(&v),
        facegate::stats::percentile(&v, 0.95),
    )
}
