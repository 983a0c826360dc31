//! Home Assistant over MQTT: the discovery payloads that make facegate's facts and controls appear in HA
//! with no YAML ([`discovery`]), the MQTT connection ([`link`]: TLS, last will, reconnects) and the bridge
//! that keeps HA's picture of facegate current and carries HA's commands back ([`bridge`]).
//!
//! Topic tree (plain JSON, readable in MQTT Explorer): `<base_topic>/availability` (`online`/`offline`,
//! retained, the last will); per device (one per camera/gate) `<base_topic>/<device>/<entity>/state`
//! (retained states; events are not retained) and `<base_topic>/<device>/<entity>/set` (commands from HA);
//! per enrolled person `<base_topic>/people/<person>/{presence,access_level}/...`. Discovery configs live
//! under `<discovery_prefix>/<component>/facegate_<device>/<entity>/config`, retained.

pub mod bridge;
pub mod discovery;
pub mod link;

use thiserror::Error;

/// Everything that can go wrong between facegate and the broker.
#[derive(Debug, Error)]
pub enum HaError {
    /// A device (camera/gate) name that gives no usable topic segment.
    #[error("device name {0:?} has no letters or digits to build MQTT topics from")]
    BadDeviceName(String),
    /// The MQTT options cannot be used as given.
    #[error("MQTT option {option}: {reason}")]
    BadOption {
        option: &'static str,
        reason: String,
    },
    /// The client could not queue a request (the event loop is gone).
    #[error("MQTT client: {0}")]
    Client(Box<rumqttc::ClientError>),
    /// The connection to the broker failed or was refused.
    #[error("MQTT connection to {broker}: {source}")]
    Connection {
        broker: String,
        #[source]
        source: Box<rumqttc::ConnectionError>,
    },
    /// The broker did not answer in time.
    #[error("MQTT broker {broker} did not confirm within {seconds} s")]
    Timeout { broker: String, seconds: u64 },
}

impl From<rumqttc::ClientError> for HaError {
    fn from(e: rumqttc::ClientError) -> Self {
        HaError::Client(Box::new(e))
    }
}
