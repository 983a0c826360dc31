//! The gallery's SQLite tables and the transactions on them.
//!
//! WAL mode so the service can read while the CLI enrolls; foreign keys on so removing a person removes their
//! embeddings; the schema version lives in `PRAGMA user_version` and is migrated forward on open. Every write
//! is one transaction: a crash or an error half-way leaves the database as it was.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::matcher::{Matcher, PersonModel};
use super::quality::Quality;
use super::{GalleryError, Result};
use crate::vision::{Embedding, EMBEDDING_DIM};

/// Access level a newly enrolled person gets.
pub const DEFAULT_ACCESS_LEVEL: &str = "resident";

/// Schema version this code writes.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &str = "
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
";

/// One image's worth of enrollment data.
#[derive(Clone, Debug)]
pub struct EnrollSample {
    pub embedding: Embedding,
    pub quality: Quality,
    /// Where it came from (a file name), for people listings and audits.
    pub source: String,
}

/// A person as listed by `facegate people list`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PersonInfo {
    pub name: String,
    pub access_level: String,
    /// Number of enrolled embeddings.
    pub embeddings: usize,
    /// Unix seconds.
    pub created: i64,
}

/// The gallery database.
pub struct Gallery {
    conn: Connection,
}

impl Gallery {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL is durable across application crashes in WAL mode; only a power cut can lose the last commit.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Self::setup(conn)
    }

    /// A throw-away database (tests).
    pub fn open_in_memory() -> Result<Self> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Self> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(GalleryError::SchemaTooNew {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < 1 {
            let tx = conn.transaction()?;
            tx.execute_batch(SCHEMA_V1)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
        }
        Ok(Self { conn })
    }

    /// Add `samples` to the person `name`, creating the person (with `access_level`, or the default) if new.
    /// All or nothing: on any error no row is written. Returns how many embeddings the person has now.
    pub fn enroll(
        &mut self,
        name: &str,
        access_level: Option<&str>,
        samples: &[EnrollSample],
    ) -> Result<usize> {
        let name = check_name(name)?;
        if samples.is_empty() {
            return Err(GalleryError::NothingToEnroll(name.to_string()));
        }
        let tx = self.conn.transaction()?;
        let person = person_id(&tx, name)?;
        let person = match person {
            Some(id) => {
                if let Some(level) = access_level {
                    tx.execute(
                        "UPDATE people SET access_level = ?1 WHERE id = ?2",
                        params![level, id],
                    )?;
                }
                id
            }
            None => {
                tx.execute(
                    "INSERT INTO people (name, access_level, created) VALUES (?1, ?2, ?3)",
                    params![name, access_level.unwrap_or(DEFAULT_ACCESS_LEVEL), now()],
                )?;
                tx.last_insert_rowid()
            }
        };
        {
            let mut insert = tx.prepare(
                "INSERT INTO embeddings (person, vector, quality, face_size, blur, pose, source, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for s in samples {
                // Checked as they are written: a bad one rolls back the ones before it too.
                let blob = embedding_to_blob(&s.embedding)?;
                let q = &s.quality;
                insert.execute(params![
                    person,
                    blob,
                    q.score,
                    q.face_size,
                    q.blur,
                    q.pose,
                    s.source,
                    now()
                ])?;
            }
        }
        let count: i64 = tx.query_row(
            "SELECT COUNT(*) FROM embeddings WHERE person = ?1",
            [person],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(count as usize)
    }

    /// Everyone enrolled, by name.
    pub fn people(&self) -> Result<Vec<PersonInfo>> {
        let mut stmt = self.conn.prepare(
            "SELECT p.name, p.access_level, p.created, COUNT(e.id)
             FROM people p LEFT JOIN embeddings e ON e.person = p.id
             GROUP BY p.id ORDER BY p.name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(PersonInfo {
                name: r.get(0)?,
                access_level: r.get(1)?,
                created: r.get(2)?,
                embeddings: r.get::<_, i64>(3)? as usize,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Remove a person and (through the foreign key) all their embeddings.
    pub fn remove(&mut self, name: &str) -> Result<()> {
        let n = self
            .conn
            .execute("DELETE FROM people WHERE name = ?1", [name])?;
        if n == 0 {
            return Err(GalleryError::NoSuchPerson(name.to_string()));
        }
        Ok(())
    }

    /// Change a person's access level (Home Assistant's `select` entity writes here).
    pub fn set_access_level(&mut self, name: &str, level: &str) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE people SET access_level = ?1 WHERE name = ?2",
            [level, name],
        )?;
        if n == 0 {
            return Err(GalleryError::NoSuchPerson(name.to_string()));
        }
        Ok(())
    }

    /// Total number of stored embeddings (all people).
    pub fn embedding_count(&self) -> Result<usize> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM embeddings", [], |r| r.get(0))?;
        Ok(n as usize)
    }

    /// Read every person with their embeddings into an in-memory [`Matcher`].
    pub fn load_matcher(&self, params: super::MatchParams) -> Result<Matcher> {
        let mut stmt = self.conn.prepare(
            "SELECT p.name, p.access_level, e.vector
             FROM people p JOIN embeddings e ON e.person = p.id
             ORDER BY p.name, e.id",
        )?;
        let mut rows = stmt.query([])?;
        let mut people: Vec<(String, String, Vec<Embedding>)> = Vec::new();
        while let Some(r) = rows.next()? {
            let name: String = r.get(0)?;
            let level: String = r.get(1)?;
            let blob: Vec<u8> = r.get(2)?;
            let emb = blob_to_embedding(&blob)?;
            match people.last_mut() {
                Some((n, _, v)) if *n == name => v.push(emb),
                _ => people.push((name, level, vec![emb])),
            }
        }
        let models = people
            .into_iter()
            .map(|(name, level, embs)| PersonModel::new(name, level, embs))
            .collect();
        Ok(Matcher::new(models, params))
    }
}

fn person_id(tx: &Transaction<'_>, name: &str) -> Result<Option<i64>> {
    Ok(tx
        .query_row("SELECT id FROM people WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?)
}

fn check_name(name: &str) -> Result<&str> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 100 || trimmed.chars().any(char::is_control)
    {
        return Err(GalleryError::BadName(name.to_string()));
    }
    Ok(trimmed)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// 128 finite f32 as little-endian bytes.
pub fn embedding_to_blob(e: &Embedding) -> Result<Vec<u8>> {
    if e.0.len() != EMBEDDING_DIM {
        return Err(GalleryError::BadEmbedding(format!(
            "{} values, expected {EMBEDDING_DIM}",
            e.0.len()
        )));
    }
    if e.0.iter().any(|v| !v.is_finite()) {
        return Err(GalleryError::BadEmbedding("not finite".to_string()));
    }
    Ok(e.0.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// The inverse of [`embedding_to_blob`].
pub fn blob_to_embedding(b: &[u8]) -> Result<Embedding> {
    if b.len() != EMBEDDING_DIM * 4 {
        return Err(GalleryError::BadEmbedding(format!(
            "stored blob has {} bytes, expected {}",
            b.len(),
            EMBEDDING_DIM * 4
        )));
    }
    Ok(Embedding(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    ))
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
