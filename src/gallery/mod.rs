//! The gallery: enrolled people and their face embeddings in SQLite, mirrored in memory for open-set matching.
//!
//! - [`store`]: the gallery's view of the database ([`crate::store`]): people, one embedding per enrolled
//!   image, and the transactions on them.
//! - [`matcher`]: the in-memory view used per frame: every embedding of a person plus a robust centroid, and
//!   open-set matching that answers "unknown" rather than guess.
//! - [`quality`]: how good an enrollment image is (face size, sharpness, pose), so poor ones are refused.
//! - [`enroll_rule`]: the one enrollment rule every way to enroll asks: exactly one good face makes a sample.
//! - [`shared`]: the handle the service shares between cameras, Home Assistant and the HTTP upload.

pub mod enroll_rule;
pub mod matcher;
pub mod quality;
pub mod shared;
pub mod store;

pub use enroll_rule::{enrollment_sample, Rejection, SeenIn};
pub use matcher::{MatchOutcome, MatchParams, MatchResult, Matcher, PersonModel};
pub use quality::{Quality, QualityLimits};
pub use shared::SharedGallery;
pub use store::{EnrollSample, Gallery, PersonInfo, DEFAULT_ACCESS_LEVEL};

/// Why a gallery operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database cannot be opened (e.g. it was written by a newer facegate).
    #[error(transparent)]
    Store(crate::store::StoreError),
    /// A stored or supplied embedding is not 128 finite numbers.
    #[error("invalid embedding: {0}")]
    BadEmbedding(String),
    #[error("no person named '{0}'")]
    NoSuchPerson(String),
    #[error("invalid person name '{0}': it must be 1 to 100 characters, not only spaces")]
    BadName(String),
    #[error("nothing to enroll for '{0}'")]
    NothingToEnroll(String),
}

impl From<crate::store::StoreError> for GalleryError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::Sqlite(e) => Self::Sqlite(e),
            other => Self::Store(other),
        }
    }
}

pub type Result<T, E = GalleryError> = std::result::Result<T, E>;
