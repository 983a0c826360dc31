//! MiniFASNet V2 + V1SE passive anti-spoofing: probability that a face is live, from 80x80 crops.
//!
//! Two small networks from Silent-Face-Anti-Spoofing look at the same face with different context: V2 at
//! 2.7x the face box, V1SE at 4.0x (more background: screen bezels, paper edges, hands). Each gives softmax
//! probabilities for three classes (0 and 2 are attack types, 1 is real); the score is the mean of the two
//! class-1 probabilities, as Silent-Face's `test.py` averages the two models.
//!
//! The box matters: the models were trained on crops around the box of Silent-Face's own detector (an SSD
//! "RetinaFace" in Caffe). YuNet's box is tighter at the top and taller than wide (about 1.2-1.45 h/w on the
//! photos measured), so the same scales give slightly less context than in training; the scores on the
//! Silent-Face samples (printed photo, tablet replay, live person) still separate widely (see
//! `tests/antispoof.rs`).
//!
//! The score is a soft signal: web photos of real people are often called fake (low resolution, heavy
//! compression and tight framing look like a recapture), so liveness fuses it with blinks over a track.

mod crop;
mod net;

use std::path::Path;

use image::RgbImage;

pub use crop::{crop_face, crop_rect, INPUT_SIZE};

use crate::models::ModelStore;
use crate::vision::weights::pth;
use crate::vision::{Detection, Result, VisionError};
use net::MiniFasNet;

/// Face-box enlargement for MiniFASNetV2 (the `2.7` in its file name).
pub const V2_SCALE: f64 = 2.7;
/// Face-box enlargement for MiniFASNetV1SE (the `4_0` in its file name).
pub const V1SE_SCALE: f64 = 4.0;
/// Default decision threshold on [`AntiSpoof::score`]: at or above it the face counts as real. The
/// Silent-Face samples score 0.21 (printed photo), 0.002 (tablet replay) and 0.9999 (live) with YuNet boxes,
/// so the plain 0.5 of an argmax decision sits in a wide gap.
pub const DEFAULT_THRESHOLD: f32 = 0.5;
/// Class index of "real" in both models' output.
const REAL: usize = 1;

/// Softmax outputs of the two models for one face.
#[derive(Clone, Debug, PartialEq)]
pub struct SpoofOutputs {
    pub v2: Vec<f32>,
    pub v1se: Vec<f32>,
}

impl SpoofOutputs {
    /// Probability that the face is real: mean of the two models' class-1 probabilities.
    pub fn p_real(&self) -> f32 {
        (self.v2[REAL] + self.v1se[REAL]) / 2.0
    }
}

/// The two MiniFASNets, loaded once and used for every face.
pub struct AntiSpoof {
    v2: MiniFasNet,
    v1se: MiniFasNet,
}

impl AntiSpoof {
    /// Loads both models from the store (manifest ids `minifasnet_v2` and `minifasnet_v1se`, sha256-checked).
    pub fn load(store: &ModelStore) -> Result<Self> {
        Self::from_files(
            &store.path("minifasnet_v2")?,
            &store.path("minifasnet_v1se")?,
        )
    }

    /// Loads both models from these `.pth` files (no checksum check).
    pub fn from_files(v2: &Path, v1se: &Path) -> Result<Self> {
        Ok(Self {
            v2: load_net(v2, "minifasnet_v2")?,
            v1se: load_net(v1se, "minifasnet_v1se")?,
        })
    }

    /// Probability in [0, 1] that the detected face is a live person.
    pub fn score(&self, img: &RgbImage, det: &Detection) -> Result<f32> {
        Ok(self.outputs(img, det)?.p_real())
    }

    /// Both models' softmax outputs for the detected face.
    pub fn outputs(&self, img: &RgbImage, det: &Detection) -> Result<SpoofOutputs> {
        let (a, b) = crops(img, det)?;
        self.outputs_for_crops(&a, &b)
    }

    /// Probability that the face is live, from ready-made 80x80 crops (V2's at 2.7x, V1SE's at 4.0x).
    pub fn score_crops(&self, crop_v2: &RgbImage, crop_v1se: &RgbImage) -> Result<f32> {
        Ok(self.outputs_for_crops(crop_v2, crop_v1se)?.p_real())
    }

    /// Both models' softmax outputs from ready-made 80x80 crops.
    pub fn outputs_for_crops(
        &self,
        crop_v2: &RgbImage,
        crop_v1se: &RgbImage,
    ) -> Result<SpoofOutputs> {
        Ok(SpoofOutputs {
            v2: self.v2.probabilities(crop_v2)?,
            v1se: self.v1se.probabilities(crop_v1se)?,
        })
    }
}

/// The two network inputs for a detected face: V2's crop (2.7x) and V1SE's crop (4.0x).
pub fn crops(img: &RgbImage, det: &Detection) -> Result<(RgbImage, RgbImage)> {
    Ok((
        crop_face(img, &det.bbox, V2_SCALE)?,
        crop_face(img, &det.bbox, V1SE_SCALE)?,
    ))
}

fn load_net(path: &Path, model: &'static str) -> Result<MiniFasNet> {
    let weights = pth::read(path).map_err(|e| VisionError::BadWeights {
        model,
        reason: e.to_string(),
    })?;
    MiniFasNet::from_weights(&weights, model)
}
