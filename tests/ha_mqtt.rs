//! The MQTT publisher against a real mosquitto (started here on a free port with a private config, password
//! auth, no persistence): the retained discovery configs and availability a Home Assistant would read.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use facegate::config::{MqttConfig, Secret};
use facegate::ha::discovery::{discovery_messages, Device, Topics};
use facegate::ha::publisher::Publisher;
use facegate::ha::HaError;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

/// A mosquitto child process, killed on drop.
struct Broker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_broker() -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pw = dir.path().join("passwd");
    let ok = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&pw)
        .args(["facegate", "s3cret"])
        .status()
        .expect("mosquitto_passwd (scripts/setup-ha.sh installs mosquitto-clients)");
    assert!(ok.success());
    let conf = dir.path().join("mosquitto.conf");
    let text = format!(
        "user root\npersistence false\nlistener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
        pw.display()
    );
    std::fs::write(&conf, text).unwrap();
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto (scripts/setup-ha.sh installs it)");
    wait_port(port);
    Broker {
        child,
        port,
        _dir: dir,
    }
}

fn wait_port(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("mosquitto did not listen on {port}");
}

fn options(port: u16, password: &str) -> MqttConfig {
    MqttConfig {
        host: "127.0.0.1".into(),
        port,
        username: "facegate".into(),
        password: Secret::new(password),
        ..MqttConfig::default()
    }
}

/// Subscribes to `filters` as a second client and collects the retained messages that arrive until `want`
/// topics are seen (or 10 s pass): topic -> (payload, retain flag).
async fn retained(port: u16, filters: &[&str], want: usize) -> BTreeMap<String, (Vec<u8>, bool)> {
    let mut o = MqttOptions::new("observer", "127.0.0.1", port);
    o.set_credentials("facegate", "s3cret");
    let (client, mut events) = AsyncClient::new(o, 64);
    for f in filters {
        client.subscribe(*f, QoS::AtLeastOnce).await.unwrap();
    }
    let mut got = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got.len() < want {
        match tokio::time::timeout_at(deadline, events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                got.insert(p.topic.clone(), (p.payload.to_vec(), p.retain));
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("observer: {e}"),
            Err(_) => break,
        }
    }
    let _ = client.disconnect().await;
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_availability_reach_the_broker_retained() {
    let broker = start_broker();
    let mqtt = options(broker.port, "s3cret");
    let front = Device::new("Front door").unwrap();
    let lift = Device::new("Lift").unwrap();
    let publisher = Publisher::connect(&mqtt, "facegate-test", vec![front.clone(), lift.clone()])
        .await
        .unwrap();
    publisher.announce().await.unwrap();

    let topics = Topics::new(&mqtt);
    let mut want = BTreeMap::new();
    for d in [&front, &lift] {
        for m in discovery_messages(&topics, d) {
            want.insert(m.topic, (m.payload, true));
        }
        want.insert(topics.availability(d), (b"online".to_vec(), true));
    }
    // `announce` only queues: the first look waits until the broker has everything (messages that arrive
    // live carry retain=false); a second subscription then sees what a late-starting HA would, all retained.
    let filters = ["homeassistant/#", "facegate/#"];
    assert_eq!(
        retained(broker.port, &filters, want.len()).await.len(),
        want.len()
    );
    let got = retained(broker.port, &filters, want.len()).await;
    assert_eq!(
        got.len(),
        want.len(),
        "topics: {:?}",
        got.keys().collect::<Vec<_>>()
    );
    for (topic, (payload, retain)) in &want {
        let (p, r) = got.get(topic).unwrap_or_else(|| panic!("{topic} missing"));
        assert_eq!(p, payload, "{topic}");
        assert_eq!(r, retain, "{topic} must be retained");
    }

    publisher.shutdown().await.unwrap();
    // shutdown waits for the event loop to send everything and disconnect, so the offline states are in.
    let got = retained(broker.port, &["facegate/+/availability"], 2).await;
    assert_eq!(got[&topics.availability(&front)].0, b"offline");
    assert_eq!(got[&topics.availability(&lift)].0, b"offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_no_broker_are_clear_errors() {
    let broker = start_broker();
    let dev = vec![Device::new("Front door").unwrap()];
    let err = Publisher::connect(&options(broker.port, "wrong"), "facegate-bad", dev.clone())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, HaError::Connection { .. }), "{err}");
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Publisher::connect(&options(free, "s3cret"), "facegate-none", dev.clone())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, HaError::Connection { .. }), "{err}");
    let empty = MqttConfig::default();
    let err = Publisher::connect(&empty, "facegate-empty", dev)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            HaError::BadOption {
                option: "mqtt.host",
                ..
            }
        ),
        "{err}"
    );
}
