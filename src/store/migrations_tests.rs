//! Migrations: a database written by the facegate before the one store (gallery at schema version 1, the audit
//! and live-settings tables created beside it, unversioned) opens with nothing lost; every step is recorded in
//! the version; a newer database is refused; data deleted before secure_delete is scrubbed from the file.
//!
//! The legacy database is made here with the exact statements that facegate ran (copied from
//! `src/gallery/store.rs`, `src/audit.rs` and `src/service/settings_store.rs` as of commit d3a55b7), not with
//! today's code, so a change to today's migrations cannot hide a break.

use std::path::Path;

use rusqlite::{params, Connection};

use super::*;
use crate::audit::Audit;
use crate::gallery::{Gallery, MatchParams};
use crate::store::Store;

/// `gallery/store.rs` SCHEMA_V1, run in one transaction with `PRAGMA user_version = 1`.
const LEGACY_GALLERY_V1: &str = "
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

/// `audit.rs` SCHEMA, run on its own connection on every open.
const LEGACY_AUDIT: &str = "
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

/// `service/settings_store.rs`, run on its own connection on every open.
const LEGACY_SETTINGS: &str = "CREATE TABLE IF NOT EXISTS ha_live_settings (
                 device   TEXT PRIMARY KEY,  -- camera slug
                 settings TEXT NOT NULL,     -- LiveSettings as JSON
                 updated  INTEGER NOT NULL   -- unix seconds
             );";

fn blob(seed: f32) -> Vec<u8> {
    (0..128)
        .flat_map(|i| (seed + i as f32 * 1e-3).to_le_bytes())
        .collect()
}

/// A database as `facegate run` wrote it before the one store: WAL, gallery v1 with two people (one had
/// removed themselves, without secure_delete), an audit log and persisted live settings.
fn legacy_database(path: &Path) -> (i64, i64) {
    let mut conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    conn.pragma_update(None, "secure_delete", "OFF").unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute_batch(LEGACY_GALLERY_V1).unwrap();
    tx.pragma_update(None, "user_version", 1).unwrap();
    tx.commit().unwrap();
    conn.execute_batch(LEGACY_SETTINGS).unwrap();
    conn.execute_batch(LEGACY_AUDIT).unwrap();
    let person = |name: &str, level: &str| {
        conn.execute(
            "INSERT INTO people (name, access_level, created) VALUES (?1, ?2, ?3)",
            params![name, level, 1_700_000_000],
        )
        .unwrap();
        conn.last_insert_rowid()
    };
    let (ann, bob, eve) = (
        person("Ann", "resident"),
        person("Bob", "guest"),
        person("Eve", "resident"),
    );
    let embed = |who: i64, seed: f32, source: &str| {
        conn.execute(
            "INSERT INTO embeddings (person, vector, quality, face_size, blur, pose, source, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![who, blob(seed), 0.8, 120.0, 250.0, 0.1, source, 1_700_000_001],
        )
        .unwrap();
    };
    embed(ann, 0.1, "ann1.jpg");
    embed(ann, 0.2, "ann2.jpg");
    embed(bob, -0.5, "bob.jpg");
    embed(eve, 0.9, "eve.jpg");
    // Eve asked to be removed, before secure_delete existed.
    conn.execute("DELETE FROM people WHERE name = 'Eve'", [])
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    conn.execute(
        "INSERT INTO audit (time, gate, track, person, confidence, liveness, verdict, reason, actions)
         VALUES (?1, 'Front door', 3, 'Ann', 0.91, 0.88, 'granted', NULL, ?2)",
        params![now - 60.0, r#"[{"action":"unlock","lock":"door_lock"}]"#],
    )
    .unwrap();
    let granted = conn.last_insert_rowid();
    conn.execute(
        "UPDATE audit SET outcome = ?1 WHERE id = ?2",
        params![
            r#"[{"gate":"Front door","action":"unlock","result":"confirmed"}]"#,
            granted
        ],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO audit (time, gate, track, person, confidence, liveness, verdict, reason, actions)
         VALUES (?1, 'Front door', 4, NULL, 0.0, 0.12, 'spoof', NULL, '[]')",
        params![now - 30.0],
    )
    .unwrap();
    let spoof = conn.last_insert_rowid();
    conn.execute(
        "INSERT INTO ha_live_settings (device, settings, updated) VALUES (?1, ?2, ?3)",
        params![
            "front_door",
            r#"{"recognition_enabled":false,"require_blink":true,"match_threshold":0.45,"antispoof_threshold":0.6}"#,
            1_700_000_002
        ],
    )
    .unwrap();
    // Closed as a crashed process leaves it: the last commits still in the write-ahead log.
    std::mem::forget(conn);
    (granted, spoof)
}

fn contains(bytes: &[u8], part: &[u8]) -> bool {
    bytes.windows(part.len()).any(|w| w == part)
}

fn file_bytes(path: &Path) -> Vec<u8> {
    let mut b = std::fs::read(path).unwrap();
    if let Ok(w) = std::fs::read(path.with_extension("db-wal")) {
        b.extend(w);
    }
    b
}

#[test]
fn a_database_from_before_the_one_store_migrates_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("facegate.db");
    let (granted, spoof) = legacy_database(&db);
    assert!(
        contains(&file_bytes(&db), &blob(0.9)[..64]),
        "precondition: the removed person's embedding is readable in the legacy file"
    );

    let store = Store::open(&db).unwrap();
    assert_eq!(store.schema_version().unwrap(), LATEST);
    // The people and every embedding, exactly.
    let gallery = Gallery::new(store.clone());
    let people: Vec<_> = gallery
        .people()
        .unwrap()
        .into_iter()
        .map(|p| (p.name, p.access_level, p.embeddings, p.created))
        .collect();
    assert_eq!(
        people,
        [
            ("Ann".to_string(), "resident".to_string(), 2, 1_700_000_000),
            ("Bob".to_string(), "guest".to_string(), 1, 1_700_000_000)
        ]
    );
    let matcher = gallery.load_matcher(MatchParams::default()).unwrap();
    let bob = crate::gallery::store::blob_to_embedding(&blob(-0.5)).unwrap();
    assert_eq!(matcher.identify(&bob).person.as_deref(), Some("Bob"));
    // The audit rows with their outcome.
    let audit = Audit::new(store.clone(), 30).unwrap();
    let rows = audit.recent(10).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        [spoof, granted]
    );
    assert_eq!(rows[1].person.as_deref(), Some("Ann"));
    assert_eq!(rows[1].verdict, "granted");
    assert_eq!(
        rows[1].actions,
        [crate::decide::Action::Unlock {
            lock: "door_lock".into()
        }]
    );
    assert_eq!(
        rows[1].outcome.as_deref(),
        Some(r#"[{"gate":"Front door","action":"unlock","result":"confirmed"}]"#)
    );
    assert_eq!(
        (rows[0].verdict.as_str(), rows[0].person.as_deref()),
        ("spoof", None)
    );
    // The live settings.
    let settings = crate::service::SettingsStore::new(store.clone())
        .load("front_door")
        .unwrap();
    assert!(!settings.recognition_enabled && settings.require_blink);
    assert_eq!(settings.match_threshold, 0.45);
    // The person removed before secure_delete is gone from the bytes: the migration rebuilt the file.
    assert!(!contains(&file_bytes(&db), &blob(0.9)[..64]));
    assert!(contains(&file_bytes(&db), &blob(-0.5)[..64]));
    drop((gallery, audit, store));
    // Opening again changes nothing.
    let again = Store::open(&db).unwrap();
    assert_eq!(Gallery::new(again).people().unwrap().len(), 2);
}

#[test]
fn a_database_with_only_the_unversioned_audit_table_migrates() {
    // `facegate events --db new.db` on a fresh file created just the audit table, at version 0.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(LEGACY_AUDIT).unwrap();
    conn.execute(
        "INSERT INTO audit (time, gate, track, person, confidence, liveness, verdict, reason, actions)
         VALUES (?1, 'Gate', 1, NULL, 0.0, 0.9, 'unknown', NULL, '[]')",
        [std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()],
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&db).unwrap();
    assert_eq!(store.schema_version().unwrap(), LATEST);
    assert_eq!(
        Audit::new(store.clone(), 30)
            .unwrap()
            .recent(5)
            .unwrap()
            .len(),
        1
    );
    assert!(Gallery::new(store).people().unwrap().is_empty());
}

#[test]
fn each_step_runs_once_and_versions_are_the_list_positions() {
    for (i, m) in MIGRATIONS.iter().enumerate() {
        assert_eq!(m.version, i as i64 + 1, "{}", m.about);
    }
    let mut conn = Connection::open_in_memory().unwrap();
    let first = migrate(&mut conn).unwrap();
    assert_eq!((first.from, first.to, first.scrubbed), (0, LATEST, false));
    let second = migrate(&mut conn).unwrap();
    assert_eq!(
        (second.from, second.to, second.scrubbed),
        (LATEST, LATEST, false)
    );
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        tables,
        ["audit", "embeddings", "ha_live_settings", "people"]
    );
}

#[test]
fn a_newer_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE future (x INTEGER); PRAGMA user_version = 99;")
        .unwrap();
    drop(conn);
    let err = Store::open(&db).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "database schema version 99 is newer than this facegate understands ({LATEST}): \
             run the newer facegate, or restore a backup made before the upgrade"
        )
    );
    let conn = Connection::open(&db).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1);
}
