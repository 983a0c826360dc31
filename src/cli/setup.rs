//! What every command needs before it starts: the thread pool, the model store, the analyzer; and
//! `facegate models check`.

use std::process::ExitCode;

use anyhow::Context;

use super::{GlobalArgs, VisionArgs};
use crate::config::VisionConfig;
use crate::models::{manifest, ModelError, ModelStore};
use crate::vision::{detect, FaceAnalyzer};

/// Size the inference thread pool (0 = one thread per core).
pub fn threads(n: usize) -> anyhow::Result<()> {
    if n == 0 {
        return Ok(());
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .context("cannot set up the thread pool")
}

/// The model folders: `--models DIR` alone, or the default search path.
pub fn store(g: &GlobalArgs) -> ModelStore {
    match &g.models {
        Some(dir) => ModelStore::new(vec![dir.clone()]),
        None => ModelStore::discover(),
    }
}

/// Load every network, with the command's detection options.
pub fn analyzer(g: &GlobalArgs, v: &VisionArgs) -> anyhow::Result<FaceAnalyzer> {
    let config = VisionConfig {
        threads: g.threads,
        detect_threshold: v
            .detect_threshold
            .unwrap_or(detect::DEFAULT_SCORE_THRESHOLD),
        ..VisionConfig::default()
    };
    if !(0.0..=1.0).contains(&config.detect_threshold) {
        anyhow::bail!(
            "--detect-threshold {} is not between 0 and 1",
            config.detect_threshold
        );
    }
    FaceAnalyzer::load(&store(g), &config).context("cannot load the face models")
}

/// `facegate models check`: one line per manifest entry; fails when any model is missing or corrupt.
pub fn models_check(g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let store = store(g);
    let entries = manifest()?;
    let dirs: Vec<String> = store
        .dirs()
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    println!("model folders searched, in order: {}", dirs.join(", "));
    let mut bad = 0;
    for e in &entries {
        match store.path(&e.id) {
            Ok(path) => println!("ok       {:<22} {} (sha256 ok)", e.id, path.display()),
            Err(err @ ModelError::Missing { .. }) => {
                bad += 1;
                println!("MISSING  {:<22} {err}", e.id);
            }
            Err(err) => {
                bad += 1;
                println!("BAD      {:<22} {err}", e.id);
            }
        }
    }
    println!("{} of {} models ok", entries.len() - bad, entries.len());
    Ok(super::batch_exit(bad))
}
