//! The one enrollment rule: an image or a camera frame gives an enrollment sample when it shows exactly one
//! face, and that face is large, sharp and frontal enough ([`QualityLimits`]). Every way to enroll (the CLI's
//! photos, the HTTP upload, the camera enrollment HA starts, the demo's bundled photo) asks this rule, so they
//! accept and refuse the same faces and say why in the same words.

use super::quality::{Quality, QualityIssue, QualityLimits};
use super::EnrollSample;
use crate::vision::AnalyzedFace;

/// Where the faces were found; only the wording of a refusal depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeenIn {
    /// A photo (a file, an upload, a bundled image).
    Photo,
    /// A live camera frame (someone standing in front of the camera).
    Camera,
}

/// Why an image gives no sample, in words a user can act on.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("{}", match .0 { SeenIn::Photo => "no face found", SeenIn::Camera => "no face in view" })]
    NoFace(SeenIn),
    #[error("{count} faces {}", match .seen_in {
        SeenIn::Photo => "found: an enrollment photo must show only the person",
        SeenIn::Camera => "in view: only the person enrolling may be in view",
    })]
    SeveralFaces { seen_in: SeenIn, count: usize },
    #[error(transparent)]
    Quality(#[from] QualityIssue),
}

/// The sample the analysed `faces` of one image give, labelled with `source` (a file name, "http upload",
/// "camera frame 42"), or why they give none.
pub fn enrollment_sample(
    faces: &[AnalyzedFace],
    limits: &QualityLimits,
    seen_in: SeenIn,
    source: impl Into<String>,
) -> Result<EnrollSample, Rejection> {
    let face = match faces {
        [] => return Err(Rejection::NoFace(seen_in)),
        [face] => face,
        many => {
            return Err(Rejection::SeveralFaces {
                seen_in,
                count: many.len(),
            })
        }
    };
    let quality = Quality::measure(&face.observation.detection, &face.chip);
    quality.check(limits)?;
    Ok(EnrollSample {
        embedding: face.observation.embedding.clone(),
        quality,
        source: source.into(),
    })
}

#[cfg(test)]
#[path = "enroll_rule_tests.rs"]
mod tests;
