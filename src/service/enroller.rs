//! Enrollment by photo upload (the HTTP server's `Enroller`): the one face in the photo, checked like
//! `facegate enroll` checks photos, added to the shared gallery (every pipeline sees it at once; the HA
//! bridge publishes the person's entities on its next gallery refresh).

use std::sync::Arc;

use image::RgbImage;

use crate::gallery::{EnrollSample, Quality, QualityLimits, SharedGallery};
use crate::http::{EnrollSummary, Enroller};
use crate::vision::{AnalyzeOptions, CropPadding, FaceAnalyzer};

pub struct UploadEnroller {
    pub analyzer: Arc<FaceAnalyzer>,
    pub gallery: SharedGallery,
}

impl Enroller for UploadEnroller {
    fn enroll_image(&self, name: &str, image: RgbImage) -> Result<EnrollSummary, String> {
        let opts = AnalyzeOptions {
            padding: CropPadding::Auto,
            landmarks: false,
        };
        let faces = self
            .analyzer
            .analyze_detailed(&image, opts)
            .map_err(|e| format!("the photo could not be analysed: {e}"))?;
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
        quality
            .check(&QualityLimits::default())
            .map_err(|e| e.to_string())?;
        let sample = EnrollSample {
            embedding: face.observation.embedding.clone(),
            quality,
            source: "upload".into(),
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
