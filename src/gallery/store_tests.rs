//! The SQLite store: round trips, all-or-nothing enrollment, cascading removal, schema versioning.

use super::*;
use crate::gallery::MatchParams;

fn sample(axis: usize, tag: &str) -> EnrollSample {
    let mut v = vec![0f32; EMBEDDING_DIM];
    v[axis] = 1.0;
    EnrollSample {
        embedding: Embedding(v),
        quality: Quality {
            score: 0.9,
            face_size: 120.0,
            blur: 300.0,
            pose: 0.1,
        },
        source: tag.to_string(),
    }
}

fn bad_sample() -> EnrollSample {
    let mut s = sample(0, "bad.jpg");
    s.embedding.0.pop();
    s
}

#[test]
fn enroll_list_match_roundtrip() {
    let mut g = Gallery::open_in_memory().unwrap();
    assert_eq!(
        g.enroll("Ada", None, &[sample(0, "a1"), sample(0, "a2")])
            .unwrap(),
        2
    );
    assert_eq!(
        g.enroll("Bob", Some("guest"), &[sample(1, "b1")]).unwrap(),
        1
    );
    // Enrolling more for an existing person adds to them.
    assert_eq!(g.enroll("Ada", None, &[sample(0, "a3")]).unwrap(), 3);
    let people = g.people().unwrap();
    let summary: Vec<_> = people
        .iter()
        .map(|p| (p.name.as_str(), p.access_level.as_str(), p.embeddings))
        .collect();
    assert_eq!(summary, [("Ada", "resident", 3), ("Bob", "guest", 1)]);
    let m = g.load_matcher(MatchParams::default()).unwrap();
    assert_eq!(
        m.identify(&sample(1, "").embedding).person.as_deref(),
        Some("Bob")
    );
    assert_eq!(m.access_level("Bob"), Some("guest"));
}

#[test]
fn failing_enrollment_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let mut g = Gallery::open(&path).unwrap();
    g.enroll("Ada", None, &[sample(0, "a1")]).unwrap();
    // A new person whose third sample is bad: neither the person nor the first two samples may remain.
    let err = g
        .enroll(
            "Eve",
            None,
            &[sample(2, "e1"), sample(2, "e2"), bad_sample()],
        )
        .unwrap_err();
    assert!(matches!(err, GalleryError::BadEmbedding(_)), "{err}");
    // An existing person: their level is not changed and no sample is added.
    let mut nan = sample(0, "nan");
    nan.embedding.0[5] = f32::NAN;
    assert!(g
        .enroll("Ada", Some("blocked"), &[sample(0, "a2"), nan])
        .is_err());
    drop(g);
    // Checked through a fresh connection, as another process would see it.
    let g = Gallery::open(&path).unwrap();
    let people = g.people().unwrap();
    assert_eq!(people.len(), 1);
    assert_eq!(
        (people[0].name.as_str(), people[0].access_level.as_str()),
        ("Ada", "resident")
    );
    assert_eq!(g.embedding_count().unwrap(), 1);
}

#[test]
fn bad_names_and_empty_enrollments_are_refused() {
    let mut g = Gallery::open_in_memory().unwrap();
    assert!(matches!(
        g.enroll("  ", None, &[sample(0, "")]),
        Err(GalleryError::BadName(_))
    ));
    assert!(matches!(
        g.enroll("Ada", None, &[]),
        Err(GalleryError::NothingToEnroll(_))
    ));
    assert!(g.people().unwrap().is_empty());
}

#[test]
fn remove_deletes_embeddings_too() {
    let mut g = Gallery::open_in_memory().unwrap();
    g.enroll("Ada", None, &[sample(0, "a1"), sample(0, "a2")])
        .unwrap();
    g.enroll("Bob", None, &[sample(1, "b1")]).unwrap();
    g.remove("Ada").unwrap();
    assert_eq!(g.embedding_count().unwrap(), 1);
    assert!(matches!(
        g.remove("Ada"),
        Err(GalleryError::NoSuchPerson(_))
    ));
    g.set_access_level("Bob", "notify").unwrap();
    assert_eq!(g.people().unwrap()[0].access_level, "notify");
}

#[test]
fn schema_is_versioned_and_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let g = Gallery::open(&path).unwrap();
    let mode: String = g
        .store()
        .conn()
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(
        g.store().schema_version().unwrap(),
        crate::store::migrations::LATEST
    );
    g.store()
        .conn()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    drop(g);
    let err = Gallery::open(&path).err().unwrap();
    assert!(
        matches!(
            err,
            GalleryError::Store(crate::store::StoreError::SchemaTooNew { found: 99, .. })
        ),
        "{err}"
    );
}

#[test]
fn blobs_roundtrip_exactly() {
    let e = Embedding((0..EMBEDDING_DIM).map(|i| i as f32 * -0.0123).collect());
    assert_eq!(
        blob_to_embedding(&embedding_to_blob(&e).unwrap()).unwrap(),
        e
    );
    assert!(blob_to_embedding(&[0u8; 10]).is_err());
}
