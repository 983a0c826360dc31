//! YuNet face detector: boxes, scores and 5 keypoints for every face, at any image size.
//!
//! [`Detector::detect`] converts the image to BGR NCHW (H and W padded with zeros to multiples of 32), runs the
//! network ([`net`], compiled from the ONNX file's own graph onto [`crate::vision::nn`] layers), decodes every
//! grid cell ([`decode`]), and keeps the best of overlapping boxes (NMS, IoU 0.3). Results are in the original
//! image's pixels, sorted by score, best first; boxes are not clipped to the image (a face cut by the edge
//! keeps its full extent).
//!
//! Input size limit: images larger than [`DEFAULT_MAX_INPUT`] (640 x 640, or [`Detector::with_max_input`])
//! are scaled down (aspect kept, bilinear) before detection and the results scaled back. Faces at a door are
//! large, so a 1080p frame detected at 640 x 360 loses nothing that matters and costs ~9x less than at full
//! size; smaller images are never scaled up. Tight face crops (the face touches all edges) should go through
//! [`Detector::detect_crop`] / [`pad_for_detection`] first.

mod decode;
mod heads;
mod input;
mod net;
mod ops;
mod plan;
mod resize;
mod steps;

use std::path::Path;

use image::RgbImage;

pub use decode::{decode, nms, LevelMaps};
pub use input::{pad_for_detection, PaddedCrop, CROP_BORDER, CROP_BORDER_COLOUR};

use crate::models::ModelStore;
use crate::vision::weights::onnx::OnnxGraph;
use crate::vision::{Detection, Result, VisionError};

/// Default minimum score for a face, chosen from the measurements in `tests/detect.rs`: the 133 padded
/// identity crops score 0.866 at worst (all found), while the scenes without a person give false faces at 0.863,
/// 0.845 and 0.812 (one passes 0.85). Clear frontal faces at a door score 0.92-0.95. Lower it (0.6) to keep
/// small, far or turned faces in crowd scenes, at the cost of more false faces on textured backgrounds.
pub const DEFAULT_SCORE_THRESHOLD: f32 = 0.85;
/// Default input-size limit (width, height): larger images are scaled down to fit before detection.
pub const DEFAULT_MAX_INPUT: (u32, u32) = (640, 640);
/// Boxes overlapping a better one by more than this IoU are dropped.
pub const NMS_IOU: f32 = 0.3;

const MODEL: &str = "yunet";

/// A frame prepared for the network by [`Detector::network_input`].
pub struct NetworkInput {
    /// (1, 3, H, W) BGR, H and W multiples of 32.
    tensor: candle_core::Tensor,
    /// Factors mapping the (possibly scaled) image's pixels back to the original's.
    scale: [f32; 2],
}

impl NetworkInput {
    /// The padded network input size (width, height).
    pub fn size(&self) -> (usize, usize) {
        let d = self.tensor.dims();
        (d[3], d[2])
    }
}

/// The YuNet detector, loaded once and used for every frame (`detect` takes `&self`).
pub struct Detector {
    net: net::YuNet,
    max_input: (u32, u32),
}

impl Detector {
    /// Loads `yunet_s_640_640.onnx` from the model store (sha256-checked).
    pub fn load(store: &ModelStore) -> Result<Self> {
        Self::from_file(&store.path(MODEL)?)
    }

    /// Loads a YuNet ONNX file without a checksum (any of the published YuNet variants works: the network is
    /// built from the file's graph, whatever its fixed input size).
    pub fn from_file(path: &Path) -> Result<Self> {
        let bad = |reason: String| VisionError::BadWeights {
            model: MODEL,
            reason,
        };
        let graph = OnnxGraph::read(path).map_err(|e| bad(e.to_string()))?;
        let net =
            net::YuNet::compile(&graph).map_err(|r| bad(format!("{}: {r}", path.display())))?;
        Ok(Self {
            net,
            max_input: DEFAULT_MAX_INPUT,
        })
    }

    /// Sets the input-size limit: images larger than `width` x `height` are scaled down to fit (aspect kept)
    /// before detection. Values below 32 are raised to 32.
    pub fn with_max_input(mut self, width: u32, height: u32) -> Self {
        self.max_input = (width.max(32), height.max(32));
        self
    }

    /// The input-size limit (width, height).
    pub fn max_input(&self) -> (u32, u32) {
        self.max_input
    }

    /// All faces with a score >= `score_threshold`, best first, in `img`'s pixels.
    pub fn detect(&self, img: &RgbImage, score_threshold: f32) -> Result<Vec<Detection>> {
        if img.width() == 0 || img.height() == 0 {
            return Err(VisionError::BadInput(format!(
                "empty image ({}x{})",
                img.width(),
                img.height()
            )));
        }
        if !(0.0..=1.0).contains(&score_threshold) {
            return Err(VisionError::BadInput(format!(
                "score threshold {score_threshold} is not in [0, 1]"
            )));
        }
        let input = self.network_input(img)?;
        let maps = self.net.forward(input.tensor)?;
        let mut candidates = Vec::new();
        for (level, stride) in maps.iter().zip(steps::STRIDES) {
            let [cls, obj, bbox, kps] = &level.maps;
            let maps = LevelMaps {
                stride: stride as f32,
                rows: level.rows,
                cols: level.cols,
                cls,
                obj,
                bbox,
                kps,
            };
            candidates.extend(decode(&maps, score_threshold));
        }
        let mut faces = nms(candidates, NMS_IOU);
        for d in &mut faces {
            input::map_back(d, input.scale, [0.0, 0.0]);
        }
        Ok(faces)
    }

    /// The network input [`Detector::detect`] builds from `img`: scaled to fit the input-size limit, BGR
    /// floats, zero-padded to multiples of 32. Public so benchmarks can time the network alone
    /// ([`Detector::run_network`]) on exactly what `detect` feeds it.
    pub fn network_input(&self, img: &RgbImage) -> Result<NetworkInput> {
        if img.width() == 0 || img.height() == 0 {
            return Err(VisionError::BadInput("empty image (0 pixels)".into()));
        }
        let (scaled, scale) = input::fit_within(img, self.max_input.0, self.max_input.1);
        let tensor = input::to_input_tensor(scaled.as_ref().unwrap_or(img))?;
        Ok(NetworkInput { tensor, scale })
    }

    /// The network's forward pass alone on a prepared input (no decoding, no NMS): what a benchmark compares
    /// with another runtime's `run` of the same model on the same tensor.
    pub fn run_network(&self, input: &NetworkInput) -> Result<()> {
        self.net.forward(input.tensor.clone())?;
        Ok(())
    }

    /// Detection on a tight face crop: pads it with [`pad_for_detection`], detects, and returns the faces in
    /// the crop's own pixels.
    pub fn detect_crop(&self, img: &RgbImage, score_threshold: f32) -> Result<Vec<Detection>> {
        if img.width() == 0 || img.height() == 0 {
            return Err(VisionError::BadInput("empty image (0 pixels)".into()));
        }
        let padded = pad_for_detection(img);
        Ok(self
            .detect(&padded.image, score_threshold)?
            .into_iter()
            .map(|d| padded.to_crop(d))
            .collect())
    }
}
