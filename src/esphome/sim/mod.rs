//! A simulated ESPHome board (door lock + two-level lift) that speaks the native API, plaintext or Noise.
//! Tests use it where real firmware cannot go (Noise, wrong keys, deadlines, board going away), `facegate
//! demo` uses it instead of hardware, and Home Assistant's own client (`aioesphomeapi`) accepts it.

mod board;
mod server;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use board::{key, Board, Received, ENTITIES, FLOORS};

use super::noise::Key;
use super::EspError;

/// How the simulated board behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// `Some`: Noise with this key (as `api: encryption: key:`), else plaintext.
    pub key: Option<Key>,
    /// Auto-relock delay after the last unlock.
    pub relock: Duration,
    /// Cabin travel time per floor.
    pub travel_per_floor: Duration,
    /// The device pings a client after this much silence (ESPHome: 60 s)...
    pub ping_after: Duration,
    /// ...and drops it when the ping stays unanswered this long (ESPHome: 150 s total, so 90 s more).
    pub drop_after: Duration,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            key: None,
            relock: Duration::from_secs(5),
            travel_per_floor: Duration::from_secs(2),
            ping_after: Duration::from_secs(60),
            drop_after: Duration::from_secs(90),
        }
    }
}

/// A running simulated board. The device model survives [`SimBoard::stop`] / [`SimBoard::restart`] (like a
/// board whose network goes away), connections do not.
pub struct SimBoard {
    pub board: Arc<Board>,
    cfg: SimConfig,
    addr: SocketAddr,
    accept: Mutex<Option<JoinHandle<()>>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl SimBoard {
    /// Listens on `127.0.0.1:port` (0 = any free port).
    pub async fn start(cfg: SimConfig, port: u16) -> Result<SimBoard, EspError> {
        let board = Board::new(cfg.relock, cfg.travel_per_floor);
        let mut sim = SimBoard {
            board,
            cfg,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            accept: Mutex::new(None),
            conns: Arc::new(Mutex::new(Vec::new())),
        };
        sim.addr = sim.listen(port).await?;
        Ok(sim)
    }

    async fn listen(&self, port: u16) -> Result<SocketAddr, EspError> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let (board, cfg, conns) = (self.board.clone(), self.cfg.clone(), self.conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (b, c) = (board.clone(), cfg.clone());
                let h = tokio::spawn(async move {
                    if let Err(e) = server::serve(stream, b, c).await {
                        tracing::debug!(error = %e, "simulated board connection ended");
                    }
                });
                if let Ok(mut v) = conns.lock() {
                    v.retain(|h| !h.is_finished());
                    v.push(h);
                }
            }
        });
        *self.accept.lock().unwrap_or_else(|p| p.into_inner()) = Some(accept);
        Ok(addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The board drops off the network: listener closed, every connection cut.
    pub fn stop(&self) {
        if let Some(a) = self.accept.lock().unwrap_or_else(|p| p.into_inner()).take() {
            a.abort();
        }
        for h in self
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            h.abort();
        }
    }

    /// The board comes back on the same port.
    pub async fn restart(&self) -> Result<(), EspError> {
        self.stop();
        self.listen(self.addr.port()).await.map(|_| ())
    }
}

impl Drop for SimBoard {
    fn drop(&mut self) {
        self.stop();
    }
}
