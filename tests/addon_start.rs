//! The add-on's start script (addon/run.sh) and the image recipe run natively (scripts/addon-native.sh):
//! Supervisor-style options, the MQTT broker asked from a stand-in for the Supervisor's services API, bad
//! options and a missing broker stopping the add-on with a message that says what to do; and the whole add-on
//! started against a real mosquitto and Home Assistant, its entities appearing there and going unavailable
//! when it is stopped.

mod addon_support;
mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use addon_support::supervisor::{Request, Supervisor};
use common::ha::{free_port, Broker, HomeAssistant};
use facegate::ha::discovery::ENTITIES;
use serde_json::{json, Value};

const TOKEN: &str = "supervisor-token-123";
/// run.sh's first line when TZ is set (run_script sets it).
const TZ_LINE: &str = "[facegate add-on] time zone Europe/Berlin (access schedules follow it)\n";

fn options(mqtt_host: &str) -> Value {
    json!({
        "cameras": [{"name": "Front door", "gate": "Front door",
                     "source": {"type": "replay", "path": "/nonexistent/frames", "fps": 5}}],
        "gates": [{"name": "Front door", "board": {}, "lift": {}}],
        "access_levels": [{"name": "resident", "actuate": true, "gates": [], "schedule": []}],
        "storage": {"database": "/tmp/unused.db", "audit_retention_days": 90},
        "mqtt": {"host": mqtt_host, "port": 1883, "username": "", "password": "",
                 "discovery_prefix": "homeassistant", "base_topic": "facegate"}
    })
}

fn mosquitto_service() -> Value {
    json!({"result": "ok", "data": {"addon": "core_mosquitto", "host": "127.0.0.1", "port": 18830,
           "ssl": false, "protocol": "3.1.1", "username": "addons", "password": "Ahz4bae"}})
}

/// Runs addon/run.sh with the test-built binary on `options`; returns its output and the effective options.
fn run_script(options: &Value, supervisor: Option<&Supervisor>) -> (Output, Option<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("options.json");
    std::fs::write(&file, options.to_string()).unwrap();
    // The script's last step is `exec facegate run`, a service that never ends on its own (it retries an
    // unreachable broker). These tests are about the script, so `run` is answered by a wrapper that logs the
    // command line and exits; `config check` still goes to the real binary. The real service is started by
    // the native-recipe test below.
    let wrapper = dir.path().join("facegate-wrapper.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ \"$1\" = run ]; then echo \"facegate $*\" >&2; exit 0; fi\nexec '{}' \"$@\"\n",
            env!("CARGO_BIN_EXE_facegate")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg(common::repo().join("addon/run.sh"))
        .env("FACEGATE_OPTIONS", &file)
        .env("FACEGATE_BIN", &wrapper)
        .env("FACEGATE_RUNTIME_DIR", dir.path().join("run"))
        .env("TZ", "Europe/Berlin")
        .env_remove("SUPERVISOR_TOKEN")
        .env_remove("SUPERVISOR_URL");
    if let Some(s) = supervisor {
        cmd.env("SUPERVISOR_URL", &s.url)
            .env("SUPERVISOR_TOKEN", TOKEN);
    }
    let out = cmd.output().unwrap();
    let effective = std::fs::read_to_string(dir.path().join("run/options.json"))
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap());
    (out, effective)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_options_stop_the_add_on_before_anything_is_asked() {
    let supervisor = Supervisor::start(200, mosquitto_service());
    let mut bad = options("");
    bad["cameras"] = json!([]);
    bad["gates"][0]["board"] = json!({"host": "lock.local", "encryption_key": "not base64"});
    let (out, effective) = run_script(&bad, Some(&supervisor));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with("error: invalid options in ")
            && lines[0].ends_with("options.json (2 problems):"),
        "{err}"
    );
    assert_eq!(
        lines[1..],
        [
            "  option cameras: is empty; add at least one camera: a name, the gate it watches and a source (e.g. type v4l2, device /dev/video0)",
            "  option gates[0].board.encryption_key: is not a base64 encoding of 32 bytes (copy api: encryption: key from the board's YAML)",
        ]
    );
    assert_eq!(effective, None, "nothing is written");
    assert_eq!(supervisor.requests(), [], "the Supervisor is not asked");
}

#[test]
fn broker_set_in_the_options_is_used_as_is() {
    let supervisor = Supervisor::start(200, mosquitto_service());
    let opts = options("broker.lan");
    let (out, effective) = run_script(&opts, Some(&supervisor));
    assert!(
        stderr(&out).starts_with(&format!(
            "{TZ_LINE}[facegate add-on] MQTT broker from the options: broker.lan:1883\n"
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(effective, Some(opts));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("facegate run --options "),
        "{}",
        stderr(&out)
    );
    assert_eq!(supervisor.requests(), []);
}

#[test]
fn no_broker_anywhere_stops_the_add_on_saying_what_to_do() {
    let (out, effective) = run_script(&options(""), None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!("{TZ_LINE}[facegate add-on] option mqtt.host is empty and there is no Supervisor to ask (SUPERVISOR_TOKEN is not set); set mqtt.host\n")
    );
    assert_eq!(effective, None);

    // The Supervisor's answer when no broker add-on provides the service (HTTP 400, its APIError).
    let supervisor = Supervisor::start(
        400,
        json!({"result": "error", "message": "Service not enabled"}),
    );
    let (out, effective) = run_script(&options(""), Some(&supervisor));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!("{TZ_LINE}[facegate add-on] option mqtt.host is empty and the Supervisor has no MQTT broker to offer (Service not enabled); install the Mosquitto broker add-on or set mqtt.host\n")
    );
    assert_eq!(effective, None);
    assert_eq!(
        supervisor.requests(),
        [Request {
            path: "/services/mqtt".into(),
            authorization: format!("Bearer {TOKEN}")
        }]
    );
}

/// Lines of a child's stderr, as they come.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`; returns every line seen up to it.
fn wait_line(rx: &mpsc::Receiver<String>, needle: &str, timeout: Duration) -> Vec<String> {
    let end = Instant::now() + timeout;
    let mut seen = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = line.contains(needle);
                seen.push(line);
                if hit {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    panic!(
        "no line with {needle:?} within {timeout:?}; output:\n{}",
        seen.join("\n")
    );
}

/// The image recipe natively: the binary (the test build, not rebuilt under the running `cargo test`),
/// sha256-checked models (from ../shared/models instead of the internet), /data/options.json, run.sh.
fn start_native(root: &Path, options: &Value, supervisor: &Supervisor) -> Child {
    let file = root.join("options-in.json");
    std::fs::write(&file, options.to_string()).unwrap();
    Command::new("bash")
        .arg(common::repo().join("scripts/addon-native.sh"))
        .arg(root)
        .args(["--binary", env!("CARGO_BIN_EXE_facegate"), "--options"])
        .arg(&file)
        .arg("--models-from")
        .arg(common::shared().join("models"))
        .env("SUPERVISOR_URL", &supervisor.url)
        .env("SUPERVISOR_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn native_recipe_provisions_verified_models_and_takes_the_supervisors_broker() {
    let root = tempfile::tempdir().unwrap();
    let supervisor = Supervisor::start(200, mosquitto_service());
    let mut child = start_native(root.path(), &options(""), &supervisor);
    let rx = stderr_lines(&mut child);
    let seen = wait_line(
        &rx,
        "MQTT broker from the Supervisor:",
        Duration::from_secs(120),
    );
    let _ = child.kill();
    let _ = child.wait();
    let last = seen.last().unwrap();
    assert_eq!(
        last,
        "[facegate add-on] MQTT broker from the Supervisor: 127.0.0.1:18830 (user addons)"
    );
    // Every model of the manifest, each checked (fetch-models.sh prints one line per file).
    let manifest = facegate::models::manifest().unwrap();
    for m in &manifest {
        let path: PathBuf = root.path().join("opt/facegate/models").join(&m.file);
        assert_eq!(
            facegate::models::sha256_file(&path).unwrap(),
            m.sha256,
            "{}",
            m.file
        );
        assert!(
            seen.iter().any(|l| l.contains(&m.file)),
            "{}: {seen:?}",
            m.file
        );
    }
    assert!(root.path().join("usr/bin/facegate").is_file());
    // The effective options: the Supervisor's broker, everything else as given, readable by its owner only.
    let eff_path = root.path().join("run/facegate/options.json");
    let effective: Value =
        serde_json::from_str(&std::fs::read_to_string(&eff_path).unwrap()).unwrap();
    let mut expected = options("");
    expected["mqtt"]["host"] = json!("127.0.0.1");
    expected["mqtt"]["port"] = json!(18830);
    expected["mqtt"]["username"] = json!("addons");
    expected["mqtt"]["password"] = json!("Ahz4bae");
    assert_eq!(effective, expected);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&eff_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        supervisor.requests(),
        [Request {
            path: "/services/mqtt".into(),
            authorization: format!("Bearer {TOKEN}")
        }]
    );
}

#[test]
fn add_on_starts_against_mosquitto_and_home_assistant_and_its_entities_appear() {
    let broker = Broker::start();
    let ha = HomeAssistant::start(&broker);
    let supervisor = Supervisor::start(
        200,
        json!({"result": "ok", "data": {"addon": "core_mosquitto", "host": "127.0.0.1", "port": broker.port,
               "ssl": false, "protocol": "3.1.1", "username": Broker::USER, "password": Broker::PASSWORD}}),
    );
    let root = tempfile::tempdir().unwrap();
    let mut opts = options("");
    opts["cameras"][0]["name"] = json!("Addon door");
    opts["cameras"][0]["source"] = json!({"type": "replay", "fps": 2, "looped": true,
        "path": common::face("identities/Ben_Affleck")});
    opts["storage"]["database"] = json!(root.path().join("data/facegate.db"));
    opts["http"] = json!({"port": free_port()});
    let mut child = start_native(root.path(), &opts, &supervisor);
    let rx = stderr_lines(&mut child);
    wait_line(
        &rx,
        "MQTT broker from the Supervisor:",
        Duration::from_secs(120),
    );

    // Every entity of the camera's device is registered, and the add-on's device is available.
    let started = Instant::now();
    let access = ha.entity_id("facegate_addon_door_access", Duration::from_secs(180));
    let end = Instant::now() + Duration::from_secs(60);
    while ha.registry("facegate_addon_door_").len() < ENTITIES.len() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
    }
    let registered: Vec<String> = ha
        .registry("facegate_addon_door_")
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    for spec in ENTITIES {
        let uid = format!("facegate_addon_door_{}", spec.key);
        assert!(
            registered.contains(&uid),
            "{uid} missing from {registered:?}"
        );
    }
    let last_person = ha.entity_id("facegate_addon_door_last_person", Duration::from_secs(10));
    ha.wait_state(&last_person, Duration::from_secs(60), |s| {
        s["state"] != "unavailable"
    });
    eprintln!(
        "entities in Home Assistant {:.1} s after the models were provisioned",
        started.elapsed().as_secs_f64()
    );

    // Stopped the way the Supervisor stops an add-on (SIGTERM): it exits cleanly within the manifest's timeout
    // and Home Assistant shows the entities unavailable.
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < end,
            "facegate did not stop within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    ha.wait_state(&access, Duration::from_secs(30), |s| {
        s["state"] == "unavailable"
    });
}
