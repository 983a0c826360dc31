//! The gallery's view of the database ([`crate::store`]): people and their embeddings, and the transactions
//! on them.
//!
//! The tables are created and migrated by [`crate::store::migrations`]; the store's connection has foreign keys
//! on (removing a person removes their embeddings) and `secure_delete` (a removed embedding is overwritten, and
//! [`Gallery::remove`] empties the write-ahead log after it). Every write is one transaction: a crash or an
//! error half-way leaves the database as it was.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, OptionalExtension, Transaction};

use super::matcher::{Matcher, PersonModel};
use super::quality::Quality;
use super::{GalleryError, Result};
use crate::store::Store;
use crate::vision::{Embedding, EMBEDDING_DIM};

/// Access level a newly enrolled person gets.
pub const DEFAULT_ACCESS_LEVEL: &str = "resident";

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

/// The people and embeddings tables.
pub struct Gallery {
    store: Store,
}

impl Gallery {
    /// The gallery in an open database (sharing its connection).
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::new(Store::open(path)?))
    }

    /// A throw-away database (tests).
    pub fn open_in_memory() -> Result<Self> {
        Ok(Self::new(Store::open_in_memory()?))
    }

    /// The database this gallery is in.
    pub fn store(&self) -> &Store {
        &self.store
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
        let mut conn = self.store.conn();
        let tx = conn.transaction()?;
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
        let conn = self.store.conn();
        let mut stmt = conn.prepare(
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

    /// Remove a person and (through the foreign key) all their embeddings. Their rows are overwritten in the
    /// file (`secure_delete`) and the write-ahead log is emptied, so the embeddings cannot be read back from
    /// the database's bytes.
    pub fn remove(&mut self, name: &str) -> Result<()> {
        let n = self
            .store
            .conn()
            .execute("DELETE FROM people WHERE name = ?1", [name])?;
        if n == 0 {
            return Err(GalleryError::NoSuchPerson(name.to_string()));
        }
        self.store.checkpoint()?;
        Ok(())
    }

    /// Change a person's access level (Home Assistant's `select` entity writes here).
    pub fn set_access_level(&mut self, name: &str, level: &str) -> Result<()> {
        let n = self.store.conn().execute(
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
            .store
            .conn()
            .query_row("SELECT COUNT(*) FROM embeddings", [], |r| r.get(0))?;
        Ok(n as usize)
    }

    /// Read every person with their embeddings into an in-memory [`Matcher`].
    pub fn load_matcher(&self, params: super::MatchParams) -> Result<Matcher> {
        let conn = self.store.conn();
        let mut stmt = conn.prepare(
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
