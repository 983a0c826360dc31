//! ESPHome: facegate as a native-API client of the door-lock and lift boards, and a simulated board.
//!
//! Home Assistant adopts the boards through its ESPHome integration; facegate connects to the same boards so a
//! granted face acts at once (no round trip through HA) and so it can read the lift's floor.
//!
//! - [`frame`]: the wire framing (plaintext varint frames, Noise frames), a pure parser over bytes.
//! - [`noise`]: the Noise_NNpsk0_25519_ChaChaPoly_SHA256 handshake (initiator and responder).
//! - [`wire`]: one framed, optionally encrypted, async connection (used by the client and the simulator).
//! - [`msg`]: message type numbers and decoding into the crate's generated protobuf types.
//! - [`entities`]: object ids derived from names, entity keys, entity descriptions and states.
//! - [`client`]: one long-lived connection per board: hello, device info, entity list, state subscription,
//!   pings both ways, reconnect with backoff (re-listing and re-subscribing), commands with deadlines.
//! - [`driver`]: the lock and lift drivers acting on [`crate::decide::Action`]s, and their audited outcome.
//! - [`sim`]: a simulated lock + lift board speaking the same protocol (tests, `facegate demo`).
//! - [`cli`]: the `facegate esphome ...` debug commands.

pub mod cli;
pub mod client;
pub mod driver;
pub mod entities;
pub mod frame;
pub mod msg;
pub mod noise;
pub mod sim;
pub mod wire;

pub use client::{BoardConfig, Client, Command, LinkStatus};
pub use driver::{ActionOutcome, DriverAction, GateActuator, LiftDriver, LockDriver, OutcomeKind};
pub use entities::{object_id_from_name, Entity, EntityKind, EntityState};
pub use frame::FrameError;

/// Everything that can go wrong talking to a board. One enum for the whole ESPHome boundary.
#[derive(Debug, thiserror::Error)]
pub enum EspError {
    #[error("cannot reach board {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("i/o error on the board connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad frame from the board: {0}")]
    Frame(#[from] FrameError),
    #[error("board closed the connection")]
    Closed,
    #[error("the board requires encryption: configure its API encryption key")]
    RequiresEncryption,
    #[error("the board speaks plaintext but an encryption key was configured: remove the key")]
    DeviceIsPlaintext,
    #[error("encryption handshake failed: {0} (wrong encryption key?)")]
    Handshake(String),
    #[error("invalid encryption key: {0} (expected 32 bytes in base64, as ESPHome prints it)")]
    BadKey(String),
    #[error("cannot decode message type {msg_type}: {reason}")]
    Decode { msg_type: u16, reason: String },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("no answer from the board within {0:?}")]
    Timeout(std::time::Duration),
    #[error("no entity {0:?} on the board")]
    NoSuchEntity(String),
    #[error("the client has been shut down")]
    Shutdown,
    #[error("connection aborted (reset): {0}")]
    Aborted(String),
}
