//! The add-on manifest (`config.yaml`) against the Supervisor's and the add-on linter's own rules
//! (re-implemented from their source in `addon_support::{rules, linter}`, which cite file and version), and
//! against facegate's own configuration: every option facegate reads is in the schema with the right type and
//! optionality, and nothing else is; the schema's ranges are exactly the ones facegate enforces; the defaults
//! are a valid configuration that the Supervisor accepts on a machine without any camera; the translations
//! name and describe every option; the image recipe has the health check and labels the linter asks for.

mod addon_support;

use std::collections::{BTreeMap, BTreeSet};

use addon_support::{
    element, leaves, linter, load_yaml, parse_element, range, repo, rules, supervisor_check,
};
use facegate::config::{
    AccessLevel, BoardConfig, CameraConfig, GateConfig, LiftConfig, MqttConfig, Secret,
    ServiceConfig, SourceConfig,
};
use serde_json::{json, Value};

/// Every secret in the populated configuration has this value, so its leaves can be told apart.
const SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A configuration with every optional part present and every source kind used: its JSON form is the list
/// of options facegate reads.
fn populated() -> ServiceConfig {
    let mut cfg = ServiceConfig {
        mqtt: MqttConfig {
            host: "core-mosquitto".into(),
            username: "facegate".into(),
            password: Secret::new(SECRET),
            ca_file: Some("/ssl/ca.pem".into()),
            ..MqttConfig::default()
        },
        ..ServiceConfig::default()
    };
    let sources = [
        SourceConfig::V4l2 {
            device: "/dev/video0".into(),
            width: 640,
            height: 480,
            fps: 10,
        },
        SourceConfig::Http {
            url: "http://cam.local/mjpeg".into(),
            fps: 10,
        },
        SourceConfig::Replay {
            path: "/share/door.mjpeg".into(),
            fps: 10,
            looped: true,
        },
    ];
    for (i, source) in sources.into_iter().enumerate() {
        cfg.cameras.push(CameraConfig {
            name: format!("Camera {i}"),
            source,
            gate: "Lift".into(),
        });
    }
    cfg.gates.push(GateConfig {
        name: "Lift".into(),
        board: Some(BoardConfig {
            host: "lift.local".into(),
            port: 6053,
            encryption_key: Secret::new(SECRET),
        }),
        lock: Some("door_lock".into()),
        lift: Some(LiftConfig {
            target_floor: "target_floor".into(),
            current_floor: "current_floor".into(),
            floors: vec![0, 1],
        }),
    });
    cfg.access_levels.push(AccessLevel {
        name: "guest".into(),
        actuate: true,
        gates: vec!["Lift".into()],
        floor: Some(1),
        schedule: vec!["Mon-Fri 08:00-18:00".into()],
    });
    cfg.http.token = Secret::new(SECRET);
    cfg.validate()
        .expect("the populated configuration is valid");
    cfg
}

fn manifest() -> Value {
    load_yaml(&repo().join("config.yaml"))
}

/// The options facegate reads, each with one example value, from the populated configuration.
fn facegate_options() -> BTreeMap<String, Value> {
    let json = serde_json::to_value(populated()).unwrap();
    leaves(&json)
        .into_iter()
        .map(|(path, values)| (path, values[0].clone()))
        .collect()
}

fn schema_elements() -> BTreeMap<String, String> {
    leaves(&manifest()["schema"])
        .into_iter()
        .map(|(path, v)| {
            (
                path,
                v[0].as_str()
                    .expect("schema leaves are strings")
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn manifest_follows_the_add_on_conventions() {
    let m = manifest();
    assert_eq!(m["name"], "facegate");
    assert_eq!(m["slug"], "facegate");
    assert_eq!(
        m["version"],
        env!("CARGO_PKG_VERSION"),
        "config.yaml version = Cargo.toml version"
    );
    assert!(m["description"].as_str().unwrap().len() > 40);
    assert!(m["url"].as_str().unwrap().starts_with("https://"));
    assert_eq!(m["arch"], serde_json::json!(["aarch64", "amd64"]));
    // Not published yet: the Supervisor builds the Dockerfile (with `image` set it would only pull).
    assert!(m.get("image").is_none(), "image: {}", m["image"]);
    // Docker's init (the default, `init: true`) is PID 1 of the Debian-slim image (see the Dockerfile).
    assert!(m.get("init").is_none());
    assert_eq!(m["stage"], "experimental");
    assert_eq!(m["homeassistant"], "2025.10.0");
    assert_eq!(m["ingress"], true);
    // ingress_port is left at the Supervisor's default (8099, `_SCHEMA_APP_CONFIG`), facegate's HTTP port.
    assert!(m.get("ingress_port").is_none());
    assert_eq!(
        m["options"]["http"]["port"], 8099,
        "ingress reaches facegate's HTTP port"
    );
    assert!(m["panel_icon"].as_str().unwrap().starts_with("mdi:"));
    assert_eq!(m["services"], serde_json::json!(["mqtt:need"]));
    assert_eq!(m["video"], true);
    let maps: Vec<&str> = m["map"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(maps.contains(&"addon_config"), "{maps:?}");
    // Only keys the Supervisor knows (a typo would be dropped silently by it).
    let known = [
        "name",
        "version",
        "slug",
        "description",
        "url",
        "arch",
        "stage",
        "homeassistant",
        "timeout",
        "ingress",
        "ingress_stream",
        "panel_icon",
        "panel_title",
        "services",
        "video",
        "map",
        "options",
        "schema",
    ];
    for k in m.as_object().unwrap().keys() {
        assert!(known.contains(&k.as_str()), "unexpected manifest key {k}");
    }
}

#[test]
fn the_supervisor_accepts_the_manifest_and_the_linter_finds_nothing() {
    let m = manifest();
    assert_eq!(rules::check_manifest(&m), Vec::<String>::new());
    assert_eq!(linter::lint(&m), Vec::<String>::new());

    // What made the Supervisor skip the add-on, and what the linter reported, is caught by these checks.
    let mut old = m.clone();
    old["schema"]["cameras"][0]["source"]["device"] = json!("device(subsystem=video4linux)?");
    assert_eq!(
        rules::check_manifest(&old),
        ["schema cameras[].source.device: 'device(subsystem=video4linux)?' is not a schema element the Supervisor knows"]
    );
    for (key, value, message) in [
        (
            "boot",
            json!("auto"),
            "'boot' should be removed, it uses a default value",
        ),
        (
            "startup",
            json!("application"),
            "'startup' should be removed, it uses a default value",
        ),
        (
            "ingress_port",
            json!(8099),
            "'ingress_port' should be removed, it uses a default value",
        ),
        (
            "init",
            json!(true),
            "'init' should be removed, it uses a default value",
        ),
        (
            "watchdog",
            json!("http://[HOST]:[PORT:8099]/health"),
            "'watchdog', is obsolete. Use the native Docker HEALTHCHECK directive instead.",
        ),
        (
            "startup_delay",
            json!(5),
            "Additional properties are not allowed ('startup_delay' was unexpected)",
        ),
    ] {
        let mut bad = m.clone();
        bad[key] = value;
        assert_eq!(linter::lint(&bad), [message], "{key}");
    }
    let mut bad = m.clone();
    bad["map"][0]["type"] = json!("app_config");
    assert_eq!(
        linter::lint(&bad).len(),
        1,
        "the linter does not know app_config yet"
    );
    assert_eq!(
        rules::check_manifest(&bad),
        Vec::<String>::new(),
        "the Supervisor does"
    );
    for (key, value) in [
        ("timeout", json!(5)),
        ("services", json!(["mqtt:required"])),
        ("stage", json!("beta")),
        ("image", json!("ghcr.io/facegate/{arch}-facegate:0.1.0")),
    ] {
        let mut bad = m.clone();
        bad[key] = value.clone();
        assert_eq!(
            rules::check_manifest(&bad),
            [format!("{key}: {value} is not accepted")],
            "{key}"
        );
    }
    let mut ok = m.clone();
    ok["image"] = json!("ghcr.io/facegate/{arch}-facegate");
    assert_eq!(rules::check_manifest(&ok), Vec::<String>::new());
}

#[test]
fn schema_elements_follow_the_supervisors_grammar() {
    let mut problems = Vec::new();
    rules::check_schema(&manifest()["schema"], "", &mut problems);
    assert_eq!(problems, Vec::<String>::new());
    // RE_SCHEMA_ELEMENT, case by case.
    for ok in [
        "str",
        "str?",
        "str(1,)",
        "str(,64)?",
        "password(8,)",
        "int",
        "int(-5,5)?",
        "float(.5,1)",
        "float(-0.5,2.25)?",
        "bool",
        "email",
        "url?",
        "port",
        "device",
        "device?",
        "device(subsystem=tty)",
        "match(^[a-z]+$)",
        "list(v4l2|http|replay)",
    ] {
        assert!(parse_element(ok).is_ok(), "{ok} is accepted");
    }
    for bad in [
        "device(subsystem=video4linux)", // [a-z]+ has no digits: the bug that hid the add-on
        "device(subsystem=Video)",
        "string",
        "int(1.5,2)",
        "float(1.,2)",
        "str(-1,)",
        "list()",
        "int(1,2",
        "bool??",
    ] {
        assert!(parse_element(bad).is_err(), "{bad} is refused");
    }
    let mut problems = Vec::new();
    rules::check_schema(&json!({"a": [["str"]]}), "", &mut problems);
    assert_eq!(problems, ["schema a: a list may not directly hold a list"]);
}

#[test]
fn a_fresh_install_on_a_machine_without_a_camera_is_accepted() {
    // The Supervisor checks a `device` option against the host's hardware: a default /dev/video0 of type
    // `device` would stop every install on a machine without a USB camera ("Device '/dev/video0' does not
    // exist"). The camera is a plain path: facegate starts, says in the log what to set, and its camera status
    // in Home Assistant reads "disconnected" until a camera is there (tests/addon_image.rs shows both).
    let m = manifest();
    assert_eq!(m["schema"]["cameras"][0]["source"]["device"], "str?");
    assert_eq!(
        rules::check_options(&m["schema"], &m["options"], &[]),
        Vec::<String>::new()
    );
    let mut typed = m["schema"].clone();
    typed["cameras"][0]["source"]["device"] = json!("device?");
    assert_eq!(
        rules::check_options(&typed, &m["options"], &[]),
        ["cameras[].source.device: Device '/dev/video0' does not exist"]
    );
    assert_eq!(
        rules::check_options(&typed, &m["options"], &["/dev/video0"]),
        Vec::<String>::new()
    );
    // The Supervisor's other refusals, on the shipped defaults.
    let mut o = m["options"].clone();
    o["vision"]["threads"] = json!(65);
    o["mqtt"]["port"] = json!(0);
    o["http"]["token"] = json!(null);
    o["storage"].as_object_mut().unwrap().remove("database");
    o.as_object_mut().unwrap().remove("liveness");
    o["cameras"][0]["source"]["type"] = json!("rtsp");
    let mut got = rules::check_options(&m["schema"], &o, &[]);
    got.sort();
    assert_eq!(
        got,
        [
            "Missing option 'liveness' in root",
            "cameras[].source.type: \"rtsp\" is not one of [\"v4l2\", \"http\", \"replay\"]",
            "http.token: Missing required option (null)",
            "mqtt.port: 0 is not a port",
            "vision.threads: 65 is outside 0..64",
        ]
    );
}

#[test]
fn image_recipe_has_the_health_check_labels_and_license() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let lines: Vec<&str> = dockerfile
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    let text = lines.join("\n");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("HEALTHCHECK ") && l.ends_with("CMD [\"/healthcheck.sh\"]")),
        "HEALTHCHECK (the linter's replacement for watchdog)"
    );
    for label in [
        "io.hass.name=",
        "io.hass.description=",
        "io.hass.type=\"addon\"",
        "io.hass.arch=\"${BUILD_ARCH}\"",
        "io.hass.version=\"${BUILD_VERSION}\"",
        "org.opencontainers.image.licenses=\"MIT\"",
    ] {
        assert!(text.contains(label), "label {label}");
    }
    // The Supervisor passes BUILD_VERSION and BUILD_ARCH, and BUILD_FROM only from a build.yaml (none here).
    assert!(text.contains("ARG BUILD_FROM=docker.io/library/debian:trixie-slim"));
    assert!(!repo().join("build.yaml").exists() && !repo().join("build.json").exists());
    assert_eq!(lines.last().copied(), Some("CMD [\"/run.sh\"]"));
    let license = std::fs::read_to_string(repo().join("LICENSE")).unwrap();
    assert!(license.starts_with("MIT License\n"));
    assert_eq!(env!("CARGO_PKG_LICENSE"), "MIT");
}

#[test]
fn schema_has_exactly_the_options_facegate_reads() {
    let ours = facegate_options();
    let schema = schema_elements();
    let ours_keys: BTreeSet<&String> = ours.keys().collect();
    let schema_keys: BTreeSet<&String> = schema.keys().collect();
    let missing: Vec<_> = ours_keys.difference(&schema_keys).collect();
    let extra: Vec<_> = schema_keys.difference(&ours_keys).collect();
    assert!(
        missing.is_empty(),
        "options facegate reads but the schema lacks: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "schema options facegate does not read: {extra:?}"
    );
}

#[test]
fn schema_types_match_facegate_types() {
    let ours = facegate_options();
    for (path, typ) in schema_elements() {
        let e = element(&typ);
        let value = &ours[&path];
        let ok = match value {
            Value::String(s) if s == SECRET => e.base == "password",
            Value::String(_) => {
                ["str", "url", "device", "list", "match"].contains(&e.base.as_str())
            }
            Value::Bool(_) => e.base == "bool",
            Value::Number(n) if n.is_f64() => e.base == "float",
            Value::Number(_) if path.ends_with("port") => e.base == "port",
            Value::Number(_) => e.base == "int",
            _ => false,
        };
        assert!(ok, "{path}: facegate has {value}, the schema says {typ}");
    }
    // The source kinds: the schema's alternatives are exactly facegate's.
    let kinds = element(&schema_elements()["cameras[].source.type"]);
    let mut ours: Vec<String> = leaves(&serde_json::to_value(populated()).unwrap())
        ["cameras[].source.type"]
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    ours.sort();
    let mut theirs: Vec<String> = kinds.arg.unwrap().split('|').map(String::from).collect();
    theirs.sort();
    assert_eq!(ours, theirs);
}

/// Removes the leaf at `path` from every object that has it.
fn remove_leaf(v: &mut Value, path: &[&str]) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(|i| remove_leaf(i, path)),
        Value::Object(m) if path.len() == 1 => {
            m.remove(path[0].trim_end_matches("[]"));
        }
        Value::Object(m) => {
            if let Some(child) = m.get_mut(path[0].trim_end_matches("[]")) {
                remove_leaf(child, &path[1..]);
            }
        }
        _ => {}
    }
}

#[test]
fn what_facegate_can_do_without_the_schema_lets_users_leave_out() {
    // The Supervisor refuses options missing a required (no `?`) element: that must only be something facegate
    // itself cannot do without.
    let full = serde_json::to_value(populated()).unwrap();
    for (path, typ) in schema_elements() {
        if path.ends_with("[]") {
            continue; // a list element, not a key
        }
        let mut v = full.clone();
        let parts: Vec<&str> = path.split('.').collect();
        remove_leaf(&mut v, &parts);
        let facegate_needs_it = serde_json::from_value::<ServiceConfig>(v).is_err();
        if !facegate_needs_it {
            assert!(
                element(&typ).optional,
                "{path} has a default in facegate, so the schema must say {typ}?"
            );
        }
    }
}

/// Sets the leaf at `path` (list elements: all of them) to `x`.
fn set_leaf(v: &mut Value, path: &[&str], x: &Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(|i| set_leaf(i, path, x)),
        Value::Object(m) => match m.get_mut(path[0].trim_end_matches("[]")) {
            Some(leaf) if path.len() == 1 => *leaf = x.clone(),
            Some(child) => set_leaf(child, &path[1..], x),
            None => {}
        },
        _ => {}
    }
}

#[test]
fn schema_ranges_are_the_ranges_facegate_enforces() {
    let full = serde_json::to_value(populated()).unwrap();
    let mut checked = 0;
    for (path, typ) in schema_elements() {
        let e = element(&typ);
        let Some((lo, hi)) = range(&e) else { continue };
        let step = if e.base == "int" { 1.0 } else { 0.01 };
        let parts: Vec<&str> = path.split('.').collect();
        let with = |x: f64| {
            let mut v = full.clone();
            let x = if e.base == "int" {
                Value::from(x as i64)
            } else {
                Value::from(x)
            };
            set_leaf(&mut v, &parts, &x);
            ServiceConfig::from_json(&v.to_string())
        };
        for inside in [lo, hi] {
            assert!(
                with(inside).is_ok(),
                "{path} = {inside} is in the schema's range but facegate refuses it"
            );
        }
        for outside in [lo - step, hi + step] {
            let option = path.replace("[]", "[0]");
            match with(outside) {
                Ok(_) => panic!(
                    "{path} = {outside} is outside the schema's range but facegate accepts it"
                ),
                // A negative count is refused by serde at the value; anything else by validation, by name.
                Err(errs) => assert!(
                    errs.iter().any(|e| e.option == option),
                    "{path} = {outside}: {errs:?}"
                ),
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 14, "number of ranged options");
}

#[test]
fn defaults_are_a_valid_configuration_and_facegates_own_defaults() {
    let m = manifest();
    let options = &m["options"];
    let problems = supervisor_check(&m["schema"], options);
    assert!(
        problems.is_empty(),
        "the Supervisor would refuse the defaults: {problems:?}"
    );
    let cfg = ServiceConfig::from_json(&options.to_string()).expect("defaults are valid options");
    assert_eq!(cfg.cameras.len(), 1);
    assert!(
        cfg.gates[0].board.is_none() && cfg.gates[0].lift.is_none(),
        "board: {{}} means no board"
    );
    // The sections that have defaults in facegate are shipped with exactly those values, every key spelled out
    // (so the form shows it) except those without a value (mqtt.ca_file).
    let d = ServiceConfig::default();
    assert_eq!(cfg.vision, d.vision);
    assert_eq!(cfg.liveness, d.liveness);
    assert_eq!(cfg.storage, d.storage);
    assert_eq!(cfg.http, d.http);
    assert_eq!(cfg.mqtt, d.mqtt);
    let ours = serde_json::to_value(&d).unwrap();
    for section in ["vision", "liveness", "storage", "http", "mqtt"] {
        let mut expected: Vec<&String> = ours[section]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k)
            .collect();
        let mut shipped: Vec<&String> = options[section].as_object().unwrap().keys().collect();
        expected.sort();
        shipped.sort();
        assert_eq!(shipped, expected, "options.{section}");
    }
    // Every access level a new person can get from `facegate enroll` exists.
    assert!(cfg.access_levels.iter().any(|l| l.name == "resident"));
}

#[test]
fn the_supervisor_accepts_everything_facegate_can_be_given() {
    let full = serde_json::to_value(populated()).unwrap();
    let problems = supervisor_check(&manifest()["schema"], &full);
    assert!(problems.is_empty(), "{problems:?}");
}

/// Translation keys for a schema level: `fields` nest inside dicts and lists of dicts.
fn check_translation(
    schema: &serde_json::Map<String, Value>,
    tr: &Value,
    at: &str,
    lang: &str,
) -> usize {
    let tr = tr
        .as_object()
        .unwrap_or_else(|| panic!("{lang}: {at} has no translations"));
    let mut n = 0;
    for (key, typ) in schema {
        let p = format!("{at}{key}");
        let t = tr
            .get(key)
            .unwrap_or_else(|| panic!("{lang}: no translation for {p}"));
        for field in ["name", "description"] {
            let s = t[field]
                .as_str()
                .unwrap_or_else(|| panic!("{lang}: {p} has no {field}"));
            assert!(!s.trim().is_empty(), "{lang}: {p}.{field} is empty");
        }
        n += 1;
        let inner = match typ {
            Value::Array(a) => &a[0],
            t => t,
        };
        if let Value::Object(sub) = inner {
            n += check_translation(sub, &t["fields"], &format!("{p}."), lang);
        }
    }
    for key in tr.keys() {
        assert!(
            schema.contains_key(key),
            "{lang}: translation for {at}{key}, which is not an option"
        );
    }
    n
}

#[test]
fn translations_name_and_describe_every_option() {
    let m = manifest();
    let schema = m["schema"].as_object().unwrap();
    let mut counts = BTreeMap::new();
    for lang in ["en", "de"] {
        let t = load_yaml(&repo().join(format!("translations/{lang}.yaml")));
        let keys: Vec<&String> = t.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["configuration"], "{lang}: top-level keys");
        counts.insert(
            lang,
            check_translation(schema, &t["configuration"], "", lang),
        );
    }
    let all_dicts_and_leaves = leaves(&m["schema"]).len();
    assert!(counts["en"] > all_dicts_and_leaves, "{counts:?}");
    assert_eq!(counts["en"], counts["de"]);
}

#[test]
fn store_files_are_where_the_supervisor_looks() {
    // The Supervisor reads these next to config.yaml; they live in addon/ and are linked from the root.
    for (file, target) in [
        ("DOCS.md", "addon/DOCS.md"),
        ("CHANGELOG.md", "addon/CHANGELOG.md"),
        ("icon.png", "addon/icon.png"),
        ("logo.png", "addon/logo.png"),
    ] {
        let p = repo().join(file);
        assert_eq!(
            std::fs::read_link(&p).unwrap(),
            std::path::Path::new(target),
            "{file}"
        );
        assert!(p.is_file(), "{file} resolves");
    }
    let icon = image::open(repo().join("icon.png")).unwrap();
    assert_eq!((icon.width(), icon.height()), (128, 128));
    let logo = image::open(repo().join("logo.png")).unwrap();
    assert_eq!((logo.width(), logo.height()), (250, 100));
    let changelog = std::fs::read_to_string(repo().join("CHANGELOG.md")).unwrap();
    assert!(
        changelog.contains(&format!("\n## {}\n", env!("CARGO_PKG_VERSION"))),
        "an entry for this version"
    );
    // The documentation covers every section of the options.
    let docs = std::fs::read_to_string(repo().join("DOCS.md")).unwrap();
    for section in manifest()["schema"].as_object().unwrap().keys() {
        assert!(
            docs.contains(section.as_str()),
            "DOCS.md does not mention {section}"
        );
    }
    let r = load_yaml(&repo().join("repository.yaml"));
    assert_eq!(r["name"], "facegate");
    assert_eq!(r["url"], manifest()["url"]);
    assert!(r["maintainer"].is_string());
}

/// Files under `dir` ending in `.rs`, recursively.
fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn the_images_compile_stage_copies_everything_the_source_includes() {
    // The Dockerfile's `compiled` stage builds from a partial copy of the repository; a file the source
    // includes at compile time but the stage does not copy breaks every user's install (it did: demo/media).
    // The tests build the image from a prebuilt binary, so this is checked here without compiling.
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let stage: Vec<&str> = dockerfile
        .lines()
        .skip_while(|l| !l.ends_with(" AS compiled"))
        .skip(1)
        .take_while(|l| !l.starts_with("FROM "))
        .collect();
    let copied: Vec<&str> = stage
        .iter()
        .filter_map(|l| l.strip_prefix("COPY "))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words[..words.len() - 1].to_vec()
        })
        .collect();
    assert!(
        copied.contains(&"src") && copied.contains(&"Cargo.lock"),
        "{copied:?}"
    );
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    let mut included = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for macro_name in ["include_bytes!(\"", "include_str!(\""] {
            for (i, _) in text.match_indices(macro_name) {
                let rest = &text[i + macro_name.len()..];
                let rel = &rest[..rest.find('"').unwrap()];
                let target = f.parent().unwrap().join(rel);
                let target = std::fs::canonicalize(&target)
                    .unwrap_or_else(|e| panic!("{}: {rel}: {e}", f.display()));
                let in_repo = target
                    .strip_prefix(std::fs::canonicalize(repo()).unwrap())
                    .unwrap()
                    .to_path_buf();
                let top = in_repo
                    .components()
                    .next()
                    .unwrap()
                    .as_os_str()
                    .to_string_lossy()
                    .to_string();
                assert!(
                    copied.contains(&top.as_str()),
                    "{} includes {} but the compiled stage copies only {copied:?}",
                    f.display(),
                    in_repo.display()
                );
                included.push(in_repo);
            }
        }
    }
    assert!(included.len() >= 3, "{included:?}");
}
