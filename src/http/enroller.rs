//! [`GalleryEnroller`]: the ready-made [`Enroller`] for the upload route — the face models and the shared
//! gallery, with the one enrollment rule of `facegate enroll` ([`crate::gallery::enroll_rule`]): exactly one
//! face, large, sharp and frontal enough.
//!
//! An upload adds one image to the person (creating them if new), like `facegate enroll` with one file, so
//! several photos can be uploaded one by one. Tight crops are padded before detection (`CropPadding::Auto`)
//! because people upload cut-out portraits too.

use std::sync::Arc;

use image::RgbImage;

use super::enroll::{EnrollSummary, Enroller};
use crate::gallery::{enrollment_sample, QualityLimits, SeenIn, SharedGallery};
use crate::vision::{AnalyzeOptions, CropPadding, FaceAnalyzer};

/// Enrolls uploads into `gallery` with `analyzer`.
pub struct GalleryEnroller {
    analyzer: Arc<FaceAnalyzer>,
    gallery: SharedGallery,
    limits: QualityLimits,
}

impl GalleryEnroller {
    /// With the default quality limits (those of `facegate enroll`).
    pub fn new(analyzer: Arc<FaceAnalyzer>, gallery: SharedGallery) -> Self {
        Self {
            analyzer,
            gallery,
            limits: QualityLimits::default(),
        }
    }

    pub fn with_limits(mut self, limits: QualityLimits) -> Self {
        self.limits = limits;
        self
    }
}

impl Enroller for GalleryEnroller {
    fn enroll_image(&self, name: &str, image: RgbImage) -> Result<EnrollSummary, String> {
        let opts = AnalyzeOptions {
            padding: CropPadding::Auto,
            landmarks: false,
        };
        let faces = self
            .analyzer
            .analyze_detailed(&image, opts)
            .map_err(|e| format!("face analysis failed: {e}"))?;
        let sample = enrollment_sample(&faces, &self.limits, SeenIn::Photo, "http upload")
            .map_err(|e| e.to_string())?;
        let quality = sample.quality;
        let embeddings = self
            .gallery
            .enroll(name, None, &[sample])
            .map_err(|e| e.to_string())?;
        Ok(EnrollSummary {
            name: name.trim().to_string(),
            embeddings,
            quality: quality.score,
        })
    }
}
