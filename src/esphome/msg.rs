//! Message type numbers (from ESPHome's `api.proto` `(id)` options) for the messages facegate uses, and
//! decoding of what a board sends into the `esphome-native-api` crate's generated protobuf types. Types we do
//! not use decode to [`Incoming::Other`]: a newer board may send messages we do not know, which is not an error.

use esphome_native_api::proto;
use prost::Message;

use super::frame::RawMessage;
use super::EspError;

pub const HELLO_REQUEST: u16 = 1;
pub const HELLO_RESPONSE: u16 = 2;
pub const DISCONNECT_REQUEST: u16 = 5;
pub const DISCONNECT_RESPONSE: u16 = 6;
pub const PING_REQUEST: u16 = 7;
pub const PING_RESPONSE: u16 = 8;
pub const DEVICE_INFO_REQUEST: u16 = 9;
pub const DEVICE_INFO_RESPONSE: u16 = 10;
pub const LIST_ENTITIES_REQUEST: u16 = 11;
pub const LIST_BINARY_SENSOR: u16 = 12;
pub const LIST_SENSOR: u16 = 16;
pub const LIST_SWITCH: u16 = 17;
pub const LIST_TEXT_SENSOR: u16 = 18;
pub const LIST_ENTITIES_DONE: u16 = 19;
pub const SUBSCRIBE_STATES_REQUEST: u16 = 20;
pub const BINARY_SENSOR_STATE: u16 = 21;
pub const SENSOR_STATE: u16 = 25;
pub const SWITCH_STATE: u16 = 26;
pub const TEXT_SENSOR_STATE: u16 = 27;
pub const SUBSCRIBE_LOGS_RESPONSE: u16 = 29;
pub const GET_TIME_REQUEST: u16 = 36;
pub const LIST_SELECT: u16 = 52;
pub const SELECT_STATE: u16 = 53;
pub const SELECT_COMMAND: u16 = 54;
pub const LIST_LOCK: u16 = 58;
pub const LOCK_STATE: u16 = 59;
pub const LOCK_COMMAND: u16 = 60;
pub const LIST_BUTTON: u16 = 61;
pub const BUTTON_COMMAND: u16 = 62;

/// The API version facegate speaks (2026.6 boards speak 1.14; >= 1.14 means no `object_id` in listings).
pub const API_MAJOR: u32 = 1;
pub const API_MINOR: u32 = 14;

/// A message from a board, decoded.
#[derive(Debug, Clone)]
pub enum Incoming {
    Hello(proto::HelloResponse),
    DeviceInfo(Box<proto::DeviceInfoResponse>),
    ListBinarySensor(proto::ListEntitiesBinarySensorResponse),
    ListSensor(proto::ListEntitiesSensorResponse),
    ListSwitch(proto::ListEntitiesSwitchResponse),
    ListTextSensor(proto::ListEntitiesTextSensorResponse),
    ListSelect(proto::ListEntitiesSelectResponse),
    ListLock(proto::ListEntitiesLockResponse),
    ListButton(proto::ListEntitiesButtonResponse),
    ListDone,
    BinarySensorState(proto::BinarySensorStateResponse),
    SensorState(proto::SensorStateResponse),
    SwitchState(proto::SwitchStateResponse),
    TextSensorState(proto::TextSensorStateResponse),
    SelectState(proto::SelectStateResponse),
    LockState(proto::LockStateResponse),
    PingRequest,
    PingResponse,
    DisconnectRequest,
    DisconnectResponse,
    /// A message type facegate does not use (entities of other kinds, logs, time requests...).
    Other(u16),
}

fn dec<M: Message + Default>(raw: &RawMessage) -> Result<M, EspError> {
    M::decode(raw.payload.as_slice()).map_err(|e| EspError::Decode {
        msg_type: raw.msg_type,
        reason: e.to_string(),
    })
}

impl Incoming {
    /// Decodes a board's message. Errors only for a known type whose bytes are not valid protobuf.
    pub fn decode(raw: &RawMessage) -> Result<Incoming, EspError> {
        use Incoming as I;
        Ok(match raw.msg_type {
            HELLO_RESPONSE => I::Hello(dec(raw)?),
            DEVICE_INFO_RESPONSE => I::DeviceInfo(Box::new(dec(raw)?)),
            LIST_BINARY_SENSOR => I::ListBinarySensor(dec(raw)?),
            LIST_SENSOR => I::ListSensor(dec(raw)?),
            LIST_SWITCH => I::ListSwitch(dec(raw)?),
            LIST_TEXT_SENSOR => I::ListTextSensor(dec(raw)?),
            LIST_SELECT => I::ListSelect(dec(raw)?),
            LIST_LOCK => I::ListLock(dec(raw)?),
            LIST_BUTTON => I::ListButton(dec(raw)?),
            LIST_ENTITIES_DONE => I::ListDone,
            BINARY_SENSOR_STATE => I::BinarySensorState(dec(raw)?),
            SENSOR_STATE => I::SensorState(dec(raw)?),
            SWITCH_STATE => I::SwitchState(dec(raw)?),
            TEXT_SENSOR_STATE => I::TextSensorState(dec(raw)?),
            SELECT_STATE => I::SelectState(dec(raw)?),
            LOCK_STATE => I::LockState(dec(raw)?),
            PING_REQUEST => I::PingRequest,
            PING_RESPONSE => I::PingResponse,
            DISCONNECT_REQUEST => I::DisconnectRequest,
            DISCONNECT_RESPONSE => I::DisconnectResponse,
            other => I::Other(other),
        })
    }
}

/// Encodes a protobuf message for sending.
pub fn encode<M: Message>(m: &M) -> Vec<u8> {
    m.encode_to_vec()
}
