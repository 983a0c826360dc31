//! The real `facegate` binary on real photos from `../shared/faces`: enroll, identify, list and remove people;
//! the exact `embed --json` schema; `models check`.

mod cli_util;
mod common;

use cli_util::*;
use serde_json::Value;

#[test]
fn enroll_identify_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gallery.db").display().to_string();
    enroll_person(&db);
    let listed = people(&db);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], PERSON);
    assert_eq!(listed[0]["access_level"], "resident");
    assert_eq!(listed[0]["embeddings"], 3);

    let (probe, other) = (id_photo(PERSON, 10), id_photo(IMPOSTOR, 1));
    let o = facegate(&["identify", "--db", &db, "--json", &probe, &other]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["image"], probe.as_str());
    let m = &lines[0]["faces"][0]["match"];
    assert_eq!(m["person"], PERSON, "{m}");
    assert!(m["distance"].as_f64().unwrap() <= 0.5, "{m}");
    let faces = lines[1]["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1);
    assert!(faces[0]["match"]["person"].is_null(), "{}", faces[0]);
    // identify --json: the embed schema without the embedding, plus the match.
    assert_eq!(
        keys(&faces[0]),
        ["antispoof", "box", "keypoints", "match", "score"]
    );
    assert_eq!(keys(&faces[0]["match"]), ["distance", "person"]);

    // The human-readable form says the same.
    let o = facegate(&["identify", "--db", &db, &probe, &other]);
    let text = stdout(&o);
    assert!(
        text.contains(&format!("{probe}: face 1"))
            && text.contains(&format!(": {PERSON} (distance")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{other}: face 1")) && text.contains("unknown (nearest"),
        "{text}"
    );

    let o = facegate(&["people", "remove", "--db", &db, PERSON]);
    assert!(o.status.success());
    assert!(people(&db).is_empty());
    let o = facegate(&["people", "remove", "--db", &db, PERSON]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no person named"));
    let o = facegate(&["identify", "--db", &db, "--json", &probe]);
    assert!(json_lines(&o)[0]["faces"][0]["match"]["person"].is_null());
}

#[test]
fn embed_json_schema_is_exact() {
    let img = id_photo(PERSON, 4);
    let o = facegate(&["embed", "--json", &img]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1);
    assert_eq!(keys(&lines[0]), ["faces", "image"]);
    assert_eq!(lines[0]["image"], img.as_str());
    let faces = lines[0]["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1);
    let f = &faces[0];
    assert_eq!(
        keys(f),
        ["antispoof", "box", "embedding", "keypoints", "score"]
    );
    let nums = |v: &Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let b = nums(&f["box"]);
    assert_eq!(b.len(), 4);
    // A 150 px tight crop: the face box lies within it and is at least a third of it.
    assert!(
        b[2] > 50.0 && b[3] > 50.0 && b[0] > -20.0 && b[0] + b[2] < 170.0,
        "{b:?}"
    );
    let kps = f["keypoints"].as_array().unwrap();
    assert_eq!(kps.len(), 5);
    assert!(kps.iter().all(|k| nums(k).len() == 2));
    let e = nums(&f["embedding"]);
    assert_eq!(e.len(), 128);
    let norm = e.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!(norm > 0.1 && norm < 10.0, "{norm}");
    let (s, a) = (
        f["score"].as_f64().unwrap(),
        f["antispoof"].as_f64().unwrap(),
    );
    assert!(
        (0.5..=1.0).contains(&s) && (0.0..=1.0).contains(&a),
        "{s} {a}"
    );
}

#[test]
fn models_check_lists_every_model() {
    let o = facegate(&["models", "check"]);
    let text = stdout(&o);
    assert!(o.status.success(), "{text}");
    let manifest = facegate::models::manifest().unwrap();
    for m in &manifest {
        assert!(text.contains(&format!("ok       {}", m.id)), "{text}");
    }
    assert!(
        text.contains(&format!("{0} of {0} models ok", manifest.len())),
        "{text}"
    );
    // An empty folder: every model is missing, with the way to get it.
    let empty = tempfile::tempdir().unwrap();
    let o = facegate(&[
        "models",
        "check",
        "--models",
        &empty.path().display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(
        text.contains("MISSING  yunet") && text.contains("scripts/fetch-models.sh"),
        "{text}"
    );
}
