//! The MQTT connection (rumqttc, tokio): options from [`MqttConfig`] (credentials, TLS with a CA file through
//! rustls on the `ring` provider, a retained `offline` last will on the service's availability topic), and a
//! task that drives the event loop, reports the link going up and down and forwards incoming messages.
//!
//! The task never gives up: wrong credentials, a broker that is down (at start or later) or a TLS failure each
//! give one clear log line per attempt, naming the option to check, and a retry with backoff (1 s doubling to
//! 30 s, reset once connected), so facegate recovers by itself once the cause goes away.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, LastWill, MqttOptions,
    Packet, QoS, TlsConfiguration, Transport,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::HaError;
use crate::config::MqttConfig;

/// Largest MQTT packet either way: face JPEGs are a few tens of KB; rumqttc's default is 10 KB.
const MAX_PACKET: usize = 4 << 20;
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// What the connection task reports.
#[derive(Debug)]
pub enum Link {
    /// The broker accepted the connection (first time or after a reconnect): subscribe and republish.
    Up,
    /// The connection failed or dropped; the task retries. The text is the log line's explanation.
    Down(String),
    /// A message on a subscribed topic; `retain`: the broker kept it from before (sent to us because we
    /// subscribed), not published just now.
    Message {
        topic: String,
        payload: Vec<u8>,
        retain: bool,
    },
}

/// A client plus its event-loop task.
pub struct Connection {
    pub client: AsyncClient,
    pub links: mpsc::UnboundedReceiver<Link>,
    pub broker: String,
    task: JoinHandle<()>,
    stopping: Arc<AtomicBool>,
}

/// rumqttc options for `mqtt`: credentials, TLS when `ca_file` is set, and `will_topic` = `offline` (retained).
pub fn mqtt_options(
    mqtt: &MqttConfig,
    client_id: &str,
    will_topic: &str,
) -> Result<MqttOptions, HaError> {
    if mqtt.host.trim().is_empty() {
        return Err(HaError::BadOption {
            option: "mqtt.host",
            reason: "empty (no broker to connect to)".into(),
        });
    }
    let mut options = MqttOptions::new(client_id, mqtt.host.trim(), mqtt.port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(MAX_PACKET, MAX_PACKET);
    if !mqtt.username.is_empty() {
        options.set_credentials(mqtt.username.clone(), mqtt.password.expose().to_string());
    }
    options.set_last_will(LastWill::new(will_topic, "offline", QoS::AtLeastOnce, true));
    if let Some(ca) = &mqtt.ca_file {
        let tls = tls_config(ca)?;
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls),
        )));
    }
    Ok(options)
}

/// A rustls client config trusting exactly the certificates in the PEM file `ca` (ring provider: no aws-lc).
pub fn tls_config(ca: &Path) -> Result<rustls::ClientConfig, HaError> {
    let bad = |reason: String| HaError::BadOption {
        option: "mqtt.ca_file",
        reason,
    };
    let pem = std::fs::read(ca).map_err(|e| bad(format!("{}: {e}", ca.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(format!("{}: {e}", ca.display())))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("{}: {e}", ca.display())))?;
    }
    if roots.is_empty() {
        return Err(bad(format!(
            "{} holds no PEM certificate (BEGIN CERTIFICATE)",
            ca.display()
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// A log line's explanation of a connection failure, naming what to check.
pub fn explain(e: &ConnectionError, broker: &str, mqtt: &MqttConfig) -> String {
    match e {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => format!(
            "broker {broker} refused the login of user '{}': check mqtt.username and mqtt.password",
            mqtt.username
        ),
        ConnectionError::ConnectionRefused(code) => {
            format!("broker {broker} refused the connection ({code:?})")
        }
        ConnectionError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => format!(
            "nothing accepts connections at {broker}: is the broker running, are mqtt.host and mqtt.port right?"
        ),
        ConnectionError::Tls(t) => format!(
            "TLS with {broker} failed ({t}): check that mqtt.ca_file is the CA that signed the broker's \
             certificate and that the certificate names mqtt.host"
        ),
        other => format!("connection to {broker}: {other}"),
    }
}

impl Connection {
    /// Starts the connection task for `options`; it connects in the background and keeps reconnecting.
    pub fn start(mqtt: &MqttConfig, options: MqttOptions) -> Connection {
        let broker = format!("{}:{}", mqtt.host.trim(), mqtt.port);
        let (client, events) = AsyncClient::new(options, 1024);
        let (tx, links) = mpsc::unbounded_channel();
        let stopping = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(drive(
            events,
            broker.clone(),
            mqtt.clone(),
            tx,
            stopping.clone(),
        ));
        Connection {
            client,
            links,
            broker,
            task,
            stopping,
        }
    }

    /// Sends what is queued, disconnects cleanly, and waits (up to 10 s) for the task to end.
    pub async fn close(self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

async fn drive(
    mut events: EventLoop,
    broker: String,
    mqtt: MqttConfig,
    tx: mpsc::UnboundedSender<Link>,
    stopping: Arc<AtomicBool>,
) {
    let mut retry = FIRST_RETRY;
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                if ack.code == ConnectReturnCode::Success {
                    retry = FIRST_RETRY;
                    tracing::info!(broker = %broker, "MQTT connected");
                    let _ = tx.send(Link::Up);
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let _ = tx.send(Link::Message {
                    topic: p.topic,
                    payload: p.payload.to_vec(),
                    retain: p.retain,
                });
            }
            Ok(_) => {}
            Err(e) => {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let why = explain(&e, &broker, &mqtt);
                tracing::warn!("MQTT: {why}; retrying in {} s", retry.as_secs());
                let _ = tx.send(Link::Down(why));
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
}
