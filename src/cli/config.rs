//! `facegate config check`: the options are validated exactly as `facegate run` does at start, so the add-on's
//! start script (and a user) can see every problem, each naming its option, before anything connects.

use std::path::Path;
use std::process::ExitCode;

use crate::config::{explain, ServiceConfig};

/// Prints a one-line summary when the options are valid; otherwise every problem on stderr and exit code 1.
pub fn check(path: &Path) -> anyhow::Result<ExitCode> {
    match ServiceConfig::from_file(path) {
        Ok(cfg) => {
            println!(
                "options OK: {} camera(s), {} gate(s), {} access level(s)",
                cfg.cameras.len(),
                cfg.gates.len(),
                cfg.access_levels.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("error: {}", explain(path, &errors));
            Ok(ExitCode::from(1))
        }
    }
}
