//! The MQTT connection to the broker Home Assistant listens on (rumqttc, tokio): connects with the options'
//! credentials, leaves a retained `offline` last will on each device's availability topic, and announces the
//! devices (retained discovery configs, then retained `online`). The event loop runs on its own task and keeps
//! reconnecting (with a pause) after a failure, logging each one.
//!
//! Not yet here (issue 3): TLS with a CA file, republishing on HA's `online` birth message, states, events and
//! commands.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, EventLoop, LastWill, MqttOptions, Packet, QoS,
};
use tokio::task::JoinHandle;

use super::discovery::{discovery_messages, Device, Topics};
use super::HaError;
use crate::config::MqttConfig;

/// How long [`Publisher::connect`] waits for the broker's CONNACK.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between reconnection attempts after the connection drops.
const RECONNECT_PAUSE: Duration = Duration::from_secs(2);

/// A live connection announcing a set of facegate devices.
pub struct Publisher {
    client: AsyncClient,
    topics: Topics,
    devices: Vec<Device>,
    event_loop: JoinHandle<()>,
    stopping: Arc<AtomicBool>,
}

impl Publisher {
    /// Connects to the broker in `mqtt` as `client_id` and waits for it to accept. Each device's availability
    /// topic gets a retained `offline` last will (MQTT allows one will per connection: the first device's;
    /// the others are set `offline` explicitly by [`Publisher::shutdown`]).
    pub async fn connect(
        mqtt: &MqttConfig,
        client_id: &str,
        devices: Vec<Device>,
    ) -> Result<Self, HaError> {
        if mqtt.host.is_empty() {
            return Err(HaError::BadOption {
                option: "mqtt.host",
                reason: "empty (no broker to connect to)".into(),
            });
        }
        if mqtt.ca_file.is_some() {
            return Err(HaError::BadOption {
                option: "mqtt.ca_file",
                reason: "TLS is not supported yet".into(),
            });
        }
        let topics = Topics::new(mqtt);
        let mut options = MqttOptions::new(client_id, mqtt.host.clone(), mqtt.port);
        options.set_keep_alive(Duration::from_secs(30));
        if !mqtt.username.is_empty() {
            options.set_credentials(mqtt.username.clone(), mqtt.password.expose().to_string());
        }
        if let Some(first) = devices.first() {
            options.set_last_will(LastWill::new(
                topics.availability(first),
                "offline",
                QoS::AtLeastOnce,
                true,
            ));
        }
        let (client, mut events) = AsyncClient::new(options, 256);
        let broker = format!("{}:{}", mqtt.host, mqtt.port);
        let accepted =
            tokio::time::timeout(CONNECT_TIMEOUT, wait_connack(&mut events, &broker)).await;
        match accepted {
            Ok(result) => result?,
            Err(_) => {
                return Err(HaError::Timeout {
                    broker,
                    seconds: CONNECT_TIMEOUT.as_secs(),
                })
            }
        }
        let stopping = Arc::new(AtomicBool::new(false));
        let event_loop = tokio::spawn(drive(events, broker, stopping.clone()));
        Ok(Self {
            client,
            topics,
            devices,
            event_loop,
            stopping,
        })
    }

    /// Publishes every device's discovery configs (retained, QoS 1), then marks each `online`.
    pub async fn announce(&self) -> Result<(), HaError> {
        for device in &self.devices {
            for msg in discovery_messages(&self.topics, device) {
                self.client
                    .publish(msg.topic, QoS::AtLeastOnce, true, msg.payload)
                    .await?;
            }
            self.client
                .publish(
                    self.topics.availability(device),
                    QoS::AtLeastOnce,
                    true,
                    "online",
                )
                .await?;
        }
        Ok(())
    }

    /// Marks every device `offline` (retained) and disconnects cleanly.
    pub async fn shutdown(self) -> Result<(), HaError> {
        for device in &self.devices {
            self.client
                .publish(
                    self.topics.availability(device),
                    QoS::AtLeastOnce,
                    true,
                    "offline",
                )
                .await?;
        }
        self.stopping.store(true, Ordering::SeqCst);
        self.client.disconnect().await?;
        // The event loop sends the queued publishes and the DISCONNECT; the broker then closes the connection.
        let _ = tokio::time::timeout(CONNECT_TIMEOUT, self.event_loop).await;
        Ok(())
    }
}

async fn wait_connack(events: &mut EventLoop, broker: &str) -> Result<(), HaError> {
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => {
                return Ok(())
            }
            Ok(_) => {}
            Err(source) => {
                return Err(HaError::Connection {
                    broker: broker.to_string(),
                    source: Box::new(source),
                })
            }
        }
    }
}

/// Runs the event loop until the connection ends after [`Publisher::shutdown`]; before that, rumqttc
/// reconnects on the next poll after an error.
async fn drive(mut events: EventLoop, broker: String, stopping: Arc<AtomicBool>) {
    loop {
        if let Err(e) = events.poll().await {
            if stopping.load(Ordering::SeqCst) {
                return;
            }
            tracing::warn!(broker = %broker, error = %e, "MQTT connection lost; reconnecting");
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }
}
