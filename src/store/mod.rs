//! The one owner of facegate's SQLite database: it opens the connection (WAL, foreign keys, secure delete)
//! and brings the schema up to date through one ordered list of migrations ([`migrations`]); nothing else in
//! facegate opens a connection or creates a table.
//!
//! The tables are read and written through views that sit beside what they store and share one [`Store`]:
//! [`crate::gallery::Gallery`] (people and their embeddings), [`crate::audit::Audit`] (the decisions) and
//! [`crate::service::SettingsStore`] (each camera's live settings). `facegate run` opens one `Store` and hands
//! clones of it to all three, so the service writes the file through a single connection; the CLI's commands
//! open their own (WAL lets them read and write beside a running service).
//!
//! `PRAGMA secure_delete` is on: a removed person's embedding is overwritten with zeros in the file, not left
//! in a free page, and [`Store::checkpoint`] empties the write-ahead log after a removal so no old copy of the
//! page stays there either.

pub mod migrations;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

/// Why the database could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer facegate.
    #[error(
        "database schema version {found} is newer than this facegate understands ({supported}): \
         run the newer facegate, or restore a backup made before the upgrade"
    )]
    SchemaTooNew { found: i64, supported: i64 },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How long a statement waits for another process (the CLI beside a running service) to finish writing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A cloneable handle on the one connection to the database; every clone uses the same connection.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = self.conn().path().map(str::to_string);
        f.debug_struct("Store").field("path", &path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it to the current schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL is durable across application crashes in WAL mode; only a power cut can lose the last commit.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Self::setup(conn)
    }

    /// A throw-away database (tests, replays without a database file).
    pub fn open_in_memory() -> Result<Self> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Self> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        migrations::migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// The connection, locked for the caller (a view runs its statements or transaction with it held).
    pub fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The schema version the database is at (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn()
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Copies the write-ahead log into the database file and empties it, so a page a removal overwrote is not
    /// still readable in its older version in the log. Another process reading at that moment can keep the
    /// log from being emptied: then it is emptied at a later checkpoint, and this says so in the log.
    pub fn checkpoint(&self) -> Result<()> {
        let conn = self.conn();
        let (busy, log, copied): (i64, i64, i64) =
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        if busy != 0 {
            tracing::warn!(
                log,
                copied,
                "database checkpoint incomplete (another process is reading); the log is emptied later"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
