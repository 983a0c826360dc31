//! The one way options are loaded: `facegate run`, `facegate config check` and `facegate replay --options`
//! read the file, parse and validate it here, and show a refusal the same way (the file, then one line per
//! problem, each naming its option).

use std::path::{Path, PathBuf};

use super::{ConfigError, ServiceConfig};

/// Options that cannot be used: which file, and every problem found in it.
#[derive(Debug, PartialEq)]
pub struct OptionsError {
    pub path: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl std::fmt::Display for OptionsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&explain(&self.path, &self.errors))
    }
}

impl std::error::Error for OptionsError {}

/// Reads the options file (the add-on's `/data/options.json`) and validates it.
pub fn load_options(path: &Path) -> Result<ServiceConfig, OptionsError> {
    ServiceConfig::from_file(path).map_err(|errors| OptionsError {
        path: path.to_path_buf(),
        errors,
    })
}

impl ServiceConfig {
    /// Reads options JSON from a file and validates it; an unreadable file is reported as the option
    /// `(options)`.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_file_and_every_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("options.json");
        std::fs::write(&path, r#"{"mqtt": {"port": 0, "colour": 1}}"#).unwrap();
        let e = load_options(&path).unwrap_err();
        assert_eq!(e.path, path);
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("invalid options in {} (", path.display())),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1 + e.errors.len(), "{text}");
        assert!(text.contains("mqtt.colour"), "{text}");
        let missing = load_options(&dir.path().join("none.json")).unwrap_err();
        assert_eq!(missing.errors[0].option, "(options)");
        let good = r#"{"cameras": [{"name": "Door", "gate": "front",
            "source": {"type": "v4l2", "device": "/dev/video0"}}], "gates": [{"name": "front"}]}"#;
        std::fs::write(&path, good).unwrap();
        assert_eq!(load_options(&path).unwrap().cameras[0].name, "Door");
    }
}
