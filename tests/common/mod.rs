//! Helpers shared by the integration tests: where the real models and photos are.
//!
//! The tests use real model weights and real photos from `../shared` (never committed here). A missing part
//! is a failure, never a silent skip.
#![allow(dead_code)]

use std::path::PathBuf;

use facegate::models::ModelStore;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` (or `$FACEGATE_SHARED`), which must exist.
pub fn shared() -> PathBuf {
    let p = std::env::var_os("FACEGATE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared"));
    assert!(
        p.join("faces").is_dir() && p.join("models").is_dir(),
        "{} with faces/ and models/ is required by the tests",
        p.display()
    );
    p
}

/// A path under `../shared/faces`, which must exist.
pub fn face(rel: &str) -> PathBuf {
    let p = shared().join("faces").join(rel);
    assert!(p.exists(), "test data {} is missing", p.display());
    p
}

/// A committed fixture under `tests/fixtures`.
pub fn fixture(rel: &str) -> PathBuf {
    let p = repo().join("tests/fixtures").join(rel);
    assert!(p.exists(), "fixture {} is missing", p.display());
    p
}

/// Model files: the repository's `models/` and `../shared/models`.
pub fn models() -> ModelStore {
    ModelStore::new(vec![repo().join("models"), shared().join("models")])
}

pub mod ha;
pub mod ha_version;
pub mod service;
