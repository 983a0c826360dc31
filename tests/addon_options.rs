//! Bad add-on options stop facegate at start with a message that names the option and says what is expected:
//! `facegate config check --options FILE` (what the add-on's start script runs first), through the real binary.

use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};

/// A valid options.json: one camera, a gate with an encrypted board, the default sections left out.
fn good() -> Value {
    json!({
        "cameras": [{"name": "Front door", "gate": "Front door",
                     "source": {"type": "v4l2", "device": "/dev/video0"}}],
        "gates": [{"name": "Front door", "lock": "door_lock", "lift": {},
                   "board": {"host": "lock.local", "encryption_key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}}],
        "access_levels": [{"name": "resident", "actuate": true}]
    })
}

fn check(options: &Value) -> (Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("options.json");
    std::fs::write(&file, options.to_string()).unwrap();
    run_check(&file)
}

fn run_check(file: &Path) -> (Output, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_facegate"))
        .args(["config", "check", "--options"])
        .arg(file)
        .output()
        .expect("run facegate");
    // The file name is the temporary one: keep only the problem lines.
    let stderr = String::from_utf8_lossy(&o.stderr);
    let problems = stderr.lines().skip(1).collect::<Vec<_>>().join("\n");
    (o, problems)
}

/// Asserts exit code 1, a header naming the file and the count, and exactly these problem lines.
fn assert_refused(options: &Value, expected: &[&str]) {
    let (o, problems) = check(options);
    assert_eq!(o.status.code(), Some(1), "{problems}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    let header = stderr.lines().next().unwrap();
    let count = expected.len();
    let plural = if count == 1 { "" } else { "s" };
    assert!(header.starts_with("error: invalid options in "), "{header}");
    assert!(
        header.ends_with(&format!("options.json ({count} problem{plural}):")),
        "{header}"
    );
    let lines: Vec<String> = expected.iter().map(|l| format!("  option {l}")).collect();
    assert_eq!(problems, lines.join("\n"));
    assert!(o.stdout.is_empty());
}

#[test]
fn good_options_pass() {
    let (o, _) = check(&good());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "options OK: 1 camera(s), 1 gate(s), 1 access level(s)\n"
    );
}

#[test]
fn no_camera_is_refused() {
    let mut o = good();
    o["cameras"] = json!([]);
    assert_refused(
        &o,
        &["cameras: is empty; add at least one camera: a name, the gate it watches and a source (e.g. type v4l2, device /dev/video0)"],
    );
}

#[test]
fn camera_without_its_device_is_refused() {
    let mut o = good();
    o["cameras"][0]["source"] = json!({"type": "v4l2"});
    assert_refused(&o, &["cameras[0].source.device: is missing"]);
}

#[test]
fn unknown_key_is_refused_with_the_known_ones() {
    let mut o = good();
    o["mqtt"] = json!({"hots": "core-mosquitto"});
    assert_refused(
        &o,
        &["mqtt.hots: unknown field `hots`, expected one of `host`, `port`, `username`, `password`, `ca_file`, `discovery_prefix`, `base_topic`, `event_max_age_s`, `away_after_s`"],
    );
}

#[test]
fn unknown_source_kind_is_refused() {
    let mut o = good();
    o["cameras"][0]["source"]["type"] = json!("webcam");
    assert_refused(
        &o,
        &["cameras[0].source.type: unknown variant `webcam`, expected one of `v4l2`, `http`, `replay`"],
    );
}

#[test]
fn wrong_types_are_refused() {
    let mut o = good();
    o["mqtt"] = json!({"port": "1883"});
    assert_refused(
        &o,
        &["mqtt.port: invalid type: string \"1883\", expected a whole number from 0 to 65535"],
    );
    let mut o = good();
    o["liveness"] = json!({"require_blink": "yes"});
    assert_refused(
        &o,
        &["liveness.require_blink: invalid type: string \"yes\", expected true or false"],
    );
}

#[test]
fn encryption_key_must_be_base64_of_32_bytes() {
    let expected = "gates[0].board.encryption_key: is not a base64 encoding of 32 bytes (copy api: encryption: key from the board's YAML)";
    for key in [
        "not base64!",
        // Valid base64, but 16 bytes.
        "AAECAwQFBgcICQoLDA0ODw==",
    ] {
        let mut o = good();
        o["gates"][0]["board"]["encryption_key"] = json!(key);
        assert_refused(&o, &[expected]);
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut o = good();
    o["cameras"][0]["gate"] = json!("Back door");
    o["gates"][0]["board"]["port"] = json!(0);
    o["vision"] = json!({"match_threshold": 2.0});
    o["liveness"] = json!({"min_frames": 0});
    assert_refused(
        &o,
        &[
            "vision.match_threshold: 2 is out of range, expected 0.1..=1.2",
            "liveness.min_frames: 0 is out of range, expected 1..=100",
            "cameras[0].gate: no gate named 'Back door' in gates",
            "gates[0].board.port: 0 is out of range, expected 1..=65535",
        ],
    );
}

#[test]
fn unreadable_or_broken_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("options.json");
    let (o, problems) = run_check(&missing);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        problems,
        format!(
            "  option (options): cannot read {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
    std::fs::write(&missing, "{\"cameras\": [").unwrap();
    let (o, problems) = run_check(&missing);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        problems,
        "  option (options): EOF while parsing a list at line 1 column 13"
    );
}
