//! Face vision: the networks and the geometry between them.
//!
//! Per image: [`detect`] finds faces (box, score, 5 keypoints); for each face [`landmarks`] gives 468 points
//! (eye aspect ratio for blinks), [`align`] warps the face onto dlib's 150x150 chip, [`embed`] turns the chip
//! into a 128-d embedding and [`antispoof`] scores how likely the face is a live person. [`FaceAnalyzer`]
//! runs all of them. Everything here is synchronous CPU work: callers run it on their own thread.

pub mod align;
pub mod antispoof;
pub mod detect;
pub mod embed;
pub mod landmarks;
pub mod nn;
pub mod weights;

mod analyzer;
mod types;

pub use analyzer::{AnalyzeOptions, AnalyzedFace, AnalyzerOptions, CropPadding, FaceAnalyzer};
pub use types::{BBox, Detection, Embedding, FaceObservation, Landmarks, EMBEDDING_DIM};

/// Everything that can go wrong inside the vision stage.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// A tensor operation failed: a bug or a model file whose shapes do not fit the network.
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    /// A model file is missing, corrupt or does not match the manifest.
    #[error(transparent)]
    Model(#[from] crate::models::ModelError),
    /// A model file could be read but its contents do not fit the network.
    #[error("model {model}: {reason}")]
    BadWeights { model: &'static str, reason: String },
    /// The input cannot be processed (for example an empty image).
    #[error("bad input: {0}")]
    BadInput(String),
}

pub type Result<T, E = VisionError> = std::result::Result<T, E>;
