//! The database's schema as one ordered list of migrations; `PRAGMA user_version` is the number of the last
//! one applied. Opening a database applies the missing ones, all in one transaction.
//!
//! To change the schema, append a migration with the next number (never edit one that has shipped: databases
//! in the field have already run it) and bump nothing else: [`LATEST`] follows the list.
//!
//! Databases written before this list existed (facegate up to the consolidation of issue 10) hold the people
//! and embeddings tables at version 1, and the audit and live-settings tables, created unversioned by their own
//! connections, at whatever version the file had. Migrations 2 and 3 therefore create their tables only if
//! missing, with exactly the columns those facegates wrote, so such a database migrates with nothing lost.
//! Those facegates also deleted without `secure_delete`: a person removed then can still be read in the
//! file's free space, so a database migrated from before [`SCRUBBED_SINCE`] is rebuilt once (`VACUUM`).

use rusqlite::{Connection, TransactionBehavior};

use super::{Result, StoreError};

/// One step of the schema.
pub struct Migration {
    /// The `user_version` the database is at once this step is applied.
    pub version: i64,
    /// What it adds, for the log.
    pub about: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order; `version` is the position in the list, from 1.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        about: "people and their embeddings",
        sql: "
CREATE TABLE people (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    access_level TEXT NOT NULL DEFAULT 'resident',
    created      INTEGER NOT NULL          -- unix seconds
);
CREATE TABLE embeddings (
    id        INTEGER PRIMARY KEY,
    person    INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    vector    BLOB NOT NULL,               -- 128 little-endian f32
    quality   REAL NOT NULL,               -- 0..1, see gallery::quality
    face_size REAL NOT NULL,               -- face box side in pixels
    blur      REAL NOT NULL,               -- variance of the Laplacian on the chip
    pose      REAL NOT NULL,               -- 0 frontal .. 1 profile
    source    TEXT,                        -- image the embedding came from
    created   INTEGER NOT NULL
);
CREATE INDEX embeddings_person ON embeddings(person);
",
    },
    Migration {
        version: 2,
        about: "audit log of decisions",
        // IF NOT EXISTS: older facegates created this table outside the version (see the module doc).
        sql: "
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
",
    },
    Migration {
        version: 3,
        about: "live settings of each camera (changed from Home Assistant)",
        // IF NOT EXISTS: older facegates created this table outside the version (see the module doc).
        sql: "
CREATE TABLE IF NOT EXISTS ha_live_settings (
    device   TEXT PRIMARY KEY,  -- camera slug
    settings TEXT NOT NULL,     -- LiveSettings as JSON
    updated  INTEGER NOT NULL   -- unix seconds
);
",
    },
];

/// The schema version this facegate writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// The first version written with `secure_delete` on; an existing database below it is rebuilt once.
pub const SCRUBBED_SINCE: i64 = 3;

/// What opening did to the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migrated {
    pub from: i64,
    pub to: i64,
    /// The file was rebuilt to drop what older facegates deleted without overwriting.
    pub scrubbed: bool,
}

/// Brings the database up to [`LATEST`]. The migrations run in one write transaction taken before the version
/// is read, so two processes opening an old database at once migrate it once; a failure leaves it as it was.
pub fn migrate(conn: &mut Connection) -> Result<Migrated> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let from: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if from > LATEST {
        return Err(StoreError::SchemaTooNew {
            found: from,
            supported: LATEST,
        });
    }
    let had_tables: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table')",
        [],
        |r| r.get(0),
    )?;
    for m in MIGRATIONS.iter().filter(|m| m.version > from) {
        tx.execute_batch(m.sql)?;
        tracing::debug!(version = m.version, about = m.about, "database migrated");
    }
    tx.pragma_update(None, "user_version", LATEST)?;
    tx.commit()?;
    // VACUUM cannot run inside a transaction; if it fails the data is migrated and intact, only not rebuilt
    // (and the next open, now at LATEST, does not retry): say so rather than refuse to start.
    let scrubbed = had_tables
        && from < SCRUBBED_SINCE
        && {
            // The rebuilt pages go through the write-ahead log: empty it too, so no old page stays there.
            let rebuilt = conn
                .execute_batch("VACUUM")
                .and_then(|()| conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())));
            match rebuilt {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "could not rebuild the migrated database; removed data may remain in its free space");
                    false
                }
            }
        };
    if from != LATEST {
        tracing::info!(from, to = LATEST, scrubbed, "database schema migrated");
    }
    Ok(Migrated {
        from,
        to: LATEST,
        scrubbed,
    })
}

#[cfg(test)]
#[path = "migrations_tests.rs"]
mod tests;
