//! [`FaceAnalyzer`]: all four networks on one image.
//!
//! Detection runs once per image; then, per face, FaceMesh landmarks, the aligned chip, the embedding and
//! the anti-spoof score. Each stage is a public field so `facegate bench` can time them one by one.

use image::RgbImage;

use super::antispoof::AntiSpoof;
use super::detect::Detector;
use super::embed::Embedder;
use super::landmarks::FaceMesh;
use super::{align, Detection, FaceObservation, Result};
use crate::models::ModelStore;

/// How the analyzer runs its networks (the options' `vision` section converts into this).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AnalyzerOptions {
    /// Minimum detector score for a face.
    pub detect_threshold: f32,
}

impl Default for AnalyzerOptions {
    fn default() -> Self {
        Self {
            detect_threshold: super::detect::DEFAULT_SCORE_THRESHOLD,
        }
    }
}

/// How to treat images that may be tight face crops (a face filling the whole picture, as in ID photos and
/// face datasets), which the detector, trained on scenes, often misses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CropPadding {
    /// Detect as is; when nothing is found, try again with a border around the image.
    #[default]
    Auto,
    /// Always add the border.
    Always,
    /// Never add it.
    Never,
}

/// What [`FaceAnalyzer::analyze_detailed`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnalyzeOptions {
    pub padding: CropPadding,
    /// Run FaceMesh (blinks, pose): the camera pipeline needs it, one-off identification does not.
    pub landmarks: bool,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        Self {
            padding: CropPadding::Never,
            landmarks: true,
        }
    }
}

/// One analysed face plus its aligned chip (kept for enrollment quality checks).
#[derive(Clone, Debug)]
pub struct AnalyzedFace {
    pub observation: FaceObservation,
    /// The 150x150 aligned chip the embedding was computed from.
    pub chip: RgbImage,
}

/// Runs detection, landmarks, alignment, embedding and anti-spoofing on an image.
pub struct FaceAnalyzer {
    pub detector: Detector,
    pub facemesh: FaceMesh,
    pub embedder: Embedder,
    pub antispoof: AntiSpoof,
    pub options: AnalyzerOptions,
}

impl FaceAnalyzer {
    /// Load every model (sha256-checked) from `store`; `options` as [`AnalyzerOptions`] or anything that
    /// converts into them (the options' `&VisionConfig`).
    pub fn load(store: &ModelStore, options: impl Into<AnalyzerOptions>) -> Result<Self> {
        Ok(Self {
            detector: Detector::load(store)?,
            facemesh: FaceMesh::load(store)?,
            embedder: Embedder::load(store)?,
            antispoof: AntiSpoof::load(store)?,
            options: options.into(),
        })
    }

    /// Faces in `img` at the configured detector threshold, best first.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        self.detector.detect(img, self.options.detect_threshold)
    }

    /// Faces in `img`, with tight crops handled as `padding` says.
    pub fn detect_padded(&self, img: &RgbImage, padding: CropPadding) -> Result<Vec<Detection>> {
        let t = self.options.detect_threshold;
        match padding {
            CropPadding::Never => self.detector.detect(img, t),
            CropPadding::Always => self.detector.detect_crop(img, t),
            CropPadding::Auto => {
                let faces = self.detector.detect(img, t)?;
                if faces.is_empty() {
                    self.detector.detect_crop(img, t)
                } else {
                    Ok(faces)
                }
            }
        }
    }

    /// Everything about one detected face (landmarks only when asked).
    pub fn analyze_face(
        &self,
        img: &RgbImage,
        det: &Detection,
        landmarks: bool,
    ) -> Result<AnalyzedFace> {
        let landmarks = if landmarks {
            Some(self.facemesh.landmarks(img, det)?)
        } else {
            None
        };
        let chip = align::chip(img, det);
        let embedding = self.embedder.embed(&chip)?;
        let antispoof = self.antispoof.score(img, det)?;
        Ok(AnalyzedFace {
            observation: FaceObservation {
                detection: det.clone(),
                landmarks,
                embedding,
                antispoof,
            },
            chip,
        })
    }

    /// Every face in `img` (no crop padding), fully analysed, best detection first.
    pub fn analyze(&self, img: &RgbImage) -> Result<Vec<FaceObservation>> {
        Ok(self
            .analyze_detailed(img, AnalyzeOptions::default())?
            .into_iter()
            .map(|f| f.observation)
            .collect())
    }

    /// Every face in `img` as `opts` say, keeping the chips.
    pub fn analyze_detailed(
        &self,
        img: &RgbImage,
        opts: AnalyzeOptions,
    ) -> Result<Vec<AnalyzedFace>> {
        self.detect_padded(img, opts.padding)?
            .iter()
            .map(|d| self.analyze_face(img, d, opts.landmarks))
            .collect()
    }
}
