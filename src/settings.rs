//! Live settings: the knobs Home Assistant can turn while facegate runs (the old hot-reloaded JSON config).
//!
//! They start from the options ([`LiveSettings::from_config`]), are overridden by the values persisted in
//! SQLite after a change from Home Assistant, and are read by the pipeline on every frame through a
//! [`SettingsHandle`], so a change takes effect at once.

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::config::ServiceConfig;

/// The values, with their valid ranges in [`LiveSettings::validate`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveSettings {
    /// Privacy pause: when false, frames are not analysed at all.
    pub recognition_enabled: bool,
    /// Require a blink before a grant.
    pub require_blink: bool,
    /// Largest embedding distance that counts as a match.
    pub match_threshold: f32,
    /// Minimum fused anti-spoof probability for a live face.
    pub antispoof_threshold: f32,
}

/// Valid range of [`LiveSettings::match_threshold`].
pub const MATCH_THRESHOLD_RANGE: (f32, f32) = (0.3, 0.7);
/// Valid range of [`LiveSettings::antispoof_threshold`].
pub const ANTISPOOF_THRESHOLD_RANGE: (f32, f32) = (0.05, 0.99);

/// A setting value that was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("setting {setting}: {problem}")]
pub struct SettingError {
    pub setting: &'static str,
    pub problem: String,
}

impl LiveSettings {
    pub fn from_config(config: &ServiceConfig) -> Self {
        Self {
            recognition_enabled: true,
            require_blink: config.liveness.require_blink,
            match_threshold: config.vision.match_threshold,
            antispoof_threshold: config.vision.antispoof_threshold,
        }
    }

    /// Checks every value against its range.
    pub fn validate(&self) -> Result<(), SettingError> {
        check_range(
            "match_threshold",
            self.match_threshold,
            MATCH_THRESHOLD_RANGE,
        )?;
        check_range(
            "antispoof_threshold",
            self.antispoof_threshold,
            ANTISPOOF_THRESHOLD_RANGE,
        )
    }
}

fn check_range(setting: &'static str, v: f32, (lo, hi): (f32, f32)) -> Result<(), SettingError> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(SettingError {
            setting,
            problem: format!("{v} is outside {lo}..={hi}"),
        })
    }
}

/// Shared, cheaply clonable access to the current settings.
#[derive(Clone, Debug)]
pub struct SettingsHandle(Arc<RwLock<LiveSettings>>);

impl SettingsHandle {
    pub fn new(settings: LiveSettings) -> Self {
        Self(Arc::new(RwLock::new(settings)))
    }

    /// A copy of the current values.
    pub fn get(&self) -> LiveSettings {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Applies `change` if the result is valid; otherwise leaves the settings untouched.
    pub fn update(
        &self,
        change: impl FnOnce(&mut LiveSettings),
    ) -> Result<LiveSettings, SettingError> {
        let mut guard = self.0.write().unwrap_or_else(|e| e.into_inner());
        let mut next = guard.clone();
        change(&mut next);
        next.validate()?;
        *guard = next.clone();
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_update_is_refused_and_keeps_old_value() {
        let h = SettingsHandle::new(LiveSettings::from_config(&ServiceConfig::default()));
        let before = h.get();
        let err = h.update(|s| s.match_threshold = 0.9).unwrap_err();
        assert_eq!(err.setting, "match_threshold");
        assert_eq!(h.get(), before);
        let err = h.update(|s| s.antispoof_threshold = f32::NAN).unwrap_err();
        assert_eq!(err.setting, "antispoof_threshold");
        let after = h.update(|s| s.match_threshold = 0.45).unwrap();
        assert_eq!(after.match_threshold, 0.45);
        assert_eq!(h.get().match_threshold, 0.45);
    }
}
