//! The service configuration (`facegate run`, the add-on's options): cameras, gates, access levels, MQTT,
//! storage, HTTP. Every struct rejects unknown keys; [`ServiceConfig::validate`] checks what serde cannot and
//! names the offending option in each message.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::decide::AccessLevel;

use super::{Secret, VisionConfig};

/// Everything `facegate run` needs.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    pub mqtt: MqttConfig,
    pub cameras: Vec<CameraConfig>,
    pub gates: Vec<GateConfig>,
    pub access_levels: Vec<AccessLevel>,
    pub vision: VisionConfig,
    pub liveness: LivenessConfig,
    pub storage: StorageConfig,
    pub http: HttpConfig,
}

/// The MQTT broker Home Assistant listens on. An empty host means "ask the Supervisor" in the add-on.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: Secret,
    /// CA certificate (PEM) to verify the broker with; enables TLS.
    pub ca_file: Option<PathBuf>,
    /// Home Assistant's discovery prefix.
    pub discovery_prefix: String,
    /// Root of facegate's own topics: `<base_topic>/<device>/...`.
    pub base_topic: String,
    /// Access events that could not be sent while the broker was unreachable are delivered after the
    /// reconnect if at most this old, otherwise dropped (and counted in the log).
    pub event_max_age_s: u32,
    /// A person's Home Assistant device tracker goes `not_home` this long after their last recognition.
    pub away_after_s: u32,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 1883,
            username: String::new(),
            password: Secret::default(),
            ca_file: None,
            discovery_prefix: "homeassistant".into(),
            base_topic: "facegate".into(),
            event_max_age_s: 300,
            away_after_s: 600,
        }
    }
}

/// One camera and the gate it watches.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// Name shown in Home Assistant ("Front door").
    pub name: String,
    /// Where frames come from.
    pub source: SourceConfig,
    /// The gate (by name) this camera controls.
    pub gate: String,
}

/// A frame source (see `capture`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    /// A V4L2 device such as `/dev/video0`.
    V4l2 {
        device: PathBuf,
        #[serde(default = "default_width")]
        width: u32,
        #[serde(default = "default_height")]
        height: u32,
        #[serde(default = "default_fps")]
        fps: u32,
    },
    /// An HTTP MJPEG stream or a JPEG snapshot URL (ESP32-CAM style). `fps` paces snapshot URLs; a stream
    /// comes at the camera's own rate.
    Http {
        url: String,
        #[serde(default = "default_fps")]
        fps: u32,
    },
    /// A folder of images (name order) or an MJPEG file, played at `fps`.
    Replay {
        path: PathBuf,
        #[serde(default = "default_fps")]
        fps: u32,
        #[serde(default)]
        looped: bool,
    },
}

fn default_width() -> u32 {
    640
}
fn default_height() -> u32 {
    480
}
fn default_fps() -> u32 {
    10
}

/// A door or a lift: the ESPHome board facegate drives when access is granted there.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    pub name: String,
    /// The ESPHome board; none (or `{}`, as the add-on's form leaves it) means decisions are only published
    /// (Home Assistant acts).
    #[serde(default, with = "empty_is_none")]
    pub board: Option<BoardConfig>,
    /// Object id of the `lock` entity to unlock on a grant.
    #[serde(default)]
    pub lock: Option<String>,
    /// The lift driven on a grant; none or `{}` = no lift.
    #[serde(default, with = "empty_is_none")]
    pub lift: Option<LiftConfig>,
}

/// How to reach an ESPHome board over the native API.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BoardConfig {
    pub host: String,
    #[serde(default = "default_api_port")]
    pub port: u16,
    /// The board's API encryption key (32 bytes, base64), as in its ESPHome YAML. Empty = plaintext.
    #[serde(default)]
    pub encryption_key: Secret,
}

fn default_api_port() -> u16 {
    6053
}

/// The lift's entities on its board and its floors.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LiftConfig {
    /// Object id of the `select` that sets the target floor.
    pub target_floor: String,
    /// Object id of the `sensor` reporting the current floor.
    pub current_floor: String,
    /// The floors the lift serves, lowest first.
    pub floors: Vec<i32>,
}

/// How liveness is decided for a track.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LivenessConfig {
    /// Require a blink (closure then reopening) before a grant.
    pub require_blink: bool,
    /// Window in which the blink must be seen, seconds.
    pub blink_window_s: f32,
    /// Frames of passive anti-spoof evidence to fuse before deciding.
    pub min_frames: u32,
    /// Seconds before the same person can trigger another decision at the same gate.
    pub cooldown_s: f32,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        Self {
            require_blink: false,
            blink_window_s: 5.0,
            min_frames: 3,
            cooldown_s: 10.0,
        }
    }
}

/// Where facegate keeps its data.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// SQLite database (people, embeddings, settings, audit log).
    pub database: PathBuf,
    /// Days an audit row is kept.
    pub audit_retention_days: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            database: PathBuf::from("/data/facegate.db"),
            audit_retention_days: 90,
        }
    }
}

/// The HTTP server (live view, snapshot, enrollment upload).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub port: u16,
    /// Bearer token for everything but /health; empty = only reachable through the add-on's ingress.
    pub token: Secret,
    /// Peer addresses trusted as Home Assistant's ingress proxy: requests from them need no token (HA has
    /// already authenticated the user). Default: only the Supervisor, 172.30.32.2. Single addresses, not
    /// networks: port-mapped connections from the LAN also arrive from the add-on network (its gateway).
    pub ingress_peers: Vec<IpAddr>,
    /// Largest enrollment upload accepted, in megabytes (refused while it streams in, not after).
    pub max_upload_mb: u32,
}

/// The Supervisor's address on the add-on network, where ingress requests come from.
pub const SUPERVISOR_INGRESS_PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(172, 30, 32, 2));

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            port: 8099,
            token: Secret::default(),
            ingress_peers: vec![SUPERVISOR_INGRESS_PEER],
            max_upload_mb: 20,
        }
    }
}

/// A configuration problem, naming the option.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("option {option}: {problem}")]
pub struct ConfigError {
    /// Path of the option, e.g. `gates[1].board.encryption_key`.
    pub option: String,
    pub problem: String,
}

fn err(option: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        option: option.into(),
        problem: problem.into(),
    }
}

impl ServiceConfig {
    /// Parses options JSON (the add-on's `/data/options.json`), then validates it. A value of the wrong type or
    /// an unknown key is reported at its path (`mqtt.port`, `cameras[0].source`); broken JSON as `(options)`
    /// with its line and column.
    pub fn from_json(text: &str) -> Result<Self, Vec<ConfigError>> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| vec![err("(options)", e.to_string())])?;
        // From a Value, serde's messages carry no line/column: the path says where.
        let cfg: Self = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            vec![serde_problem(&path, &e.into_inner().to_string())]
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Everything serde cannot check: references between sections, ranges, key formats. All problems at once.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        let (v, l) = (&self.vision, &self.liveness);
        // The same ranges as the add-on's schema (config.yaml; tests/addon_manifest.rs keeps them in step).
        for (name, value, lo, hi) in [
            ("vision.detect_threshold", v.detect_threshold, 0.05, 1.0),
            ("vision.match_threshold", v.match_threshold, 0.1, 1.2),
            (
                "vision.antispoof_threshold",
                v.antispoof_threshold,
                0.0,
                1.0,
            ),
            ("liveness.blink_window_s", l.blink_window_s, 0.5, 60.0),
            ("liveness.cooldown_s", l.cooldown_s, 0.0, 3600.0),
        ] {
            in_range(name.into(), value, lo, hi, &mut errors);
        }
        for (name, value, lo, hi) in [
            ("vision.threads", v.threads as i64, 0, 64),
            ("liveness.min_frames", l.min_frames.into(), 1, 100),
            (
                "storage.audit_retention_days",
                self.storage.audit_retention_days.into(),
                1,
                3650,
            ),
            ("mqtt.port", self.mqtt.port.into(), 1, 65535),
            ("http.port", self.http.port.into(), 1, 65535),
            (
                "mqtt.event_max_age_s",
                self.mqtt.event_max_age_s.into(),
                0,
                3600,
            ),
            (
                "mqtt.away_after_s",
                self.mqtt.away_after_s.into(),
                10,
                86400,
            ),
        ] {
            in_range(name.into(), value, lo, hi, &mut errors);
        }
        for (i, cam) in self.cameras.iter().enumerate() {
            let at = |field: &str| format!("cameras[{i}].source.{field}");
            match &cam.source {
                SourceConfig::V4l2 {
                    width, height, fps, ..
                } => {
                    in_range(at("width"), i64::from(*width), 16, 7680, &mut errors);
                    in_range(at("height"), i64::from(*height), 16, 4320, &mut errors);
                    in_range(at("fps"), i64::from(*fps), 1, 60, &mut errors);
                }
                SourceConfig::Replay { fps, .. } | SourceConfig::Http { fps, .. } => {
                    in_range(at("fps"), i64::from(*fps), 1, 60, &mut errors)
                }
            }
        }
        if self.cameras.is_empty() {
            errors.push(err(
                "cameras",
                "is empty; add at least one camera: a name, the gate it watches and a source (e.g. type v4l2, device /dev/video0)",
            ));
        }
        let gates = unique_names(
            "gates",
            self.gates.iter().map(|g| g.name.as_str()),
            &mut errors,
        );
        unique_names(
            "cameras",
            self.cameras.iter().map(|c| c.name.as_str()),
            &mut errors,
        );
        unique_names(
            "access_levels",
            self.access_levels.iter().map(|l| l.name.as_str()),
            &mut errors,
        );
        for (i, cam) in self.cameras.iter().enumerate() {
            if !gates.contains(cam.gate.as_str()) {
                errors.push(err(
                    format!("cameras[{i}].gate"),
                    format!("no gate named '{}' in gates", cam.gate),
                ));
            }
        }
        for (i, gate) in self.gates.iter().enumerate() {
            if let Some(board) = &gate.board {
                let port = i64::from(board.port);
                in_range(
                    format!("gates[{i}].board.port"),
                    port,
                    1,
                    65535,
                    &mut errors,
                );
                if board.host.trim().is_empty() {
                    errors.push(err(
                        format!("gates[{i}].board.host"),
                        "is empty; give the board's host name or IP",
                    ));
                }
                if !board.encryption_key.is_empty() && !is_noise_key(board.encryption_key.expose())
                {
                    errors.push(err(
                        format!("gates[{i}].board.encryption_key"),
                        "is not a base64 encoding of 32 bytes (copy api: encryption: key from the board's YAML)",
                    ));
                }
            }
            if (gate.lock.is_some() || gate.lift.is_some()) && gate.board.is_none() {
                errors.push(err(
                    format!("gates[{i}].board"),
                    "a lock or lift needs the board it is on",
                ));
            }
            if let Some(lift) = &gate.lift {
                if lift.floors.is_empty() {
                    errors.push(err(
                        format!("gates[{i}].lift.floors"),
                        "is empty; list the floors the lift serves",
                    ));
                }
            }
        }
        if !(1..=100).contains(&self.http.max_upload_mb) {
            errors.push(err(
                "http.max_upload_mb",
                format!(
                    "{} is out of range, expected 1..=100",
                    self.http.max_upload_mb
                ),
            ));
        }
        for (i, level) in self.access_levels.iter().enumerate() {
            for g in &level.gates {
                if !gates.contains(g.as_str()) {
                    errors.push(err(
                        format!("access_levels[{i}].gates"),
                        format!("no gate named '{g}' in gates"),
                    ));
                }
            }
        }
        // Schedules ("Mon-Fri 08:00-18:00") are parsed by the policy; a typo fails here, naming the option.
        if let Err(schedule_errors) = self.policy() {
            errors.extend(schedule_errors);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// A serde message in the user's terms: a missing field is named as the option itself, Rust type names become
/// plain words.
fn serde_problem(path: &str, message: &str) -> ConfigError {
    let at = |field: &str| match path {
        "." => field.to_string(),
        p => format!("{p}.{field}"),
    };
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'))
    {
        return err(at(field), "is missing");
    }
    let mut problem = message.to_string();
    for (rust, words) in [
        ("expected u16", "expected a whole number from 0 to 65535"),
        ("expected u32", "expected a whole number, 0 or more"),
        ("expected usize", "expected a whole number, 0 or more"),
        ("expected i32", "expected a whole number"),
        ("expected f32", "expected a number"),
        ("expected a boolean", "expected true or false"),
    ] {
        problem = problem.replace(rust, words);
    }
    err(if path == "." { "(options)" } else { path }, problem)
}

/// Pushes an error naming `option` when `value` is outside `lo..=hi`.
fn in_range<T: PartialOrd + Copy + std::fmt::Display>(
    option: String,
    value: T,
    lo: T,
    hi: T,
    errors: &mut Vec<ConfigError>,
) {
    if !(lo..=hi).contains(&value) {
        errors.push(err(
            option,
            format!("{value} is out of range, expected {lo}..={hi}"),
        ));
    }
}

fn unique_names<'a>(
    section: &str,
    names: impl Iterator<Item = &'a str>,
    errors: &mut Vec<ConfigError>,
) -> HashSet<&'a str> {
    let mut seen = HashSet::new();
    for (i, name) in names.enumerate() {
        if name.trim().is_empty() {
            errors.push(err(format!("{section}[{i}].name"), "is empty"));
        } else if !seen.insert(name) {
            errors.push(err(
                format!("{section}[{i}].name"),
                format!("'{name}' is used twice"),
            ));
        }
    }
    seen
}

/// Whether `key` is standard base64 of exactly 32 bytes (ESPHome's Noise PSK).
fn is_noise_key(key: &str) -> bool {
    use base64::Engine;
    matches!(base64::engine::general_purpose::STANDARD.decode(key.trim()), Ok(b) if b.len() == 32)
}

/// `Option<T>` where an empty map also means none: the add-on's Supervisor requires every nested section to be
/// present, so a gate without a board carries `board: {}`. Serialises none as `{}` for the same reason.
mod empty_is_none {
    use serde::de::{DeserializeOwned, Error};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    pub fn deserialize<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: DeserializeOwned,
    {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) if m.is_empty() => Ok(None),
            Some(v) => T::deserialize(v).map(Some).map_err(D::Error::custom),
        }
    }

    pub fn serialize<S, T>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        T: Serialize,
    {
        match v {
            Some(t) => t.serialize(s),
            None => serde_json::Map::new().serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_board_or_lift_is_none_and_none_is_written_as_empty() {
        let gate: GateConfig =
            serde_json::from_str(r#"{"name": "Door", "board": {}, "lift": {}}"#).unwrap();
        assert_eq!((gate.board.clone(), gate.lift.clone()), (None, None));
        let back = serde_json::to_value(&gate).unwrap();
        assert_eq!(back["board"], serde_json::json!({}));
        assert_eq!(back["lift"], serde_json::json!({}));
        let bad = serde_json::from_str::<GateConfig>(r#"{"name": "Door", "board": {"prot": 1}}"#);
        assert!(bad
            .unwrap_err()
            .to_string()
            .contains("unknown field `prot`"));
    }

    #[test]
    fn serde_messages_name_the_missing_option_in_plain_words() {
        let e = serde_problem("cameras[0].source", "missing field `device`");
        assert_eq!(e.to_string(), "option cameras[0].source.device: is missing");
        let e = serde_problem(".", "missing field `x`");
        assert_eq!(e.option, "x");
        let e = serde_problem("http.port", "invalid type: string \"a\", expected u16");
        assert_eq!(
            e.problem,
            "invalid type: string \"a\", expected a whole number from 0 to 65535"
        );
    }

    #[test]
    fn no_camera_and_out_of_range_numbers_are_refused() {
        let errs = ServiceConfig::default().validate().unwrap_err();
        let options: Vec<&str> = errs.iter().map(|e| e.option.as_str()).collect();
        assert_eq!(options, ["cameras"]);
        let mut cfg = ServiceConfig::default();
        cfg.liveness.cooldown_s = -1.0;
        cfg.storage.audit_retention_days = 0;
        let errs = cfg.validate().unwrap_err();
        let options: Vec<&str> = errs.iter().map(|e| e.option.as_str()).collect();
        assert_eq!(
            options,
            [
                "liveness.cooldown_s",
                "storage.audit_retention_days",
                "cameras"
            ]
        );
    }
}
