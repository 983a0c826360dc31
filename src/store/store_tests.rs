//! The store: one connection shared by every view, and removed data gone from the file's bytes.

use super::*;
use crate::audit::Audit;
use crate::gallery::{EnrollSample, Gallery, Quality};
use crate::vision::{Embedding, EMBEDDING_DIM};

/// An embedding whose bytes are easy to find in a file: every value distinct and unlikely elsewhere.
fn marked(seed: f32) -> Embedding {
    Embedding((0..EMBEDDING_DIM).map(|i| seed + i as f32 * 1e-3).collect())
}

fn sample(e: &Embedding) -> EnrollSample {
    EnrollSample {
        embedding: e.clone(),
        quality: Quality {
            score: 0.9,
            face_size: 120.0,
            blur: 300.0,
            pose: 0.1,
        },
        source: "test".into(),
    }
}

/// The raw bytes of the database file and of its write-ahead log (if any).
fn raw_bytes(db: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(db).unwrap();
    let wal = db.with_extension("db-wal");
    if let Ok(w) = std::fs::read(wal) {
        bytes.extend(w);
    }
    bytes
}

/// Whether any 32-byte run of the embedding's stored form appears in `bytes`.
fn contains_any_part(bytes: &[u8], e: &Embedding) -> bool {
    let blob = crate::gallery::store::embedding_to_blob(e).unwrap();
    blob.chunks(32)
        .any(|part| bytes.windows(part.len()).any(|w| w == part))
}

#[test]
fn a_removed_person_embedding_is_not_left_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("facegate.db");
    let (ada, bob) = (marked(0.25), marked(-0.75));
    let mut g = Gallery::open(&db).unwrap();
    g.enroll("Ada", None, &[sample(&ada)]).unwrap();
    g.enroll("Bob", None, &[sample(&bob)]).unwrap();
    g.store().checkpoint().unwrap();
    let before = raw_bytes(&db);
    assert!(
        contains_any_part(&before, &ada),
        "precondition: Ada's embedding is in the file"
    );
    g.remove("Ada").unwrap();
    // While the database is still open (the service's case), and after it is closed.
    let after = raw_bytes(&db);
    assert!(
        !contains_any_part(&after, &ada),
        "Ada's embedding is still readable in the file"
    );
    assert!(contains_any_part(&after, &bob), "Bob's embedding must stay");
    drop(g);
    assert!(!contains_any_part(&raw_bytes(&db), &ada));
    let g = Gallery::open(&db).unwrap();
    assert_eq!(g.people().unwrap().len(), 1);
}

#[test]
fn every_view_shares_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("facegate.db");
    let store = Store::open(&db).unwrap();
    let mut gallery = Gallery::new(store.clone());
    let audit = Audit::new(store.clone(), 30).unwrap();
    let settings = crate::service::SettingsStore::new(store.clone());
    gallery
        .enroll("Ada", None, &[sample(&marked(0.5))])
        .unwrap();
    settings
        .save(
            "front_door",
            &crate::settings::LiveSettings::from_config(&Default::default()),
        )
        .unwrap();
    assert_eq!(audit.recent(10).unwrap(), vec![]);
    // One connection: `Store` holds it behind one Arc, now referenced by the store and the three views.
    assert_eq!(Arc::strong_count(&store.conn), 4);
    // What one view wrote, a fresh connection (another process) sees.
    let other = Store::open(&db).unwrap();
    assert_eq!(Gallery::new(other.clone()).people().unwrap().len(), 1);
    assert!(crate::service::SettingsStore::new(other)
        .load("front_door")
        .is_some());
}

#[test]
fn pragmas_are_set_on_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    for store in [
        Store::open(dir.path().join("f.db")).unwrap(),
        Store::open_in_memory().unwrap(),
    ] {
        let conn = store.conn();
        let get = |p: &str| -> i64 { conn.pragma_query_value(None, p, |r| r.get(0)).unwrap() };
        assert_eq!(get("secure_delete"), 1);
        assert_eq!(get("foreign_keys"), 1);
        assert_eq!(get("user_version"), migrations::LATEST);
    }
    let file = Store::open(dir.path().join("f.db")).unwrap();
    let mode: String = file
        .conn()
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}
