//! `facegate config check`: the options are loaded and validated by the one loader `facegate run` uses at
//! start ([`crate::config::load_options`]), so the add-on's start script (and a user) can see every problem,
//! each naming its option, before anything connects.

use std::path::Path;
use std::process::ExitCode;

use crate::config::load_options;

/// Prints a one-line summary when the options are valid; otherwise every problem on stderr and exit code 1.
pub fn check(path: &Path) -> anyhow::Result<ExitCode> {
    match load_options(path) {
        Ok(cfg) => {
            println!(
                "options OK: {} camera(s), {} gate(s), {} access level(s)",
                cfg.cameras.len(),
                cfg.gates.len(),
                cfg.access_levels.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(refused) => {
            eprintln!("error: {refused}");
            Ok(ExitCode::from(1))
        }
    }
}
