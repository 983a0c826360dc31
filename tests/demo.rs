//! `facegate demo` end to end: the real binary, the real models, against a real mosquitto (started here on a
//! free port) with a subscriber of our own, so what Home Assistant would receive is checked independently of
//! the demo's own summary.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

/// A mosquitto child process (anonymous, no persistence), killed on drop.
struct Mosquitto {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mosquitto() -> Mosquitto {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = dir.path().join("mosquitto.conf");
    let text =
        format!("user root\npersistence false\nlistener {port} 127.0.0.1\nallow_anonymous true\n");
    std::fs::write(&conf, text).unwrap();
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto (scripts/setup-ha.sh installs it)");
    // Owned (killed and reaped on drop) before anything can panic.
    let broker = Mosquitto {
        child,
        port,
        _dir: dir,
    };
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return broker;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("mosquitto did not listen on {port}");
}

/// Every (topic, payload, retained) a subscriber to facegate's and HA's topic trees sees until `stop` fires.
async fn watch(
    port: u16,
    ready: tokio::sync::oneshot::Sender<()>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Vec<(String, String, bool)> {
    let mut o = MqttOptions::new("demo-test-observer", "127.0.0.1", port);
    // The service publishes the face crop (tens of KB) like every state.
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut events) = AsyncClient::new(o, 64);
    client
        .subscribe("facegate/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    client
        .subscribe("homeassistant/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut ready = Some(ready);
    let mut acks = 0;
    let mut got = Vec::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            ev = events.poll() => match ev {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    acks += 1;
                    if acks == 2 {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => got.push((
                    p.topic.clone(),
                    String::from_utf8_lossy(&p.payload).into_owned(),
                    p.retain,
                )),
                Ok(_) => {}
                Err(e) => panic!("observer: {e}"),
            },
        }
    }
    got
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| {
            x.as_str()
                .map(String::from)
                .unwrap_or_else(|| x.to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_to_its_end_with_the_expected_outcomes_and_mqtt_events() {
    let shared = common::shared();
    let broker = mosquitto();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let observer = tokio::spawn(watch(broker.port, ready_tx, stop_rx));
    tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .expect("observer subscribed")
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let summary_path = dir.path().join("summary.json");
    let models =
        std::env::join_paths([common::repo().join("models"), shared.join("models")]).unwrap();
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking({
        let summary_path = summary_path.clone();
        let port = broker.port;
        move || {
            Command::new(env!("CARGO_BIN_EXE_facegate"))
                .args(["demo", "--fast", "--mqtt-host", "127.0.0.1", "--mqtt-port"])
                .arg(port.to_string())
                .arg("--summary-json")
                .arg(&summary_path)
                .env("FACEGATE_MODELS", models)
                .env("CI", "true")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}\n(demo took {took:?})");
    assert!(out.status.success(), "demo failed: {:?}", out.status);
    assert!(stdout.contains("demo OK"), "no success line");
    assert!(took < Duration::from_secs(240), "demo too slow: {took:?}");

    // The demo's own account of what happened.
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    assert_eq!(s["failures"], serde_json::json!([]));
    let steps = s["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    let verdicts: Vec<Vec<String>> = steps.iter().map(|st| strings(&st["verdicts"])).collect();
    assert_eq!(
        verdicts,
        vec![
            vec![],
            vec!["unknown".to_string()],
            vec!["spoof".into()],
            vec!["granted".into()]
        ]
    );
    assert_eq!(steps[1]["people"], serde_json::json!([null]));
    assert_eq!(steps[3]["people"], serde_json::json!(["Eileen Collins"]));
    for st in &steps[..3] {
        assert_eq!(
            st["board_commands"],
            serde_json::json!([]),
            "{}",
            st["step"]
        );
        assert_eq!(st["actions"], serde_json::json!([]), "{}", st["step"]);
    }
    // The phone screen is rejected by a wide margin; the live faces pass the 0.5 threshold.
    assert!(
        steps[2]["liveness"][0].as_f64().unwrap() < 0.2,
        "{}",
        steps[2]
    );
    assert!(
        steps[1]["liveness"][0].as_f64().unwrap() >= 0.5,
        "{}",
        steps[1]
    );
    assert!(
        steps[3]["liveness"][0].as_f64().unwrap() >= 0.5,
        "{}",
        steps[3]
    );
    let mut cmds = strings(&steps[3]["board_commands"]);
    cmds.sort();
    assert_eq!(cmds, vec!["call 1", "unlock"]);
    let actions = steps[3]["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 2);
    for a in actions {
        assert_eq!(a["result"], "confirmed", "{a}");
        assert!(a["confirmed_ms"].as_f64().unwrap() < 2000.0, "{a}");
    }
    assert_eq!(
        strings(&s["lock_states"]),
        vec!["locked", "unlocked", "locked"]
    );
    assert_eq!(s["lift_floors"], serde_json::json!([0, 1]));
    assert_eq!(
        strings(&s["mqtt_events"]),
        vec!["unknown", "spoof", "granted"]
    );

    // What a subscriber of our own received on the broker.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = stop_tx.send(());
    let got = observer.await.unwrap();
    let events: Vec<Value> = got
        .iter()
        .filter(|(t, _, _)| t == "facegate/front_door/access/state")
        .map(|(_, p, retained)| {
            assert!(!retained, "access events are not retained");
            serde_json::from_str(p).unwrap()
        })
        .collect();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["unknown", "spoof", "granted"]);
    assert_eq!(events[0]["person"], Value::Null);
    assert_eq!(events[2]["person"], "Eileen Collins");
    assert_eq!(events[2]["gate"], "Front door");
    let availability: Vec<&str> = got
        .iter()
        .filter(|(t, _, _)| t == "facegate/availability")
        .map(|(_, p, _)| p.as_str())
        .collect();
    assert_eq!(availability, vec!["online", "offline"]);

    // What Home Assistant would find on the broker afterwards: the retained discovery config of the access
    // event entity, and the device marked offline.
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let late = tokio::spawn(watch(broker.port, ready_tx, stop_rx));
    ready_rx.await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(());
    let retained = late.await.unwrap();
    let config = retained
        .iter()
        .find(|(t, _, _)| t == "homeassistant/event/facegate_front_door/access/config")
        .expect("retained discovery config of the access event");
    assert!(config.2, "retained");
    let config: Value = serde_json::from_str(&config.1).unwrap();
    assert_eq!(config["state_topic"], "facegate/front_door/access/state");
    assert!(retained
        .iter()
        .any(|(t, p, r)| t == "facegate/availability" && p == "offline" && *r));

    // The demo is the service: `facegate run` on a camera of the same name publishes the same topics and
    // payloads (the access event and last person with the same keys).
    let run_dir = dir.path().join("run");
    let run = tokio::task::spawn_blocking(move || run_messages(&run_dir))
        .await
        .unwrap();
    compare(&got, &run);
}

/// What `facegate run` publishes (a replay camera "Front door" showing a person nobody enrolled, gate
/// without a board) on a broker of its own, until it has published an access event and its diagnostics,
/// then through its SIGTERM shutdown.
fn run_messages(dir: &std::path::Path) -> Vec<(String, String, bool)> {
    let broker = mosquitto();
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    common::service::clip_frames(
        &frames,
        "blink/liveportrait_driving_d0.mp4",
        "a",
        1,
        30,
        None,
    );
    common::service::grey_frames(&frames, "b", 20, 512, 512);
    let options = serde_json::json!({
        "mqtt": {"host": "127.0.0.1", "port": broker.port},
        "cameras": [{"name": "Front door", "gate": "Front door",
                     "source": {"type": "replay", "path": frames, "fps": 10, "looped": true}}],
        "gates": [{"name": "Front door"}],
        "access_levels": [{"name": "resident"}],
        "storage": {"database": dir.join("facegate.db")},
        "http": {"port": common::ha::free_port()},
    });
    let path = dir.join("options.json");
    std::fs::write(&path, options.to_string()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let observer = rt.spawn(watch(broker.port, ready_tx, stop_rx));
    rt.block_on(ready_rx).unwrap();
    let log = dir.join("run.log");
    let mut fg = common::service::start_facegate(&path, &log);
    // Until the unknown face's decision and the first diagnostics (every 5 s) are out.
    let end = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("facegate running") {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "facegate run did not start:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(12));
    common::ha::stop_child(&mut fg, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(300));
    let _ = stop_tx.send(());
    rt.block_on(observer).unwrap()
}

/// The topics (people aside: the run enrolled nobody) and the JSON keys of the access events and the last
/// person state published by the demo and by `facegate run` are the same; the demo's extra topics are only
/// the gate-action events of its board (the run's gate has none).
fn compare(demo: &[(String, String, bool)], run: &[(String, String, bool)]) {
    use std::collections::BTreeSet;
    let topics = |m: &[(String, String, bool)]| -> BTreeSet<String> {
        m.iter()
            .map(|(t, _, _)| t.clone())
            .filter(|t| !t.contains("people"))
            .collect()
    };
    let (d, r) = (topics(demo), topics(run));
    let only_demo: Vec<&String> = d.difference(&r).collect();
    let only_run: Vec<&String> = r.difference(&d).collect();
    assert_eq!(only_run, Vec::<&String>::new(), "published by run only");
    assert_eq!(
        only_demo,
        vec!["facegate/front_door/gate_action/state"],
        "published by the demo only"
    );
    let keys = |m: &[(String, String, bool)], topic: &str| -> BTreeSet<BTreeSet<String>> {
        m.iter()
            .filter(|(t, p, _)| t == topic && !p.is_empty())
            .map(|(_, p, _)| {
                let v: Value = serde_json::from_str(p).unwrap_or_else(|e| panic!("{e}: {p}"));
                v.as_object().unwrap().keys().cloned().collect()
            })
            .collect()
    };
    for topic in [
        "facegate/front_door/access/state",
        "facegate/front_door/last_person/state",
    ] {
        let (kd, kr) = (keys(demo, topic), keys(run, topic));
        assert_eq!(kd.len(), 1, "{topic}: {kd:?}");
        assert_eq!(kd, kr, "{topic}");
    }
    let availability = |m: &[(String, String, bool)]| -> Vec<String> {
        m.iter()
            .filter(|(t, _, _)| t == "facegate/availability")
            .map(|(_, p, _)| p.clone())
            .collect()
    };
    assert_eq!(availability(run), vec!["online", "offline"]);
}

#[test]
fn missing_models_are_named_with_how_to_fetch_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_facegate"))
        .args(["demo", "--fast", "--models"])
        .arg(dir.path())
        .env("CI", "true")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("models are missing"), "{stderr}");
    assert!(stderr.contains("scripts/fetch-models.sh"), "{stderr}");
}
