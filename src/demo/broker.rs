//! MQTT for the demo: an embedded broker (rumqttd) on a free local port when the user names none, and a
//! watcher subscribed to facegate's topic tree, so the demo can show (and check) what Home Assistant would
//! have received from the service. (The service publishes; the demo only listens.)

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

use super::DemoError;

/// A free TCP port on localhost (the OS picks one; it is free again when this returns, so there is a small
/// window in which someone else could take it).
pub fn free_port() -> Result<u16, DemoError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| DemoError::Io("a free port", e))?;
    Ok(l.local_addr()
        .map_err(|e| DemoError::Io("a free port", e))?
        .port())
}

/// Starts rumqttd (MQTT 3.1.1, plaintext, localhost only) on its own threads; it lives as long as the
/// process. Returns once the port accepts connections.
pub fn start_embedded(port: u16) -> Result<SocketAddr, DemoError> {
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let server = rumqttd::ServerSettings {
        name: "facegate-demo".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 60_000,
            // Room for the retained discovery configs and the face image.
            max_payload_size: 1 << 20,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 64,
            max_outgoing_packet_count: 200,
            max_segment_size: 10 << 20,
            max_segment_count: 10,
            ..Default::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Default::default()
    };
    let mut broker = rumqttd::Broker::new(config);
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .map_err(|e| DemoError::Io("the broker thread", e))?;
    for _ in 0..300 {
        if std::net::TcpStream::connect(listen).is_ok() {
            return Ok(listen);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(DemoError::Broker(format!(
        "the embedded broker did not listen on {listen} within 3 s"
    )))
}

/// One message seen on the broker.
#[derive(Clone, Debug)]
pub struct Seen {
    pub topic: String,
    pub payload: String,
}

/// A client subscribed to `<base>/#` that keeps every message it receives.
pub struct Watcher {
    client: AsyncClient,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Watcher {
    /// Connects and subscribes; returns once the broker confirmed the subscription.
    pub async fn start(host: &str, port: u16, base: &str) -> Result<Watcher, DemoError> {
        let mut o = MqttOptions::new("facegate-demo-watcher", host, port);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut events) = AsyncClient::new(o, 64);
        let broker = format!("{host}:{port}");
        client
            .subscribe(format!("{base}/#"), QoS::AtLeastOnce)
            .await
            .map_err(|e| DemoError::Broker(format!("{broker}: {e}")))?;
        let wait = async {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(DemoError::Broker(format!("{broker}: {e}"))),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .map_err(|_| DemoError::Broker(format!("{broker} did not answer within 10 s")))??;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let keep = seen.clone();
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let payload = String::from_utf8_lossy(&p.payload).into_owned();
                        if let Ok(mut v) = keep.lock() {
                            v.push(Seen {
                                topic: p.topic.clone(),
                                payload,
                            });
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "demo MQTT watcher: connection error");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        Ok(Watcher { client, seen })
    }

    /// Every message received so far whose topic ends with `suffix`.
    pub fn messages(&self, suffix: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .map(|v| {
                v.iter()
                    .filter(|s| s.topic.ends_with(suffix))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until a message on a topic ending with `suffix` has `payload` (true) or `timeout` (false).
    pub async fn wait_for(&self, suffix: &str, payload: &str, timeout: Duration) -> bool {
        let end = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < end {
            if self.messages(suffix).iter().any(|m| m.payload == payload) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    pub async fn stop(self) {
        let _ = self.client.disconnect().await;
    }
}
