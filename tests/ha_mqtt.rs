//! The Home Assistant bridge against a real mosquitto (no HA): what it leaves retained on the broker, and how
//! it lives through bad input: wrong credentials, a broker that is down at start, TLS with the right and a
//! wrong CA, malformed and out-of-range commands. Each failure must be one clear log line, no crash, and
//! recovery once the cause goes away.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ha::{collect, logs, mqtt_for, Broker, FakePeople, FakeSink};
use facegate::config::{MqttConfig, ServiceConfig};
use facegate::ha::bridge::{Bridge, BridgeOptions, DeviceSetup};
use facegate::ha::discovery::{discovery_messages, person_messages, Device, Topics, ENTITIES};
use facegate::settings::{LiveSettings, SettingsHandle};

fn options(mqtt: MqttConfig) -> BridgeOptions {
    BridgeOptions {
        client_id: format!("fg-{}", mqtt.base_topic),
        mqtt,
        access_levels: vec!["resident".into(), "guest".into()],
        away_after: Duration::from_secs(600),
        event_max_age: Duration::from_secs(60),
        diag_every: Duration::from_secs(5),
        people_every: Duration::from_secs(30),
    }
}

fn device(name: &str) -> (DeviceSetup, SettingsHandle) {
    let settings = SettingsHandle::new(LiveSettings::from_config(&ServiceConfig::default()));
    (
        DeviceSetup {
            device: Device::new(name).unwrap(),
            settings: settings.clone(),
            commands: None,
        },
        settings,
    )
}

/// A receiver of a service event stream that stays open and quiet (these tests publish no camera events).
fn quiet() -> tokio::sync::broadcast::Receiver<facegate::outputs::ServiceEvent> {
    static BUS: std::sync::OnceLock<facegate::outputs::Bus> = std::sync::OnceLock::new();
    BUS.get_or_init(facegate::outputs::Bus::default).subscribe()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Polls `collect` until `pred` holds (messages arrive asynchronously).
fn wait_retained(
    broker: &Broker,
    filter: &str,
    timeout: Duration,
    pred: impl Fn(&std::collections::BTreeMap<String, (Vec<u8>, bool)>) -> bool,
) -> std::collections::BTreeMap<String, (Vec<u8>, bool)> {
    let end = Instant::now() + timeout;
    loop {
        let got = collect(broker, &[filter], Duration::from_millis(300));
        if pred(&got) || Instant::now() > end {
            return got;
        }
    }
}

#[test]
fn everything_is_retained_and_shutdown_leaves_offline() {
    logs();
    let broker = Broker::start();
    let mqtt = mqtt_for(&broker, "fgret");
    let rt = runtime();
    let (front, _) = device("Front door");
    let (lift, _) = device("Lift");
    let people = FakePeople::with(&[("Alice", "resident")]);
    let bridge = {
        let _g = rt.enter();
        Bridge::start(
            options(mqtt.clone()),
            vec![front, lift],
            people,
            Arc::new(FakeSink::default()),
            quiet(),
        )
        .unwrap()
    };
    let topics = Topics::new(&mqtt);
    let mut want = std::collections::BTreeMap::new();
    for d in ["Front door", "Lift"] {
        for m in discovery_messages(&topics, &Device::new(d).unwrap()) {
            want.insert(m.topic, m.payload);
        }
    }
    let levels = vec!["resident".to_string(), "guest".to_string()];
    for m in person_messages(&topics, "Alice", &levels) {
        want.insert(m.topic, m.payload);
    }
    wait_retained(&broker, "homeassistant/#", Duration::from_secs(10), |g| {
        g.len() >= want.len()
    });
    // Messages that arrive live carry retain=false: a second subscription sees what a late HA would.
    let configs = collect(&broker, &["homeassistant/#"], Duration::from_millis(500));
    assert_eq!(configs.len(), want.len(), "{:?}", configs.keys());
    let mut bytes = 0;
    for (topic, payload) in &want {
        let (p, retained) = &configs[topic];
        assert_eq!(p, payload, "{topic}");
        assert!(retained, "{topic} must be retained");
        bytes += p.len();
    }
    eprintln!(
        "discovery: {} configs per camera, {} per person, {} messages {} bytes for 2 cameras + 1 person",
        ENTITIES.len(),
        2,
        want.len(),
        bytes
    );
    let states = collect(&broker, &["fgret/#"], Duration::from_millis(500));
    let s = |t: &str| String::from_utf8(states[t].0.clone()).unwrap();
    assert_eq!(s("fgret/availability"), "online");
    assert_eq!(s("fgret/front_door/recognition/state"), "ON");
    let default = ServiceConfig::default().vision.match_threshold;
    assert_eq!(s("fgret/lift/match_threshold/state"), default.to_string());
    assert_eq!(s("fgret/front_door/face_present/state"), "OFF");
    assert_eq!(s("fgret/front_door/camera/state"), "starting");
    assert_eq!(s("fgret/people/alice/presence/state"), "not_home");
    assert_eq!(s("fgret/people/alice/access_level/state"), "resident");
    assert!(states.values().all(|(_, r)| *r), "states are retained");

    rt.block_on(bridge.shutdown());
    let after = collect(&broker, &["fgret/availability"], Duration::from_millis(500));
    assert_eq!(after["fgret/availability"].0, b"offline");
}

#[test]
fn wrong_credentials_then_fixed_recovers() {
    let logs = logs();
    let broker = Broker::start();
    let mut mqtt = mqtt_for(&broker, "fgcred");
    mqtt.username = "newuser".into();
    mqtt.password = facegate::config::Secret::new("newpass");
    let rt = runtime();
    let (front, _) = device("Front door");
    let bridge = {
        let _g = rt.enter();
        Bridge::start(
            options(mqtt),
            vec![front],
            FakePeople::with(&[]),
            Arc::new(FakeSink::default()),
            quiet(),
        )
        .unwrap()
    };
    let port = broker.port.to_string();
    let line = logs.wait_for(
        &[
            &port,
            "refused the login of user 'newuser'",
            "mqtt.password",
        ],
        Duration::from_secs(10),
    );
    eprintln!("log: {line}");
    // Add the user and make mosquitto reload its password file: the bridge's next retry gets in.
    let pw = broker.dir.path().join("passwd");
    let ok = Command::new("mosquitto_passwd")
        .args(["-b"])
        .arg(&pw)
        .args(["newuser", "newpass"])
        .status()
        .unwrap();
    assert!(ok.success());
    broker.reload();
    let got = wait_retained(
        &broker,
        "fgcred/availability",
        Duration::from_secs(40),
        |g| g.get("fgcred/availability").map(|p| p.0.as_slice()) == Some(b"online"),
    );
    assert_eq!(got["fgcred/availability"].0, b"online");
    rt.block_on(bridge.shutdown());
}

#[test]
fn broker_down_at_start_then_up_recovers() {
    let logs = logs();
    let broker = Broker::start();
    broker.stop();
    let mqtt = mqtt_for(&broker, "fgdown");
    let rt = runtime();
    let (front, _) = device("Front door");
    let bridge = {
        let _g = rt.enter();
        Bridge::start(
            options(mqtt),
            vec![front],
            FakePeople::with(&[]),
            Arc::new(FakeSink::default()),
            quiet(),
        )
        .unwrap()
    };
    let port = broker.port.to_string();
    logs.wait_for(
        &[&port, "nothing accepts connections", "mqtt.port"],
        Duration::from_secs(10),
    );
    broker.restart();
    let got = wait_retained(
        &broker,
        "fgdown/availability",
        Duration::from_secs(40),
        |g| g.contains_key("fgdown/availability"),
    );
    assert_eq!(got["fgdown/availability"].0, b"online");
    rt.block_on(bridge.shutdown());
}

#[test]
fn tls_with_the_right_ca_connects_and_a_wrong_ca_is_a_clear_error() {
    let logs = logs();
    let broker = Broker::start_tls();
    let rt = runtime();
    let mut good = mqtt_for(&broker, "fgtls");
    good.ca_file = Some(broker.dir.path().join("ca.crt"));
    let mut bad = mqtt_for(&broker, "fgtlsbad");
    bad.ca_file = Some(broker.dir.path().join("other-ca.crt"));
    let (front, _) = device("Front door");
    let (front2, _) = device("Front door");
    let (ok_bridge, bad_bridge) = {
        let _g = rt.enter();
        let people = FakePeople::with(&[]);
        let sink = Arc::new(FakeSink::default());
        (
            Bridge::start(
                options(good),
                vec![front],
                people.clone(),
                sink.clone(),
                quiet(),
            )
            .unwrap(),
            Bridge::start(options(bad), vec![front2], people, sink, quiet()).unwrap(),
        )
    };
    let line = logs.wait_for(&["TLS with", "mqtt.ca_file"], Duration::from_secs(10));
    eprintln!("log: {line}");
    let got = wait_retained(&broker, "+/availability", Duration::from_secs(10), |g| {
        g.contains_key("fgtls/availability")
    });
    assert_eq!(got["fgtls/availability"].0, b"online");
    assert!(!got.contains_key("fgtlsbad/availability"));
    // A CA file that does not exist or holds no certificate is refused before connecting.
    let mut missing = mqtt_for(&broker, "fgtlsmissing");
    missing.ca_file = Some(broker.dir.path().join("nope.crt"));
    let (front3, _) = device("Front door");
    let _g = rt.enter();
    let err = Bridge::start(
        options(missing),
        vec![front3],
        FakePeople::with(&[]),
        Arc::new(FakeSink::default()),
        quiet(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("mqtt.ca_file"), "{err}");
    rt.block_on(async {
        ok_bridge.shutdown().await;
        bad_bridge.shutdown().await;
    });
}

#[test]
fn malformed_and_out_of_range_commands_keep_the_old_state() {
    let logs = logs();
    let broker = Broker::start();
    let mqtt = mqtt_for(&broker, "fgcmd");
    let rt = runtime();
    let (front, settings) = device("Front door");
    let sink = Arc::new(FakeSink::default());
    let bridge = {
        let _g = rt.enter();
        Bridge::start(
            options(mqtt),
            vec![front],
            FakePeople::with(&[("Alice", "resident")]),
            sink.clone(),
            quiet(),
        )
        .unwrap()
    };
    wait_retained(
        &broker,
        "fgcmd/availability",
        Duration::from_secs(10),
        |g| !g.is_empty(),
    );
    let (client, mut conn) = broker.client("commander");
    std::thread::spawn(move || for _ in conn.iter() {});
    let send = |topic: &str, payload: &[u8]| {
        client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.to_vec())
            .unwrap();
    };
    let before = settings.get();
    send("fgcmd/front_door/match_threshold/set", b"0.95");
    logs.wait_for(
        &["refused MQTT command", "match_threshold", "0.95"],
        Duration::from_secs(5),
    );
    send("fgcmd/front_door/match_threshold/set", b"abc");
    logs.wait_for(
        &["refused MQTT command", "expected a number"],
        Duration::from_secs(5),
    );
    send("fgcmd/front_door/recognition/set", b"maybe");
    logs.wait_for(
        &["refused MQTT command", "expected ON or OFF"],
        Duration::from_secs(5),
    );
    send("fgcmd/front_door/antispoof_threshold/set", &[0xff, 0xfe]);
    logs.wait_for(
        &["refused MQTT command", "not UTF-8"],
        Duration::from_secs(5),
    );
    send("fgcmd/people/alice/access_level/set", b"superuser");
    logs.wait_for(
        &["refused access level", "superuser"],
        Duration::from_secs(5),
    );
    assert_eq!(settings.get(), before, "refused commands change nothing");
    assert!(sink.0.lock().unwrap().is_empty(), "nothing persisted");
    let got = collect(
        &broker,
        &["fgcmd/front_door/match_threshold/state"],
        Duration::from_millis(500),
    );
    let default = ServiceConfig::default().vision.match_threshold.to_string();
    assert_eq!(
        got["fgcmd/front_door/match_threshold/state"].0,
        default.as_bytes()
    );
    // A valid one is applied, persisted and echoed.
    send("fgcmd/front_door/match_threshold/set", b"0.45");
    let got = wait_retained(
        &broker,
        "fgcmd/front_door/match_threshold/state",
        Duration::from_secs(5),
        |g| g.values().any(|p| p.0 == b"0.45"),
    );
    assert_eq!(got["fgcmd/front_door/match_threshold/state"].0, b"0.45");
    assert_eq!(settings.get().match_threshold, 0.45);
    let saved = sink.0.lock().unwrap().clone();
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].0, "front_door");
    assert_eq!(saved[0].1.match_threshold, 0.45);
    rt.block_on(bridge.shutdown());
}

#[test]
fn a_removed_person_loses_configs_first_and_states_two_seconds_later() {
    logs();
    let broker = Broker::start();
    let mqtt = mqtt_for(&broker, "fgrm");
    let rt = runtime();
    let (front, _) = device("Gate");
    let people = FakePeople::with(&[("Erin", "resident")]);
    let opts = BridgeOptions {
        people_every: Duration::from_millis(200),
        ..options(mqtt)
    };
    let bridge = {
        let _g = rt.enter();
        Bridge::start(
            opts,
            vec![front],
            people.clone(),
            Arc::new(FakeSink::default()),
            quiet(),
        )
        .unwrap()
    };
    let filters = [
        "fgrm/people/erin/#",
        "homeassistant/+/facegate_people_erin/+/config",
    ];
    let all = |g: &std::collections::BTreeMap<String, (Vec<u8>, bool)>| g.len() == 4;
    let got = wait_retained(&broker, filters[0], Duration::from_secs(10), |g| {
        g.len() == 2
    });
    assert_eq!(got.len(), 2, "{:?}", got.keys());
    assert!(all(&collect(&broker, &filters, Duration::from_millis(500))));

    // Watch the removal live: when does each topic get its empty (clearing) message?
    let (client, mut conn) = broker.client("removal-watch");
    for f in filters {
        client.subscribe(f, rumqttc::QoS::AtLeastOnce).unwrap();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)))
                    if p.payload.is_empty() =>
                {
                    if tx.send((p.topic.clone(), Instant::now())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    people.list.lock().unwrap().clear();
    let mut cleared = std::collections::BTreeMap::new();
    while cleared.len() < 4 {
        let (topic, at) = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("only {:?} cleared", cleared.keys()));
        cleared.insert(topic, at);
    }
    let last_config = cleared
        .iter()
        .filter(|(t, _)| t.ends_with("/config"))
        .map(|(_, at)| *at)
        .max()
        .unwrap();
    let first_state = cleared
        .iter()
        .filter(|(t, _)| t.ends_with("/state"))
        .map(|(_, at)| *at)
        .min()
        .unwrap();
    // HA drops the entities on the empty configs; an empty state before that is an error in HA 2024.3.
    let gap = first_state.duration_since(last_config);
    assert!(
        gap >= Duration::from_millis(1900),
        "states cleared {gap:?} after configs"
    );
    assert!(
        gap <= Duration::from_secs(4),
        "states cleared {gap:?} after configs"
    );
    assert!(collect(&broker, &filters, Duration::from_millis(500)).is_empty());
    let _ = client.disconnect();
    rt.block_on(bridge.shutdown());
}

/// Issue 11 item 4: a command left RETAINED on the broker (by mistake, or by an attacker with publish rights
/// who wants it replayed on every start) must not act when facegate subscribes. Before the fix the retained
/// `access_level/set resident` moved the blocked person back to `resident` and the retained `OFF` turned
/// recognition off at every start. A live (not retained) command still works.
#[test]
fn retained_commands_are_not_replayed_on_connect() {
    let logs = logs();
    let broker = Broker::start();
    let mqtt = mqtt_for(&broker, "fgretcmd");
    let (client, mut conn) = broker.client("retainer");
    std::thread::spawn(move || for _ in conn.iter() {});
    let publish = |topic: &str, payload: &[u8], retain: bool| {
        client
            .publish(topic, rumqttc::QoS::AtLeastOnce, retain, payload.to_vec())
            .unwrap();
    };
    publish(
        "fgretcmd/people/mallory/access_level/set",
        b"resident",
        true,
    );
    publish("fgretcmd/front_door/recognition/set", b"OFF", true);
    publish("fgretcmd/front_door/match_threshold/set", b"0.6", true);
    // Both are on the broker before facegate starts.
    let got = wait_retained(&broker, "fgretcmd/#", Duration::from_secs(5), |g| {
        g.len() == 3
    });
    assert_eq!(got.len(), 3, "{got:?}");
    let rt = runtime();
    let (front, settings) = device("Front door");
    let before = settings.get();
    assert!(before.recognition_enabled);
    let people = FakePeople::with(&[("Mallory", "blocked")]);
    let sink = Arc::new(FakeSink::default());
    let bridge = {
        let _g = rt.enter();
        Bridge::start(
            options(mqtt),
            vec![front],
            people.clone(),
            sink.clone(),
            quiet(),
        )
        .unwrap()
    };
    // The bridge subscribed (its person entities are out) and was sent the retained commands.
    logs.wait_for(
        &[
            "ignored a RETAINED command",
            "fgretcmd/people/mallory/access_level/set",
        ],
        Duration::from_secs(10),
    );
    logs.wait_for(
        &[
            "ignored a RETAINED command",
            "fgretcmd/front_door/recognition/set",
        ],
        Duration::from_secs(10),
    );
    logs.wait_for(
        &[
            "ignored a RETAINED command",
            "fgretcmd/front_door/match_threshold/set",
        ],
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(people.level("Mallory").as_deref(), Some("blocked"));
    assert_eq!(settings.get(), before, "retained commands change nothing");
    assert!(sink.0.lock().unwrap().is_empty(), "nothing persisted");
    // A command published now is acted on.
    publish("fgretcmd/people/mallory/access_level/set", b"guest", false);
    let end = Instant::now() + Duration::from_secs(5);
    while people.level("Mallory").as_deref() != Some("guest") {
        assert!(Instant::now() < end, "a live command was not applied");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Clean the broker of what this test retained.
    for t in [
        "fgretcmd/people/mallory/access_level/set",
        "fgretcmd/front_door/recognition/set",
        "fgretcmd/front_door/match_threshold/set",
    ] {
        publish(t, b"", true);
    }
    rt.block_on(bridge.shutdown());
}

/// A camera taken out of the options: the next start clears its device from HA (every retained discovery
/// config emptied, then its retained states), and leaves the cameras still configured alone. Before the fix
/// its entities stayed in HA forever (`removal_messages` was never called).
#[test]
fn a_device_removed_from_the_options_is_cleared_on_the_next_start() {
    logs();
    let broker = Broker::start();
    let mqtt = mqtt_for(&broker, "fgrmdev");
    let rt = runtime();
    let start = |names: &[&str]| {
        let _g = rt.enter();
        Bridge::start(
            options(mqtt.clone()),
            names.iter().map(|n| device(n).0).collect(),
            FakePeople::with(&[]),
            Arc::new(FakeSink::default()),
            quiet(),
        )
        .unwrap()
    };
    let count = |g: &std::collections::BTreeMap<String, (Vec<u8>, bool)>, node: &str| {
        g.iter()
            .filter(|(t, (p, r))| t.contains(&format!("/{node}/")) && *r && !p.is_empty())
            .count()
    };
    let bridge = start(&["Front door", "Lift"]);
    let got = wait_retained(&broker, "homeassistant/#", Duration::from_secs(10), |g| {
        count(g, "facegate_lift") == ENTITIES.len()
            && count(g, "facegate_front_door") == ENTITIES.len()
    });
    assert_eq!(count(&got, "facegate_lift"), ENTITIES.len());
    let states = wait_retained(&broker, "fgrmdev/lift/#", Duration::from_secs(10), |g| {
        g.len() >= 4
    });
    assert!(states.len() >= 4, "{states:?}");
    rt.block_on(bridge.shutdown());

    let bridge = start(&["Front door"]);
    let got = wait_retained(&broker, "homeassistant/#", Duration::from_secs(10), |g| {
        count(g, "facegate_lift") == 0 && count(g, "facegate_front_door") == ENTITIES.len()
    });
    assert_eq!(count(&got, "facegate_lift"), 0, "the lift's configs remain");
    assert_eq!(count(&got, "facegate_front_door"), ENTITIES.len());
    std::thread::sleep(Duration::from_secs(3));
    let states = collect(&broker, &["fgrmdev/lift/#"], Duration::from_millis(500));
    assert!(
        states.values().all(|(p, _)| p.is_empty()),
        "the lift's states remain: {states:?}"
    );
    let front = collect(
        &broker,
        &["fgrmdev/front_door/#"],
        Duration::from_millis(500),
    );
    assert!(front.len() >= 4, "{front:?}");
    rt.block_on(bridge.shutdown());
}
