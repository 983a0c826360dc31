//! The service options: parsing, defaults and the validation messages a user sees.

use facegate::config::{ServiceConfig, SourceConfig};

const GOOD: &str = r#"{
  "mqtt": {"host": "core-mosquitto", "username": "facegate", "password": "s3cret"},
  "cameras": [{"name": "Front door", "gate": "front", "source": {"type": "v4l2", "device": "/dev/video0"}}],
  "gates": [{"name": "front", "lock": "front_door_lock",
             "board": {"host": "lock.local", "encryption_key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}}],
  "access_levels": [{"name": "resident", "actuate": true}, {"name": "notify"}]
}"#;

#[test]
fn good_options_parse_with_defaults() {
    let cfg = ServiceConfig::from_json(GOOD).expect("valid options");
    assert_eq!(cfg.mqtt.port, 1883);
    assert_eq!(cfg.mqtt.discovery_prefix, "homeassistant");
    assert_eq!(
        cfg.cameras[0].source,
        SourceConfig::V4l2 {
            device: "/dev/video0".into(),
            width: 640,
            height: 480,
            fps: 10
        }
    );
    assert_eq!(cfg.gates[0].board.as_ref().unwrap().port, 6053);
    assert!(!cfg.access_levels[1].actuate);
    assert_eq!(cfg.storage.audit_retention_days, 90);
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let cfg = ServiceConfig::from_json(GOOD).unwrap();
    let dump = format!("{cfg:?}");
    assert!(!dump.contains("s3cret"), "{dump}");
    assert!(!dump.contains("AAECAwQF"), "{dump}");
}

#[test]
fn unknown_key_is_named() {
    let errs = ServiceConfig::from_json(r#"{"mqtt": {"hots": "x"}}"#).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].to_string().contains("unknown field `hots`"),
        "{}",
        errs[0]
    );
}

#[test]
fn wrong_type_is_named() {
    let errs = ServiceConfig::from_json(r#"{"mqtt": {"port": "eighteen"}}"#).unwrap_err();
    assert!(errs[0].to_string().contains("invalid type"), "{}", errs[0]);
}

#[test]
fn every_semantic_problem_is_reported_with_its_option() {
    let text = r#"{
      "cameras": [{"name": "Door", "gate": "nowhere", "source": {"type": "http", "url": "http://cam/mjpeg"}}],
      "gates": [{"name": "front", "lock": "l", "board": {"host": "b", "encryption_key": "not base64!"}},
                {"name": "front", "lift": {"target_floor": "t", "current_floor": "c", "floors": []}}],
      "access_levels": [{"name": "guest", "gates": ["back"]}],
      "vision": {"match_threshold": 3.0}
    }"#;
    let errs = ServiceConfig::from_json(text).unwrap_err();
    let options: Vec<&str> = errs.iter().map(|e| e.option.as_str()).collect();
    assert_eq!(
        options,
        [
            "vision.match_threshold",
            "gates[1].name",
            "cameras[0].gate",
            "gates[0].board.encryption_key",
            "gates[1].board",
            "gates[1].lift.floors",
            "access_levels[0].gates",
        ]
    );
}

#[test]
fn http_camera_fps_paces_snapshots_and_is_range_checked() {
    let cam = |fps: &str| {
        format!(
            r#"{{"cameras": [{{"name": "Door", "gate": "front",
                 "source": {{"type": "http", "url": "http://cam/jpg"{fps}}}}}],
               "gates": [{{"name": "front"}}]}}"#
        )
    };
    let cfg = ServiceConfig::from_json(&cam("")).expect("fps defaults");
    assert_eq!(
        cfg.cameras[0].source,
        SourceConfig::Http {
            url: "http://cam/jpg".into(),
            fps: 10
        }
    );
    let cfg = ServiceConfig::from_json(&cam(r#", "fps": 2"#)).expect("fps 2");
    assert!(matches!(
        cfg.cameras[0].source,
        SourceConfig::Http { fps: 2, .. }
    ));
    let errs = ServiceConfig::from_json(&cam(r#", "fps": 0"#)).unwrap_err();
    let options: Vec<&str> = errs.iter().map(|e| e.option.as_str()).collect();
    assert_eq!(options, ["cameras[0].source.fps"]);
}
