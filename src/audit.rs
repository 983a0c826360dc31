//! The audit log: every access decision, in the same SQLite file as the gallery, in its own table.
//!
//! It has its own connection (WAL, so it never blocks the gallery's readers) and creates its table with
//! `CREATE TABLE IF NOT EXISTS`, leaving the gallery's schema versioning alone. A row is written when the
//! decision is taken ([`Audit::record`]); the outcome of its actions is filled in once they are carried out
//! ([`Audit::set_outcome`]; `facegate run` writes the JSON list of the ESPHome drivers' `ActionOutcome`s, one
//! per action, e.g. `[{"gate":"Front","action":"unlock","lock":"door_lock","result":"confirmed",...}]`;
//! `facegate demo` a sentence). Rows older than the retention are pruned when the log is opened and at most
//! daily afterwards, as rows are recorded.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};
use serde::Serialize;

use crate::decide::{Action, Decision, Verdict};

/// Why the audit log failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("audit log: cannot encode the decision: {0}")]
    Json(#[from] serde_json::Error),
    #[error("audit log: no row {0}")]
    NoSuchRow(i64),
}

pub type Result<T, E = AuditError> = std::result::Result<T, E>;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
    id         INTEGER PRIMARY KEY,
    time       REAL NOT NULL,          -- unix seconds of the frame the decision was taken on
    gate       TEXT NOT NULL,
    track      INTEGER NOT NULL,
    person     TEXT,                   -- NULL: unknown
    confidence REAL NOT NULL,
    liveness   REAL NOT NULL,
    verdict    TEXT NOT NULL,          -- granted / notify_only / denied / unknown / spoof
    reason     TEXT,                   -- why denied
    actions    TEXT NOT NULL,          -- JSON list of actions (granted)
    outcome    TEXT                    -- filled in by the driver that carried the actions out
);
CREATE INDEX IF NOT EXISTS audit_time ON audit(time);
";

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
    conn: Connection,
    retention: Duration,
    last_prune: SystemTime,
}

impl Audit {
    /// Opens the log in the database at `path` (creating the table), pruning rows older than
    /// `retention_days`.
    pub fn open(path: impl AsRef<Path>, retention_days: u32) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Self::setup(conn, retention_days)
    }

    /// A throw-away log (tests, replays without a database).
    pub fn open_in_memory(retention_days: u32) -> Result<Self> {
        Self::setup(Connection::open_in_memory()?, retention_days)
    }

    fn setup(conn: Connection, retention_days: u32) -> Result<Self> {
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let mut audit = Self {
            conn,
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
        self.conn.execute(
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
        Ok(self.conn.last_insert_rowid())
    }

    /// Records what happened when the decision's actions were carried out.
    pub fn set_outcome(&mut self, id: i64, outcome: &str) -> Result<()> {
        let n = self.conn.execute(
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
            .conn
            .execute("DELETE FROM audit WHERE time < ?1", [cutoff])?)
    }

    /// The newest `limit` rows, newest first.
    pub fn recent(&self, limit: usize) -> Result<Vec<AuditRow>> {
        let mut stmt = self.conn.prepare(
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
