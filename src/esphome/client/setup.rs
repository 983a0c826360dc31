//! Establishing a session: TCP, optional Noise handshake, hello, device info, entity list, state subscription.

use std::collections::HashMap;
use std::sync::Arc;

use esphome_native_api::proto;
use tokio::net::TcpStream;

use super::super::entities::{Entity, EntityState};
use super::super::msg::{self, Incoming};
use super::super::wire::Wire;
use super::super::EspError;
use super::{BoardConfig, DeviceSummary, Shared};

/// A session ready for commands: entities listed, states subscribed (the board's initial dump follows).
pub(super) struct Established {
    pub wire: Wire,
}

/// Reads until `want` yields a value, answering pings meanwhile.
async fn expect<T>(
    wire: &mut Wire,
    mut want: impl FnMut(Incoming) -> Option<T>,
) -> Result<T, EspError> {
    loop {
        let raw = wire.read().await?;
        let m = Incoming::decode(&raw)?;
        match m {
            Incoming::PingRequest => wire.write(msg::PING_RESPONSE, &[]).await?,
            Incoming::DisconnectRequest => {
                let _ = wire.write(msg::DISCONNECT_RESPONSE, &[]).await;
                return Err(EspError::Closed);
            }
            other => {
                if let Some(v) = want(other) {
                    return Ok(v);
                }
            }
        }
    }
}

/// Runs the whole setup within `cfg.connect_timeout`, and publishes entities and device info to `shared`.
pub(super) async fn establish(
    cfg: &BoardConfig,
    shared: &Arc<Shared>,
) -> Result<Established, EspError> {
    let t = cfg.connect_timeout;
    tokio::time::timeout(t, establish_inner(cfg, shared))
        .await
        .map_err(|_| EspError::Timeout(t))?
}

async fn establish_inner(cfg: &BoardConfig, shared: &Arc<Shared>) -> Result<Established, EspError> {
    let addr = cfg.addr();
    let stream = TcpStream::connect(&addr)
        .await
        .map_err(|source| EspError::Connect { addr, source })?;
    let (mut wire, _) = Wire::client(stream, cfg.key.as_ref()).await.map_err(|e| match e {
        // A plaintext board drops a Noise hello without a word.
        EspError::Closed if cfg.key.is_some() => EspError::Handshake(
            "the board closed the connection during the handshake (plaintext board, or too many clients)".into(),
        ),
        other => other,
    })?;
    let hello = proto::HelloRequest {
        client_info: cfg.client_info.clone(),
        api_version_major: msg::API_MAJOR,
        api_version_minor: msg::API_MINOR,
    };
    wire.write(msg::HELLO_REQUEST, &msg::encode(&hello)).await?;
    let hello = expect(&mut wire, |m| match m {
        Incoming::Hello(h) => Some(h),
        _ => None,
    })
    .await?;
    if hello.api_version_major != msg::API_MAJOR {
        return Err(EspError::Protocol(format!(
            "board speaks API {}.{}, facegate {}.{}",
            hello.api_version_major,
            hello.api_version_minor,
            msg::API_MAJOR,
            msg::API_MINOR
        )));
    }
    wire.write(msg::DEVICE_INFO_REQUEST, &[]).await?;
    let info = expect(&mut wire, |m| match m {
        Incoming::DeviceInfo(d) => Some(d),
        _ => None,
    })
    .await?;
    wire.write(msg::LIST_ENTITIES_REQUEST, &[]).await?;
    let mut entities = Vec::new();
    expect(&mut wire, |m| {
        if let Some(e) = Entity::from_listing(&m) {
            entities.push(e);
        }
        matches!(m, Incoming::ListDone).then_some(())
    })
    .await?;
    wire.write(msg::SUBSCRIBE_STATES_REQUEST, &[]).await?;
    if let Ok(mut d) = shared.device.write() {
        *d = DeviceSummary {
            name: info.name,
            friendly_name: info.friendly_name,
            mac_address: info.mac_address,
            esphome_version: info.esphome_version,
            model: info.model,
            api_version: (hello.api_version_major, hello.api_version_minor),
        };
    }
    if let Ok(mut e) = shared.entities.write() {
        *e = entities;
    }
    // The board dumps every state right after the subscription: start from a clean slate so nothing stale
    // from a previous session survives a reconnect.
    if let Ok(mut s) = shared.states.write() {
        *s = HashMap::<u32, EntityState>::new();
    }
    Ok(Established { wire })
}
