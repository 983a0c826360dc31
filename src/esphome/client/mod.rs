//! One long-lived native-API connection per board, shared (cheaply cloned) by everything in facegate.
//!
//! A background task owns the socket: it connects, says hello, reads the device info and the entity list,
//! subscribes to states, answers the board's pings and sends its own, and on any failure reconnects with
//! exponential backoff, re-listing and re-subscribing (states are replaced by the board's fresh dump).
//! Commands carry a deadline: the task writes a command only while its deadline has not passed, so a command
//! queued while the board is unreachable is dropped and reported, never delivered late. A written command is
//! only in a kernel buffer: when its confirmation does not come in time the driver calls
//! [`Client::abort_and_relock`], which resets the connection (queued bytes discarded) and relocks. A lost
//! connection is reset the same way, never closed gracefully; only [`Client::close`] closes gracefully.

mod setup;
mod task;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::entities::{Entity, EntityState};
use super::noise::Key;
use super::EspError;

/// Where a board is and how to talk to it.
#[derive(Debug, Clone)]
pub struct BoardConfig {
    pub host: String,
    pub port: u16,
    /// The API encryption key; `None` for a plaintext board.
    pub key: Option<Key>,
    /// Shown by the board in its logs.
    pub client_info: String,
    /// Send our own ping after this much silence from the board (`None`: only answer the board's pings).
    pub keepalive: Option<Duration>,
    /// After our ping, give up on the link (and reconnect) when nothing arrives within this.
    pub keepalive_timeout: Duration,
    /// Limit for TCP connect + handshake + hello + entity list + subscribe.
    pub connect_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl BoardConfig {
    /// Defaults close to Home Assistant's own client: ping after 20 s of silence, reconnect 0.1 s .. 5 s.
    pub fn new(host: impl Into<String>, port: u16, key: Option<Key>) -> BoardConfig {
        BoardConfig {
            host: host.into(),
            port,
            key,
            client_info: "facegate".into(),
            keepalive: Some(Duration::from_secs(20)),
            keepalive_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A command for one entity (by key).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Lock { key: u32 },
    Unlock { key: u32 },
    Select { key: u32, option: String },
    Press { key: u32 },
}

/// The state of the link, as a `watch` value.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkStatus {
    Connecting,
    /// `generation` counts successful connections (1 = first), so a reconnect is visible.
    Connected {
        generation: u64,
    },
    /// The last attempt failed with this error; retrying with backoff.
    Failed {
        error: String,
    },
    Stopped,
}

/// A state update from the board.
#[derive(Debug, Clone, PartialEq)]
pub struct StateEvent {
    pub key: u32,
    pub state: EntityState,
    pub at: Instant,
}

/// Why a command was not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("not sent: deadline passed before the board could be reached")]
    Expired,
    #[error("not sent: the client is shut down")]
    Shutdown,
}

/// What the board said about itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeviceSummary {
    pub name: String,
    pub friendly_name: String,
    pub mac_address: String,
    pub esphome_version: String,
    pub model: String,
    pub api_version: (u32, u32),
}

#[derive(Default)]
struct Shared {
    entities: RwLock<Vec<Entity>>,
    states: RwLock<HashMap<u32, EntityState>>,
    device: RwLock<DeviceSummary>,
}

struct Pending {
    cmd: Command,
    deadline: Instant,
    reply: oneshot::Sender<Result<Instant, SendError>>,
}

enum ToTask {
    Send(Pending),
    /// Reset the connection (queued bytes discarded), reconnect, and send `relock` first.
    Abort {
        relock: Command,
        reason: String,
    },
    Stop(oneshot::Sender<()>),
}

/// A handle on a board's connection. Clones share the connection.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    tx: mpsc::Sender<ToTask>,
    status: watch::Receiver<LinkStatus>,
    events: broadcast::Sender<StateEvent>,
}

impl Client {
    /// Connects once (returning that attempt's error, e.g. a wrong key, as is), then keeps the link up in
    /// the background.
    pub async fn connect(cfg: BoardConfig) -> Result<Client, EspError> {
        let shared = Arc::new(Shared::default());
        let first = setup::establish(&cfg, &shared).await?;
        Ok(Client::spawn(cfg, shared, Some(first)))
    }

    /// Starts the background connection without waiting: for boards that may be down when facegate starts.
    pub fn start(cfg: BoardConfig) -> Client {
        Client::spawn(cfg, Arc::new(Shared::default()), None)
    }

    fn spawn(cfg: BoardConfig, shared: Arc<Shared>, first: Option<setup::Established>) -> Client {
        let (tx, rx) = mpsc::channel(64);
        let (status_tx, status) = watch::channel(LinkStatus::Connecting);
        let (events, _) = broadcast::channel(256);
        let t = task::Task {
            cfg,
            shared: shared.clone(),
            rx,
            status: status_tx,
            events: events.clone(),
            relocks: Vec::new(),
        };
        tokio::spawn(t.run(first));
        Client {
            shared,
            tx,
            status,
            events,
        }
    }

    pub fn status(&self) -> LinkStatus {
        self.status.borrow().clone()
    }

    pub fn status_watch(&self) -> watch::Receiver<LinkStatus> {
        self.status.clone()
    }

    /// Waits until the link is up (or `timeout`).
    pub async fn wait_connected(&self, timeout: Duration) -> Result<u64, EspError> {
        let mut w = self.status.clone();
        let res = tokio::time::timeout(timeout, async {
            loop {
                if let LinkStatus::Connected { generation } = *w.borrow_and_update() {
                    return Ok(generation);
                }
                if w.changed().await.is_err() {
                    return Err(EspError::Shutdown);
                }
            }
        });
        res.await.map_err(|_| EspError::Timeout(timeout))?
    }

    pub fn device(&self) -> DeviceSummary {
        self.shared
            .device
            .read()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    pub fn entities(&self) -> Vec<Entity> {
        self.shared
            .entities
            .read()
            .map(|e| e.clone())
            .unwrap_or_default()
    }

    /// The entity with this object id (e.g. `door_lock`).
    pub fn entity(&self, object_id: &str) -> Result<Entity, EspError> {
        self.entities()
            .into_iter()
            .find(|e| e.object_id == object_id)
            .ok_or_else(|| EspError::NoSuchEntity(object_id.to_string()))
    }

    pub fn state(&self, key: u32) -> Option<EntityState> {
        self.shared.states.read().ok()?.get(&key).cloned()
    }

    /// State updates from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StateEvent> {
        self.events.subscribe()
    }

    /// Sends `cmd` if it can be written before `deadline`; returns when it was written.
    pub async fn send(&self, cmd: Command, deadline: Instant) -> Result<Instant, SendError> {
        let (reply, rx) = oneshot::channel();
        let p = Pending {
            cmd,
            deadline,
            reply,
        };
        self.tx
            .send(ToTask::Send(p))
            .await
            .map_err(|_| SendError::Shutdown)?;
        rx.await.unwrap_or(Err(SendError::Shutdown))
    }

    /// For a command sent but not confirmed in time (an unlock): resets the connection (TCP RST, `SO_LINGER`
    /// 0) so bytes still queued in the kernel or stuck behind a stalled path are discarded and never executed
    /// late, reconnects at once, and writes `relock` first on the new connection. The relock has no
    /// deadline (locking late is always safe) and is sent again after every reconnect until the board
    /// reports the lock locked, or a newer command for the same entity supersedes it.
    pub async fn abort_and_relock(&self, relock: Command, reason: impl Into<String>) {
        let reason = reason.into();
        let _ = self.tx.send(ToTask::Abort { relock, reason }).await;
    }

    /// Graceful close on shutdown: says goodbye to the board (DisconnectRequest, up to 500 ms for its answer),
    /// closes the socket with a FIN and stops reconnecting. Commands still queued are answered
    /// [`SendError::Shutdown`]. Other clones stop too; calling it again is harmless.
    pub async fn close(&self) {
        self.disconnect().await
    }

    /// Same as [`Client::close`].
    pub async fn disconnect(&self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(ToTask::Stop(done)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

impl BoardConfig {
    /// Client settings for a board from the service configuration (an empty key means plaintext).
    pub fn from_config(b: &crate::config::BoardConfig) -> Result<BoardConfig, EspError> {
        let key = b.encryption_key.expose();
        let key = if key.is_empty() {
            None
        } else {
            Some(Key::from_base64(key)?)
        };
        Ok(BoardConfig::new(b.host.clone(), b.port, key))
    }
}
