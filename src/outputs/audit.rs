//! The audit output: one row per decision ([`Audit::record`]) and its actions' outcome
//! ([`Audit::set_outcome`], the JSON list of the drivers' outcomes), matched by [`DecisionId`].
//!
//! Two parts, so that the database never slows anything else down: a task that copies decisions and
//! outcomes from the bus into a bounded queue (it never blocks), and a thread of its own that writes them.
//! When the database is locked (another process holds a write lock, a backup runs) the writer keeps the rows
//! queued and retries with a growing pause, with one error line when it starts failing and one info line
//! when it catches up; no row is dropped unless the queue ([`BACKLOG`] rows) overflows, which is logged as an
//! error. On shutdown (the bus closes) the writer keeps retrying for at most [`FLUSH_LIMIT`], then says how
//! many rows it could not write.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::{self, error::RecvError};

use super::{DecisionId, ServiceEvent};
use crate::audit::Audit;
use crate::decide::{Decision, Verdict};
use crate::esphome::ActionOutcome;

/// Rows the writer holds while the database is unavailable.
pub const BACKLOG: usize = 4096;
/// How long the writer keeps retrying after the service stopped.
pub const FLUSH_LIMIT: Duration = Duration::from_secs(4);
/// Grants whose outcome may still come (far more than can be in flight: actions end within seconds).
const OPEN_GRANTS: usize = 1024;
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(2);

enum Row {
    Decision(DecisionId, Arc<Decision>),
    Outcome(DecisionId, Vec<ActionOutcome>),
}

/// The running audit output; [`AuditOutput::join`] waits for the writer after the bus closed.
pub struct AuditOutput {
    writer: std::thread::JoinHandle<()>,
}

impl AuditOutput {
    /// Starts the copier task (on the current runtime) and the writer thread.
    pub fn start(audit: Audit, events: broadcast::Receiver<ServiceEvent>) -> AuditOutput {
        let (tx, rx) = mpsc::sync_channel(BACKLOG);
        tokio::spawn(copy(events, tx));
        let writer = std::thread::Builder::new()
            .name("audit writer".into())
            .spawn(move || write_all(audit, rx))
            .expect("starting the audit writer thread");
        AuditOutput { writer }
    }

    /// Waits (without blocking the runtime) for the writer to finish: it does once the bus has closed and
    /// the queued rows are written (or [`FLUSH_LIMIT`] has passed).
    pub async fn join(self) {
        let _ = tokio::task::spawn_blocking(move || self.writer.join()).await;
    }
}

async fn copy(mut events: broadcast::Receiver<ServiceEvent>, tx: SyncSender<Row>) {
    let mut dropped = 0u64;
    loop {
        let row = match events.recv().await {
            Ok(ServiceEvent::Decision { id, decision, .. }) => Row::Decision(id, decision),
            Ok(ServiceEvent::Outcome { id, outcomes, .. }) => Row::Outcome(id, outcomes),
            Ok(_) => continue,
            Err(RecvError::Lagged(n)) => {
                tracing::error!(
                    missed = n,
                    "audit log: fell behind the service's events; decisions among them have no audit row"
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        match tx.try_send(row) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                dropped += 1;
                tracing::error!(
                    dropped,
                    backlog = BACKLOG,
                    "audit log: {BACKLOG} rows wait for the database already; this one is LOST"
                );
            }
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

fn write_all(mut audit: Audit, rx: Receiver<Row>) {
    let mut rows: BTreeMap<DecisionId, i64> = BTreeMap::new();
    let mut failing_since: Option<Instant> = None;
    let mut closed_at: Option<Instant> = None;
    let mut pending: std::collections::VecDeque<Row> = Default::default();
    let mut pause = FIRST_PAUSE;
    loop {
        // Take what has arrived (waiting for the next row when nothing is pending).
        if pending.is_empty() && closed_at.is_none() {
            match rx.recv() {
                Ok(r) => pending.push_back(r),
                Err(_) => return,
            }
        }
        while let Ok(r) = rx.try_recv() {
            pending.push_back(r);
        }
        while let Some(row) = pending.front() {
            match write(&mut audit, &mut rows, row) {
                Ok(()) => {
                    pending.pop_front();
                    if let Some(t) = failing_since.take() {
                        tracing::info!(
                            after_s = t.elapsed().as_secs_f64(),
                            "audit log: the database takes rows again"
                        );
                    }
                    pause = FIRST_PAUSE;
                }
                Err(e) => {
                    if failing_since.is_none() {
                        failing_since = Some(Instant::now());
                        tracing::error!(
                            queued = pending.len(),
                            "audit log: cannot write ({e}); keeping the rows and retrying"
                        );
                    }
                    break;
                }
            }
        }
        if pending.is_empty() {
            if closed_at.is_some() {
                return;
            }
            continue;
        }
        // Rows wait: pause (while still taking new ones), then retry.
        match rx.recv_timeout(pause) {
            Ok(r) => pending.push_back(r),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                let at = *closed_at.get_or_insert_with(Instant::now);
                if at.elapsed() >= FLUSH_LIMIT {
                    tracing::error!(
                        lost = pending.len(),
                        "audit log: the service stopped and the database still refuses rows; these are LOST"
                    );
                    return;
                }
                std::thread::sleep(pause);
            }
        }
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

fn write(
    audit: &mut Audit,
    rows: &mut BTreeMap<DecisionId, i64>,
    row: &Row,
) -> Result<(), crate::audit::AuditError> {
    match row {
        Row::Decision(id, d) => {
            let row_id = audit.record(d)?;
            // Only grants get an outcome; remember their rows (a bounded number: a grant on a gate without
            // a board never gets one).
            if matches!(&d.verdict, Verdict::Granted { actions } if !actions.is_empty()) {
                rows.insert(*id, row_id);
                while rows.len() > OPEN_GRANTS {
                    rows.pop_first();
                }
            }
        }
        Row::Outcome(id, outcomes) => {
            let Some(row_id) = rows.remove(id) else {
                tracing::error!(
                    decision = id.0,
                    "audit log: an outcome for a decision that has no row"
                );
                return Ok(());
            };
            let text = serde_json::to_string(outcomes).unwrap_or_default();
            audit.set_outcome(row_id, &text)?;
        }
    }
    Ok(())
}
