//! The audit log: every access decision, in the `audit` table of facegate's database ([`crate::store`], which
//! creates and migrates the table and owns the connection; the service shares one with the gallery).
//!
//! A row is written when the decision is taken ([`Audit::record`]); the outcome of its actions is filled in
//! once they are carried out ([`Audit::set_outcome`]; `facegate run` writes the JSON list of the ESPHome
//! drivers' `ActionOutcome`s, one per action, e.g.
//! `[{"gate":"Front","action":"unlock","lock":"door_lock","result":"confirmed",...}]`; `facegate demo` a
//! sentence). Rows older than the retention are pruned when the log is opened and at most daily afterwards,
//! as rows are recorded.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::params;
use serde::Serialize;

use crate::decide::{Action, Decision, Verdict};
use crate::store::{Store, StoreError};

/// Why the audit log failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database cannot be opened (e.g. it was written by a newer facegate).
    #[error("audit log: {0}")]
    Store(StoreError),
    #[error("audit log: cannot encode the decision: {0}")]
    Json(#[from] serde_json::Error),
    #[error("audit log: no row {0}")]
    NoSuchRow(i64),
}

impl From<StoreError> for AuditError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Sqlite(e) => Self::Sqlite(e),
            other => Self::Store(other),
        }
    }
}

pub type Result<T, E = AuditError> = std::result::Result<T, E>;

/// Prune at most this often while recording.
const PRUNE_EVERY: Duration = Duration::from_secs(24 * 3600);

/// One row of the log, as `facegate events` prints it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditRow {
    pub id: i64,
    /// Unix seconds.
    pub time: f64,
    pub gate: String,
    pub track: u64,
    pub person: Option<String>,
    pub confidence: f32,
    pub liveness: f32,
    pub verdict: String,
    pub reason: Option<String>,
    pub actions: Vec<Action>,
    pub outcome: Option<String>,
}

/// The audit log.
pub struct Audit {
    store: Store,
    retention: Duration,
    last_prune: SystemTime,
}

impl Audit {
    /// Opens the log in the database at `path` (creating and migrating it), pruning rows older than
    /// `retention_days`.
    pub fn open(path: impl AsRef<Path>, retention_days: u32) -> Result<Self> {
        Self::new(Store::open(path)?, retention_days)
    }

    /// A throw-away log (tests, replays without a database).
    pub fn open_in_memory(retention_days: u32) -> Result<Self> {
        Self::new(Store::open_in_memory()?, retention_days)
    }

    /// The log in an open database (sharing its connection), pruning rows older than `retention_days`.
    pub fn new(store: Store, retention_days: u32) -> Result<Self> {
        let mut audit = Self {
            store,
            retention: Duration::from_secs(u64::from(retention_days) * 24 * 3600),
            last_prune: SystemTime::now(),
        };
        audit.prune(SystemTime::now())?;
        Ok(audit)
    }

    /// Writes one decision; returns its row id (for [`Audit::set_outcome`]).
    pub fn record(&mut self, d: &Decision) -> Result<i64> {
        let now = SystemTime::now();
        if now.duration_since(self.last_prune).unwrap_or_default() >= PRUNE_EVERY {
            self.prune(now)?;
        }
        let verdict = d.verdict.kind().as_str();
        let (reason, actions): (Option<&str>, &[Action]) = match &d.verdict {
            Verdict::Granted { actions } => (None, actions),
            Verdict::Denied { reason } => (Some(reason), &[]),
            _ => (None, &[]),
        };
        let conn = self.store.conn();
        conn.execute(
            "INSERT INTO audit (time, gate, track, person, confidence, liveness, verdict, reason, actions)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                unix(d.at),
                d.gate,
                d.track_id as i64,
                d.person,
                d.confidence as f64,
                d.liveness as f64,
                verdict,
                reason,
                serde_json::to_string(actions)?
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Records what happened when the decision's actions were carried out.
    pub fn set_outcome(&mut self, id: i64, outcome: &str) -> Result<()> {
        let n = self.store.conn().execute(
            "UPDATE audit SET outcome = ?1 WHERE id = ?2",
            params![outcome, id],
        )?;
        if n == 0 {
            return Err(AuditError::NoSuchRow(id));
        }
        Ok(())
    }

    /// Deletes rows older than the retention at `now`; returns how many.
    pub fn prune(&mut self, now: SystemTime) -> Result<usize> {
        self.last_prune = now;
        let cutoff = unix(now) - self.retention.as_secs_f64();
        Ok(self
            .store
            .conn()
            .execute("DELETE FROM audit WHERE time < ?1", [cutoff])?)
    }

    /// The newest `limit` rows, newest first.
    pub fn recent(&self, limit: usize) -> Result<Vec<AuditRow>> {
        let conn = self.store.conn();
        let mut stmt = conn.prepare(
            "SELECT id, time, gate, track, person, confidence, liveness, verdict, reason, actions, outcome
             FROM audit ORDER BY time DESC, id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit.min(i64::MAX as usize) as i64], |r| {
            let actions: String = r.get(9)?;
            Ok(AuditRow {
                id: r.get(0)?,
                time: r.get(1)?,
                gate: r.get(2)?,
                track: r.get::<_, i64>(3)? as u64,
                person: r.get(4)?,
                confidence: r.get::<_, f64>(5)? as f32,
                liveness: r.get::<_, f64>(6)? as f32,
                verdict: r.get(7)?,
                reason: r.get(8)?,
                // A row written by a newer facegate with unknown actions still lists, without them.
                actions: serde_json::from_str(&actions).unwrap_or_default(),
                outcome: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
