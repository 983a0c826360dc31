//! Model provisioning: the manifest (`models/manifest.toml`, compiled in) and verified lookup of model files.
//!
//! A model file is searched for in a list of folders; the first file with the right name must also have the
//! right sha256, otherwise loading stops with a message that names the file, what was wrong and how to get it.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The manifest as shipped in the repository.
pub const MANIFEST_TOML: &str = include_str!("../models/manifest.toml");

/// One model file in the manifest.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// Stable identifier used by the code (`yunet`, `minifasnet_v2`, ...).
    pub id: String,
    /// File name inside a models folder.
    pub file: String,
    /// Expected sha256 of the file, lower-case hex.
    pub sha256: String,
    pub licence: String,
    /// Where the file comes from (repository and commit, or registry package and path).
    pub source: String,
    /// Download address at a pinned commit, for files that are not committed here.
    #[serde(default)]
    pub url: Option<String>,
    /// Whether the file lives in this repository's `models/` folder.
    pub committed: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    model: Vec<ModelEntry>,
}

/// Why a model file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model '{0}' is not in the manifest (models/manifest.toml)")]
    Unknown(String),
    #[error("model file {file} ({id}) not found in {searched}. {how}")]
    Missing {
        id: String,
        file: String,
        searched: String,
        how: String,
    },
    #[error("model file {path} has sha256 {actual}, expected {expected}: the file is corrupt or a different version. {how}")]
    Checksum {
        path: PathBuf,
        actual: String,
        expected: String,
        how: String,
    },
    #[error("cannot read model file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("models/manifest.toml is invalid: {0}")]
    Manifest(String),
}

/// All entries of the compiled-in manifest.
pub fn manifest() -> Result<Vec<ModelEntry>, ModelError> {
    toml::from_str::<Manifest>(MANIFEST_TOML)
        .map(|m| m.model)
        .map_err(|e| ModelError::Manifest(e.to_string()))
}

/// The folders model files are looked for in, in order.
#[derive(Clone, Debug)]
pub struct ModelStore {
    dirs: Vec<PathBuf>,
}

impl ModelStore {
    /// Search exactly these folders.
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        Self { dirs }
    }

    /// The default search path: `$FACEGATE_MODELS` (colon-separated), then `/data/models` and
    /// `/opt/facegate/models` (the add-on), then the source tree's `models/` and `../shared/models/` (development
    /// and CI).
    pub fn discover() -> Self {
        let mut dirs = Vec::new();
        if let Ok(v) = std::env::var("FACEGATE_MODELS") {
            dirs.extend(std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()));
        }
        dirs.push(PathBuf::from("/data/models"));
        dirs.push(PathBuf::from("/opt/facegate/models"));
        let src = Path::new(env!("CARGO_MANIFEST_DIR"));
        dirs.push(src.join("models"));
        dirs.push(src.join("../shared/models"));
        Self { dirs }
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Path of the model `id`, after checking its sha256 against the manifest.
    pub fn path(&self, id: &str) -> Result<PathBuf, ModelError> {
        let entry = manifest()?
            .into_iter()
            .find(|e| e.id == id)
            .ok_or_else(|| ModelError::Unknown(id.to_string()))?;
        let how = how_to_get(&entry);
        let Some(path) = self
            .dirs
            .iter()
            .map(|d| d.join(&entry.file))
            .find(|p| p.is_file())
        else {
            return Err(ModelError::Missing {
                id: entry.id.clone(),
                file: entry.file.clone(),
                searched: self
                    .dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                how,
            });
        };
        let actual = sha256_file(&path)?;
        if actual != entry.sha256 {
            return Err(ModelError::Checksum {
                path,
                actual,
                expected: entry.sha256,
                how,
            });
        }
        Ok(path)
    }
}

/// What a user should do to get a model file.
fn how_to_get(entry: &ModelEntry) -> String {
    match &entry.url {
        Some(url) => format!(
            "Run scripts/fetch-models.sh DIR (downloads {url} and checks its sha256), then set FACEGATE_MODELS=DIR."
        ),
        None => format!("It ships in the repository's models/ folder ({}); restore it from git.", entry.source),
    }
}

/// sha256 of a file as lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
