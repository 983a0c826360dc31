//! One native-API connection to the simulated board, answered the way ESPHome 2026.6 answers: hello, device
//! info, entity listing without object ids, the state dump then changes, commands, pings both ways.

use std::sync::Arc;
use std::time::Instant;

use esphome_native_api::proto;
use prost::Message;
use tokio::net::TcpStream;

use super::super::entities::{EntityKind, EntityState};
use super::super::frame::RawMessage;
use super::super::msg;
use super::super::wire::Wire;
use super::super::EspError;
use super::board::{key, Board, ENTITIES, FLOORS};
use super::SimConfig;

const NAME: &str = "facegate-sim";
const MAC: &str = "02:fa:ce:00:00:01";

pub(super) async fn serve(
    stream: TcpStream,
    board: Arc<Board>,
    cfg: SimConfig,
) -> Result<(), EspError> {
    let mut wire = Wire::server(stream, cfg.key.as_ref(), NAME, MAC).await?;
    let mut changes = board.changes();
    let mut subscribed = false;
    let mut last_rx = Instant::now();
    let mut pinged: Option<Instant> = None;
    loop {
        let ping_at = match pinged {
            Some(at) => at + cfg.drop_after,
            None => last_rx + cfg.ping_after,
        };
        tokio::select! {
            r = wire.read() => {
                let raw = r?;
                last_rx = Instant::now();
                pinged = None;
                if !answer(&mut wire, &board, &raw, &mut subscribed).await? {
                    wire.shutdown().await;
                    return Ok(());
                }
                if raw.msg_type == msg::SUBSCRIBE_STATES_REQUEST {
                    changes = board.changes(); // dump first, then only what changes after it
                    for (k, s) in board.snapshot() {
                        send_state(&mut wire, k, &s).await?;
                    }
                }
            }
            c = changes.recv(), if subscribed => match c {
                Ok((k, s)) => send_state(&mut wire, k, &s).await?,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    for (k, s) in board.snapshot() { send_state(&mut wire, k, &s).await?; }
                }
                Err(_) => return Ok(()),
            },
            _ = tokio::time::sleep_until(ping_at.into()) => {
                if pinged.is_some() {
                    // The real device drops a client that stays silent after its ping.
                    wire.shutdown().await;
                    return Err(EspError::Timeout(cfg.drop_after));
                }
                pinged = Some(Instant::now());
                wire.write(msg::PING_REQUEST, &[]).await?;
            }
        }
    }
}

fn dec<M: Message + Default>(raw: &RawMessage) -> Result<M, EspError> {
    M::decode(raw.payload.as_slice()).map_err(|e| EspError::Decode {
        msg_type: raw.msg_type,
        reason: e.to_string(),
    })
}

/// Answers one message; `false` ends the connection.
async fn answer(
    wire: &mut Wire,
    board: &Arc<Board>,
    raw: &RawMessage,
    subscribed: &mut bool,
) -> Result<bool, EspError> {
    match raw.msg_type {
        msg::HELLO_REQUEST => {
            let m = proto::HelloResponse {
                api_version_major: msg::API_MAJOR,
                api_version_minor: msg::API_MINOR,
                server_info: format!("{NAME} (facegate simulated board)"),
                name: NAME.into(),
            };
            wire.write(msg::HELLO_RESPONSE, &m.encode_to_vec()).await?;
        }
        // Legacy password login (removed in ESPHome 2026.1): accept, there is no password.
        3 => {
            wire.write(
                4,
                &proto::AuthenticationResponse {
                    invalid_password: false,
                }
                .encode_to_vec(),
            )
            .await?
        }
        msg::DEVICE_INFO_REQUEST => {
            let m = proto::DeviceInfoResponse {
                name: NAME.into(),
                friendly_name: "Facegate simulated lock and lift".into(),
                mac_address: MAC.into(),
                esphome_version: "2026.6.5".into(),
                compilation_time: "simulated".into(),
                model: "facegate-sim".into(),
                manufacturer: "facegate".into(),
                api_encryption_supported: wire.encrypted(),
                ..Default::default()
            };
            wire.write(msg::DEVICE_INFO_RESPONSE, &m.encode_to_vec())
                .await?;
        }
        msg::LIST_ENTITIES_REQUEST => {
            for &(kind, name) in ENTITIES {
                let (ty, bytes) = listing(kind, name);
                wire.write(ty, &bytes).await?;
            }
            wire.write(msg::LIST_ENTITIES_DONE, &[]).await?;
        }
        msg::SUBSCRIBE_STATES_REQUEST => *subscribed = true,
        msg::LOCK_COMMAND => {
            let c: proto::LockCommandRequest = dec(raw)?;
            if c.key == key("Door lock") {
                board.set_lock(c.command != 1);
            }
        }
        msg::SELECT_COMMAND => {
            let c: proto::SelectCommandRequest = dec(raw)?;
            if c.key == key("Target floor") {
                if let Ok(f) = c.state.parse::<i32>() {
                    board.call(f);
                }
            }
        }
        msg::BUTTON_COMMAND => {
            let c: proto::ButtonCommandRequest = dec(raw)?;
            if let Some(f) = (0..FLOORS).find(|f| c.key == key(&format!("Call floor {f}"))) {
                board.call(f);
            }
        }
        msg::PING_REQUEST => wire.write(msg::PING_RESPONSE, &[]).await?,
        msg::DISCONNECT_REQUEST => {
            wire.write(msg::DISCONNECT_RESPONSE, &[]).await?;
            return Ok(false);
        }
        // Subscriptions to logs / HA services / HA states, time replies...: nothing to do for this board.
        other => tracing::debug!(msg_type = other, "simulated board ignores message"),
    }
    Ok(true)
}

fn listing(kind: EntityKind, name: &str) -> (u16, Vec<u8>) {
    let k = key(name);
    let n = name.to_string();
    match kind {
        EntityKind::Lock => (
            msg::LIST_LOCK,
            proto::ListEntitiesLockResponse {
                key: k,
                name: n,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        EntityKind::BinarySensor => (
            msg::LIST_BINARY_SENSOR,
            proto::ListEntitiesBinarySensorResponse {
                key: k,
                name: n,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        EntityKind::TextSensor => (
            msg::LIST_TEXT_SENSOR,
            proto::ListEntitiesTextSensorResponse {
                key: k,
                name: n,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        EntityKind::Sensor => (
            msg::LIST_SENSOR,
            proto::ListEntitiesSensorResponse {
                key: k,
                name: n,
                accuracy_decimals: 0,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        EntityKind::Select => (
            msg::LIST_SELECT,
            proto::ListEntitiesSelectResponse {
                key: k,
                name: n,
                options: (0..FLOORS).map(|f| f.to_string()).collect(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        EntityKind::Button => (
            msg::LIST_BUTTON,
            proto::ListEntitiesButtonResponse {
                key: k,
                name: n,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        EntityKind::Switch => (
            msg::LIST_SWITCH,
            proto::ListEntitiesSwitchResponse {
                key: k,
                name: n,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
    }
}

async fn send_state(wire: &mut Wire, k: u32, s: &EntityState) -> Result<(), EspError> {
    let select = k == key("Target floor");
    let (ty, bytes) = match s {
        EntityState::Lock(l) => (
            msg::LOCK_STATE,
            proto::LockStateResponse {
                key: k,
                state: l.to_wire(),
                device_id: 0,
            }
            .encode_to_vec(),
        ),
        EntityState::Binary(b) => (
            msg::BINARY_SENSOR_STATE,
            proto::BinarySensorStateResponse {
                key: k,
                state: *b,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        EntityState::Number(v) => (
            msg::SENSOR_STATE,
            proto::SensorStateResponse {
                key: k,
                state: *v,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        EntityState::Text(t) if select => (
            msg::SELECT_STATE,
            proto::SelectStateResponse {
                key: k,
                state: t.clone(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        EntityState::Text(t) => (
            msg::TEXT_SENSOR_STATE,
            proto::TextSensorStateResponse {
                key: k,
                state: t.clone(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        EntityState::Missing => return Ok(()),
    };
    wire.write(ty, &bytes).await
}
