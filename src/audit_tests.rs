use super::*;
use crate::gallery::{Gallery, MatchParams};

fn decision(verdict: Verdict, age: Duration) -> Decision {
    Decision {
        gate: "front".into(),
        track_id: 7,
        person: Some("ann".into()),
        confidence: 0.9,
        liveness: 0.8,
        verdict,
        why: "test".into(),
        at: SystemTime::now() - age,
    }
}

#[test]
fn records_outcomes_and_lists_newest_first() {
    let mut a = Audit::open_in_memory(30).unwrap();
    let granted = Verdict::Granted {
        actions: vec![Action::Unlock {
            lock: "lock".into(),
        }],
    };
    let id1 = a
        .record(&decision(granted, Duration::from_secs(60)))
        .unwrap();
    let denied = Verdict::Denied {
        reason: "blocked".into(),
    };
    let id2 = a.record(&decision(denied, Duration::ZERO)).unwrap();
    a.set_outcome(id1, "unlocked").unwrap();
    assert!(matches!(
        a.set_outcome(999, "x"),
        Err(AuditError::NoSuchRow(999))
    ));
    let rows = a.recent(10).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![id2, id1]
    );
    assert_eq!(rows[0].verdict, "denied");
    assert_eq!(rows[0].reason.as_deref(), Some("blocked"));
    assert_eq!(rows[0].outcome, None);
    assert_eq!(rows[1].verdict, "granted");
    assert_eq!(
        rows[1].actions,
        vec![Action::Unlock {
            lock: "lock".into()
        }]
    );
    assert_eq!(rows[1].outcome.as_deref(), Some("unlocked"));
    assert_eq!(rows[1].person.as_deref(), Some("ann"));
    assert_eq!(a.recent(1).unwrap().len(), 1);
}

#[test]
fn shares_the_gallery_file_and_prunes_old_rows_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("facegate.db");
    let gallery = Gallery::open(&db).unwrap();
    {
        let mut a = Audit::open(&db, 30).unwrap();
        a.record(&decision(Verdict::Unknown, Duration::from_secs(31 * 86400)))
            .unwrap();
        a.record(&decision(Verdict::Spoof, Duration::from_secs(29 * 86400)))
            .unwrap();
        assert_eq!(a.recent(10).unwrap().len(), 2);
    }
    let a = Audit::open(&db, 30).unwrap();
    let rows = a.recent(10).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].verdict, "spoof");
    // The gallery's tables and the schema version are untouched and usable alongside.
    let version: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, crate::store::migrations::LATEST);
    assert_eq!(
        gallery
            .load_matcher(MatchParams::default())
            .unwrap()
            .people()
            .len(),
        0
    );
    drop(gallery);
    Gallery::open(&db).unwrap();
}
