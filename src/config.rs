//! facegate's configuration: options, defaults and validation.
//!
//! The add-on's `config.yaml` options map one-to-one onto these structs; unknown keys are rejected.

use std::path::Path;

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
mod secret;
mod service;

pub use secret::Secret;
pub use service::{
    AccessLevel, BoardConfig, CameraConfig, ConfigError, GateConfig, HttpConfig, LiftConfig,
    LivenessConfig, MqttConfig, ServiceConfig, SourceConfig, StorageConfig,
};

impl ServiceConfig {
    /// Reads options JSON from a file (the add-on's `/data/options.json`) and validates it; an unreadable file is
    /// reported as the option `(options)`.
    pub fn from_file(path: &Path) -> Result<Self, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError {
                option: "(options)".into(),
                problem: format!("cannot read {}: {e}", path.display()),
            }]
        })?;
        Self::from_json(&text)
    }
}

/// What a user sees when options are refused: the file, then one line per problem, each naming its option.
pub fn explain(path: &Path, errors: &[ConfigError]) -> String {
    let mut text = format!(
        "invalid options in {} ({} problem{}):",
        path.display(),
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for e in errors {
        text.push_str(&format!("\n  {e}"));
    }
    text
}
