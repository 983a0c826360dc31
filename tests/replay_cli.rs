//! `facegate replay --json` and `facegate events` as a user runs them: the real binary over a folder of frames,
//! decisions written to the audit log and listed back; bad options are refused naming the option.

mod cli_util;
mod common;

use cli_util::{facegate, id_photo, json_lines, stdout, PERSON};
use image::RgbImage;

/// A folder of 20 frames (10 fps): the person's photo held in front of the camera (drifting a pixel).
fn photo_frames(dir: &std::path::Path) {
    let photo = facegate::imageio::load_image(id_photo(PERSON, 4)).unwrap();
    for i in 0..20u32 {
        let mut canvas = RgbImage::from_pixel(640, 480, image::Rgb([118, 118, 118]));
        image::imageops::overlay(&mut canvas, &photo, 245 + i64::from(i % 3), 165);
        canvas.save(dir.join(format!("{i:05}.png"))).unwrap();
    }
}

#[test]
fn replay_prints_events_and_the_audit_log_lists_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    photo_frames(&frames);
    let db = dir.path().join("facegate.db");
    let db = db.to_str().unwrap();
    cli_util::enroll_person(db);

    let o = facegate(&[
        "replay",
        "--json",
        "--fps",
        "10",
        "--db",
        db,
        "--audit",
        "--gate",
        "front",
        frames.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = json_lines(&o);
    let kinds: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"track_start"));
    assert_eq!(kinds.last(), Some(&"track_end"));
    assert_eq!(lines.last().unwrap()["frames"], 20);
    let recognition = lines.iter().find(|l| l["event"] == "recognition").unwrap();
    assert_eq!(recognition["person"], PERSON);
    let liveness = lines.iter().find(|l| l["event"] == "liveness").unwrap();
    assert_eq!(liveness["live"], false, "a photo: {liveness}");
    let decisions: Vec<_> = lines.iter().filter(|l| l["event"] == "decision").collect();
    assert_eq!(decisions.len(), 1, "{lines:?}");
    let d = &decisions[0]["decision"];
    assert_eq!(d["verdict"]["kind"], "spoof");
    assert_eq!(d["person"], PERSON);
    assert_eq!(d["gate"], "front");
    // The decision says why, in the rule's words.
    let why = d["why"].as_str().unwrap_or_default();
    assert!(
        why.starts_with(&format!("{PERSON} (confidence ")) && why.contains(", not live: "),
        "{d}"
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("replay: 20 frames (0 bad, 0 dropped)"),
        "{stderr}"
    );

    let o = facegate(&["events", "--db", db, "--json"]);
    assert!(o.status.success());
    let rows = json_lines(&o);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["verdict"], "spoof");
    assert_eq!(rows[0]["person"], PERSON);
    assert_eq!(rows[0]["gate"], "front");
    assert_eq!(rows[0]["outcome"], serde_json::Value::Null);
    let o = facegate(&["events", "--db", db]);
    let text = stdout(&o);
    assert!(text.contains(PERSON) && text.contains("spoof"), "{text}");
}

#[test]
fn bad_options_and_missing_databases_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let options = dir.path().join("options.json");
    std::fs::write(
        &options,
        r#"{"access_levels": [{"name": "guest", "actuate": true, "schedule": ["Mon-Fry 08:00-18:00"]}]}"#,
    )
    .unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    let o = facegate(&[
        "replay",
        "--options",
        options.to_str().unwrap(),
        frames.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(
            "option access_levels[0].schedule[0]: 'Mon-Fry 08:00-18:00': 'Fry' is not a day"
        ),
        "{stderr}"
    );
    let o = facegate(&["replay", frames.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no .jpg, .jpeg or .png files"));
    let missing = dir.path().join("none.db");
    let o = facegate(&["events", "--db", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));
    assert!(!missing.exists(), "listing must not create a database");
}
