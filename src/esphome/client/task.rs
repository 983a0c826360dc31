//! The background task that owns a board's socket: keeps the link up and writes commands before their
//! deadlines (never after); resets the connection when asked (an unconfirmed unlock) or when it is lost, so
//! nothing queued is delivered late, and relocks after the reconnect.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use esphome_native_api::proto;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::sleep_until;

use super::super::entities::{EntityState, LockState};
use super::super::msg::{self, Incoming};
use super::super::wire::Wire;
use super::super::EspError;
use super::setup::{self, Established};
use super::{BoardConfig, Command, LinkStatus, Pending, SendError, Shared, StateEvent, ToTask};

pub(super) struct Task {
    pub cfg: BoardConfig,
    pub shared: Arc<Shared>,
    pub rx: mpsc::Receiver<ToTask>,
    pub status: watch::Sender<LinkStatus>,
    pub events: broadcast::Sender<StateEvent>,
    /// Relocks owed after an abort, written first on every new connection until the board reports locked.
    pub relocks: Vec<Relock>,
}

/// A lock command owed to the board since an unconfirmed unlock was aborted.
pub(super) struct Relock {
    cmd: Command,
    /// Written on the current connection (a locked state seen after this settles it).
    written: bool,
}

/// How a connected session ended.
enum End {
    Lost(EspError),
    Stopped,
}

/// Far enough in the future to mean "never" for a timer.
fn never() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400 * 365)
}

impl Task {
    pub async fn run(mut self, mut first: Option<Established>) {
        let mut pending: VecDeque<Pending> = VecDeque::new();
        let mut backoff = self.cfg.backoff_min;
        let mut generation = 0u64;
        loop {
            let est = match first.take() {
                Some(e) => Ok(e),
                None => {
                    let cfg = self.cfg.clone();
                    let shared = self.shared.clone();
                    let attempt = async move { setup::establish(&cfg, &shared).await };
                    match self.while_waiting(attempt, &mut pending).await {
                        Some(r) => r,
                        None => return self.stopped(pending),
                    }
                }
            };
            match est {
                Ok(est) => {
                    generation += 1;
                    backoff = self.cfg.backoff_min;
                    self.status
                        .send_replace(LinkStatus::Connected { generation });
                    tracing::info!(board = %self.cfg.addr(), generation, "ESPHome board connected");
                    match self.session(est.wire, &mut pending).await {
                        End::Stopped => return self.stopped(pending),
                        End::Lost(e) => {
                            tracing::warn!(board = %self.cfg.addr(), error = %e, "ESPHome link lost; reconnecting");
                            self.status.send_replace(LinkStatus::Failed {
                                error: e.to_string(),
                            });
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(board = %self.cfg.addr(), error = %e, retry_in = ?backoff, "ESPHome connect failed");
                    self.status.send_replace(LinkStatus::Failed {
                        error: e.to_string(),
                    });
                    let wait = sleep_until((Instant::now() + backoff).into());
                    if self.while_waiting(wait, &mut pending).await.is_none() {
                        return self.stopped(pending);
                    }
                    backoff = (backoff * 2).min(self.cfg.backoff_max);
                }
            }
        }
    }

    fn stopped(&self, pending: VecDeque<Pending>) {
        for p in pending {
            let _ = p.reply.send(Err(SendError::Shutdown));
        }
        self.status.send_replace(LinkStatus::Stopped);
    }

    /// Drives `fut` while queueing commands and dropping those whose deadline passes. `None`: stop requested.
    async fn while_waiting<T>(
        &mut self,
        fut: impl std::future::Future<Output = T>,
        pending: &mut VecDeque<Pending>,
    ) -> Option<T> {
        tokio::pin!(fut);
        loop {
            let next = pending
                .iter()
                .map(|p| p.deadline)
                .min()
                .map(Into::into)
                .unwrap_or_else(never);
            tokio::select! {
                r = &mut fut => return Some(r),
                m = self.rx.recv() => match m {
                    Some(ToTask::Send(p)) => pending.push_back(p),
                    // Not connected: the last connection was already reset; owe the relock.
                    Some(ToTask::Abort { relock, reason }) => self.owe_relock(relock, &reason),
                    Some(ToTask::Stop(done)) => { let _ = done.send(()); return None; }
                    None => return None,
                },
                _ = sleep_until(next) => drop_expired(pending),
            }
        }
    }

    /// One connected session. A lost session is reset (never closed gracefully): the kernel would otherwise
    /// keep retransmitting queued bytes (an unlock) after we gave up on them.
    async fn session(&mut self, mut wire: Wire, pending: &mut VecDeque<Pending>) -> End {
        let end = self.session_inner(&mut wire, pending).await;
        match end {
            End::Lost(_) => wire.abort(),
            End::Stopped => wire.shutdown().await,
        }
        end
    }

    fn owe_relock(&mut self, cmd: Command, reason: &str) {
        tracing::warn!(board = %self.cfg.addr(), reason, ?cmd, "aborting the connection; relock owed");
        self.relocks
            .retain(|r| command_key(&r.cmd) != command_key(&cmd));
        self.relocks.push(Relock {
            cmd,
            written: false,
        });
    }

    /// Writes a command (relock first when owed) and forgets relocks a newer command supersedes.
    async fn write_command(&mut self, wire: &mut Wire, p: Pending) -> Result<(), EspError> {
        let key = command_key(&p.cmd);
        let written = send_before_deadline(wire, p).await?;
        if written {
            self.relocks.retain(|r| command_key(&r.cmd) != key);
        }
        Ok(())
    }

    async fn session_inner(&mut self, wire: &mut Wire, pending: &mut VecDeque<Pending>) -> End {
        // Relocks owed since an abort go first (no deadline: locking late is safe).
        for r in self.relocks.iter_mut() {
            r.written = false;
        }
        for i in 0..self.relocks.len() {
            let (ty, bytes) = encode_command(&self.relocks[i].cmd);
            if let Err(e) = wire.write(ty, &bytes).await {
                return End::Lost(e);
            }
            self.relocks[i].written = true;
            tracing::info!(board = %self.cfg.addr(), cmd = ?self.relocks[i].cmd, "relock sent after reconnect");
        }
        // Commands that waited for this connection: send those still in time, in order.
        while let Some(p) = pending.pop_front() {
            if let Err(e) = self.write_command(wire, p).await {
                return End::Lost(e);
            }
        }
        let mut last_rx = Instant::now();
        let mut pinged = false;
        loop {
            let ping_at = match self.cfg.keepalive {
                Some(k) if !pinged => (last_rx + k).into(),
                _ => never(),
            };
            let dead_at = match self.cfg.keepalive {
                Some(k) => (last_rx + k + self.cfg.keepalive_timeout).into(),
                None => never(),
            };
            tokio::select! {
                r = wire.read() => {
                    last_rx = Instant::now();
                    pinged = false;
                    match r {
                        Ok(raw) => match Incoming::decode(&raw) {
                            Ok(m) => if let Err(e) = self.handle(wire, m).await { return End::Lost(e) },
                            // One undecodable message is the board's bug, not a reason to drop the link.
                            Err(e) => tracing::warn!(board = %self.cfg.addr(), error = %e, "ignoring message"),
                        },
                        Err(e) => return End::Lost(e),
                    }
                }
                m = self.rx.recv() => match m {
                    Some(ToTask::Send(p)) => if let Err(e) = self.write_command(wire, p).await {
                        return End::Lost(e);
                    },
                    Some(ToTask::Abort { relock, reason }) => {
                        self.owe_relock(relock, &reason);
                        return End::Lost(EspError::Aborted(reason));
                    }
                    Some(ToTask::Stop(done)) => {
                        goodbye(wire).await;
                        let _ = done.send(());
                        return End::Stopped;
                    }
                    None => { goodbye(wire).await; return End::Stopped; }
                },
                _ = sleep_until(ping_at) => {
                    pinged = true;
                    if let Err(e) = wire.write(msg::PING_REQUEST, &[]).await { return End::Lost(e) }
                }
                _ = sleep_until(dead_at) => {
                    return End::Lost(EspError::Timeout(self.cfg.keepalive_timeout));
                }
            }
        }
    }

    async fn handle(&mut self, wire: &mut Wire, m: Incoming) -> Result<(), EspError> {
        match m {
            Incoming::PingRequest => wire.write(msg::PING_RESPONSE, &[]).await?,
            Incoming::DisconnectRequest => {
                let _ = wire.write(msg::DISCONNECT_RESPONSE, &[]).await;
                return Err(EspError::Closed);
            }
            Incoming::Other(t) => tracing::debug!(msg_type = t, "ignoring message type"),
            other => {
                if let Some((key, state)) = EntityState::from_update(&other) {
                    if state == EntityState::Lock(LockState::Locked) {
                        // A relock written on this connection is settled by the board reporting locked.
                        self.relocks
                            .retain(|r| !(r.written && command_key(&r.cmd) == key));
                    }
                    if let Ok(mut s) = self.shared.states.write() {
                        s.insert(key, state.clone());
                    }
                    let _ = self.events.send(StateEvent {
                        key,
                        state,
                        at: Instant::now(),
                    });
                }
            }
        }
        Ok(())
    }
}

fn drop_expired(pending: &mut VecDeque<Pending>) {
    let now = Instant::now();
    let mut kept = VecDeque::new();
    for p in pending.drain(..) {
        if p.deadline <= now {
            let _ = p.reply.send(Err(SendError::Expired));
        } else {
            kept.push_back(p);
        }
    }
    *pending = kept;
}

/// Writes the command only if its deadline has not passed (the driver's confirmation and abort cover what
/// happens after the write). `Ok(true)`: written.
async fn send_before_deadline(wire: &mut Wire, p: Pending) -> Result<bool, EspError> {
    if Instant::now() >= p.deadline {
        let _ = p.reply.send(Err(SendError::Expired));
        return Ok(false);
    }
    let (ty, bytes) = encode_command(&p.cmd);
    wire.write(ty, &bytes).await?;
    let _ = p.reply.send(Ok(Instant::now()));
    Ok(true)
}

/// The entity a command is for.
fn command_key(cmd: &Command) -> u32 {
    match cmd {
        Command::Lock { key }
        | Command::Unlock { key }
        | Command::Select { key, .. }
        | Command::Press { key } => *key,
    }
}

pub(crate) fn encode_command(cmd: &Command) -> (u16, Vec<u8>) {
    match cmd {
        Command::Lock { key } | Command::Unlock { key } => {
            let command = if matches!(cmd, Command::Lock { .. }) {
                1
            } else {
                0
            };
            let m = proto::LockCommandRequest {
                key: *key,
                command,
                ..Default::default()
            };
            (msg::LOCK_COMMAND, msg::encode(&m))
        }
        Command::Select { key, option } => {
            let m = proto::SelectCommandRequest {
                key: *key,
                state: option.clone(),
                ..Default::default()
            };
            (msg::SELECT_COMMAND, msg::encode(&m))
        }
        Command::Press { key } => {
            let m = proto::ButtonCommandRequest {
                key: *key,
                ..Default::default()
            };
            (msg::BUTTON_COMMAND, msg::encode(&m))
        }
    }
}

/// DisconnectRequest, then up to 500 ms for the board's DisconnectResponse.
async fn goodbye(wire: &mut Wire) {
    if wire.write(msg::DISCONNECT_REQUEST, &[]).await.is_err() {
        return;
    }
    let wait = async {
        while let Ok(raw) = wire.read().await {
            if raw.msg_type == msg::DISCONNECT_RESPONSE {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(500), wait).await;
}
