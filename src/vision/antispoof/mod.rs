//! MiniFASNet V2 + V1SE passive anti-spoofing: probability that a face is live, from 80x80 crops.
//!
//! Two small networks from Silent-Face-Anti-Spoofing look at the same face with different context: V2 at
//! 2.7x the face box, V1SE at 4.0x (more background: screen bezels, paper edges, hands). Each gives softmax
//! probabilities for three classes (0 and 2 are attack types, 1 is real); the score is the mean of the two
//! class-1 probabilities, as Silent-Face's `test.py` averages the two models.
//!
//! The box matters: the crop has the box's aspect ratio (both sides are scaled alike, then squeezed to
//! 80x80), and the models were trained on boxes from Silent-Face's own detector (an SSD in Caffe). YuNet's
//! box is taller than wide (h/w about 1.2-1.45 on the photos measured). Enlarging or shrinking YuNet's box
//! by 10-15% barely moves the scores (on close-up frames the enlargement is capped by the image size
//! anyway), but making it square changes them a lot (printed photo 0.21 -> 0.03, a celebrity photo
//! 0.01 -> 0.54), so YuNet's box is used as it is and the threshold was checked with it.
//!
//! Measured with YuNet boxes (numpy reference, `make_reference.py`'s functions): live face-to-camera clips
//! (`faces/blink/liveportrait_*`, 480-1280 px, every 15th frame) 154 of 155 frames real at 0.5, the
//! lowest 0.47; larger web photos (`misc/face_recognition`, 29 faces) all real, lowest 0.66. But small,
//! tight or grey photos are mostly called fake: the 150 px celebrity crops 31% real (median 0.21), the
//! grey 150 px Big Bang Theory crops 0%, 96x128 video crops about half. So the score is a soft signal:
//! liveness averages it over a track's frames and fuses it with blinks, and faces far from the camera
//! (small boxes) deserve less weight.

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
/// live video frames 0.47-1.0 (median ~1.0): the plain 0.5 of an argmax decision sits in the gap.
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
