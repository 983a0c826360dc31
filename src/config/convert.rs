//! What the options become in the modules that use them. Those modules own their own types and never import
//! `config` (no import cycles): the policy takes [`AccessLevel`]s and [`GateActions`], the face analyzer its
//! [`AnalyzerOptions`]; this file converts, and names the option of anything the conversion refuses.

use super::{ConfigError, GateConfig, ServiceConfig, VisionConfig};
use crate::decide::{AccessLevel, GateActions, Policy, ScheduleError};
use crate::vision::AnalyzerOptions;

impl GateConfig {
    /// What the gate does on a grant: its lock, and the floors of its lift.
    pub fn actions(&self) -> GateActions {
        GateActions {
            name: self.name.clone(),
            lock: self.lock.clone(),
            floors: self.lift.as_ref().map(|l| l.floors.clone()),
        }
    }
}

impl ServiceConfig {
    /// The access policy of the options; every bad schedule string is a [`ConfigError`] naming its option.
    pub fn policy(&self) -> Result<Policy, Vec<ConfigError>> {
        policy(&self.access_levels, &self.gates)
    }
}

impl Policy {
    /// The policy of the options (as [`ServiceConfig::policy`]). Defined here, beside the options, so that
    /// `decide` does not depend on `config`.
    pub fn from_config(config: &ServiceConfig) -> Result<Self, Vec<ConfigError>> {
        config.policy()
    }
}

fn policy(levels: &[AccessLevel], gates: &[GateConfig]) -> Result<Policy, Vec<ConfigError>> {
    let gates: Vec<GateActions> = gates.iter().map(GateConfig::actions).collect();
    Policy::new(levels, &gates).map_err(|errors| errors.into_iter().map(schedule_error).collect())
}

fn schedule_error(e: ScheduleError) -> ConfigError {
    ConfigError {
        option: format!("access_levels[{}].schedule[{}]", e.level, e.window),
        problem: e.problem,
    }
}

impl From<&VisionConfig> for AnalyzerOptions {
    fn from(v: &VisionConfig) -> Self {
        AnalyzerOptions {
            detect_threshold: v.detect_threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BoardConfig, LiftConfig};

    #[test]
    fn service_options_with_a_bad_schedule_are_refused_naming_it() {
        let errs = ServiceConfig::from_json(
            r#"{"access_levels": [{"name": "guest", "actuate": true, "schedule": ["Mon-Fri 08:00-18:00", "Sun 9-5"]}]}"#,
        )
        .unwrap_err();
        // (Other problems of this minimal config, such as having no camera, are reported alongside.)
        let schedule: Vec<String> = errs
            .iter()
            .filter(|e| e.option.contains("schedule"))
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            schedule,
            vec!["option access_levels[0].schedule[1]: 'Sun 9-5': '9' is not a time like 08:30"]
        );
    }

    #[test]
    fn gates_become_their_actions() {
        let board = Some(BoardConfig {
            host: "b".into(),
            port: 6053,
            encryption_key: Default::default(),
        });
        let lift = GateConfig {
            name: "lift".into(),
            board,
            lock: None,
            lift: Some(LiftConfig {
                target_floor: "target".into(),
                current_floor: "current".into(),
                floors: vec![0, 1],
            }),
        };
        assert_eq!(
            lift.actions(),
            GateActions {
                name: "lift".into(),
                lock: None,
                floors: Some(vec![0, 1]),
            }
        );
    }

    #[test]
    fn the_analyzer_gets_the_detector_threshold() {
        let v = VisionConfig {
            detect_threshold: 0.7,
            ..VisionConfig::default()
        };
        assert_eq!(AnalyzerOptions::from(&v).detect_threshold, 0.7);
    }
}
