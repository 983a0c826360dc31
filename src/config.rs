//! facegate's configuration: options, defaults and validation.
//!
//! The add-on's `config.yaml` options map one-to-one onto these structs; unknown keys are rejected.

use serde::{Deserialize, Serialize};

/// Settings of the vision stage.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VisionConfig {
    /// Threads for inference (0 = all cores).
    pub threads: usize,
    /// Minimum detector score for a face.
    pub detect_threshold: f32,
    /// Largest Euclidean embedding distance that can count as a match.
    pub match_threshold: f32,
    /// Minimum anti-spoof probability for a face to count as live.
    pub antispoof_threshold: f32,
}

impl Default for VisionConfig {
    fn default() -> Self {
        Self {
            threads: 0,
            detect_threshold: crate::vision::detect::DEFAULT_SCORE_THRESHOLD,
            match_threshold: crate::gallery::matcher::DEFAULT_THRESHOLD,
            antispoof_threshold: 0.5,
        }
    }
}

mod convert;
mod load;
mod secret;
mod service;

pub use load::{explain, load_options, OptionsError};
pub use secret::Secret;
pub use service::{
    AccessLevel, BoardConfig, CameraConfig, ConfigError, GateConfig, HttpConfig, LiftConfig,
    LivenessConfig, MqttConfig, ServiceConfig, SourceConfig, StorageConfig,
};
