//! [`GalleryEnroller`]: the ready-made [`Enroller`] for the upload route — the face models and the shared
//! gallery, with the same rules as `facegate enroll`: exactly one face, large, sharp and frontal enough.
//!
//! An upload adds one image to the person (creating them if new), like `facegate enroll` with one file, so
//! several photos can be uploaded one by one. Tight crops are padded before detection (`CropPadding::Auto`)
//! because people upload cut-out portraits too.

use std::sync::Arc;

use image::RgbImage;

use super::enroll::{EnrollSummary, Enroller};
use crate::gallery::{EnrollSample, Quality, QualityLimits, SharedGallery};
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
        let face = match faces.as_slice() {
            [] => return Err("no face found".into()),
            [face] => face,
            many => {
                return Err(format!(
                    "{} faces found: an enrollment photo must show only the person",
                    many.len()
                ))
            }
        };
        let quality = Quality::measure(&face.observation.detection, &face.chip);
        quality.check(&self.limits).map_err(|e| e.to_string())?;
        let sample = EnrollSample {
            embedding: face.observation.embedding.clone(),
            quality,
            source: "http upload".into(),
        };
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
