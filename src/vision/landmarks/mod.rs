//! MediaPipe FaceMesh: 468 landmarks on a face crop, and the eye aspect ratio used for blinks.
//!
//! The weights are MediaPipe's `face_landmark.tflite` (Apache-2.0, from the `mediapipe==0.10.14` wheel),
//! converted once to `models/facemesh.safetensors` by `models/convert_facemesh.py`; nothing of TFLite or
//! Python is needed at run time. [`FaceMesh::landmarks`] crops the face the way MediaPipe does ([`crop`]),
//! runs the network ([`net`]) and maps the points back to image pixels.

mod crop;
mod net;

use candle_core::{Device, Tensor};
use image::RgbImage;

pub use crop::{Roi, INPUT, ROI_SCALE};

use crate::models::ModelStore;
use crate::vision::{Detection, Landmarks, Result, VisionError};

/// Manifest id of the converted weights.
pub const MODEL_ID: &str = "facemesh";

/// Number of landmarks FaceMesh predicts.
pub const NUM_POINTS: usize = 468;

/// Eye contour points for the eye aspect ratio, in the order p1..p6 (p1/p4 the corners, p2/p6 and p3/p5 the
/// upper/lower lid pairs): the person's right eye (image left), then the left eye.
pub const RIGHT_EYE: [usize; 6] = [33, 160, 158, 133, 153, 144];
pub const LEFT_EYE: [usize; 6] = [362, 385, 387, 263, 373, 380];

/// The FaceMesh network, loaded once and reused for every face (`&self` only: safe to share).
pub struct FaceMesh {
    net: net::Net,
}

impl FaceMesh {
    /// Loads `facemesh.safetensors` from the model store (sha256-checked against the manifest).
    pub fn load(store: &ModelStore) -> Result<Self> {
        let path = store.path(MODEL_ID)?;
        let tensors = candle_core::safetensors::load(&path, &Device::Cpu)?;
        Ok(Self {
            net: net::Net::from_tensors(tensors)?,
        })
    }

    /// Landmarks of the detected face, in image pixels (z in the same scale, relative to the face).
    pub fn landmarks(&self, img: &RgbImage, det: &Detection) -> Result<Landmarks> {
        let roi = Roi::from_detection(det)?;
        let input = roi.sample(img)?;
        let (crop_points, face_score) = self.run_chw(input)?;
        let s = roi.scale();
        let points = crop_points
            .iter()
            .map(|&[x, y, z]| {
                let [ix, iy] = roi.to_image(x, y);
                [ix, iy, z * s]
            })
            .collect();
        Ok(Landmarks { points, face_score })
    }

    /// Runs the network on a ready 192x192 crop: 468 points in crop pixels, and the face-presence probability.
    pub fn run_crop(&self, crop_192: &RgbImage) -> Result<(Vec<[f32; 3]>, f32)> {
        if crop_192.dimensions() != (INPUT as u32, INPUT as u32) {
            return Err(VisionError::BadInput(format!(
                "FaceMesh needs a {INPUT}x{INPUT} crop, got {}x{}",
                crop_192.width(),
                crop_192.height()
            )));
        }
        let plane = INPUT * INPUT;
        let mut chw = vec![0f32; 3 * plane];
        for (i, px) in crop_192.pixels().enumerate() {
            for c in 0..3 {
                chw[c * plane + i] = px.0[c] as f32 / 255.0;
            }
        }
        self.run_chw(chw)
    }

    /// The network on a 3x192x192 CHW input in [0, 1].
    fn run_chw(&self, chw: Vec<f32>) -> Result<(Vec<[f32; 3]>, f32)> {
        let x = Tensor::from_vec(chw, (1, 3, INPUT, INPUT), &Device::Cpu)?;
        let (raw, logit) = self.net.forward(&x)?;
        let points = raw.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect();
        Ok((points, sigmoid(logit)))
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Landmarks {
    /// Eye aspect ratio (right eye, left eye) = (|p2-p6| + |p3-p5|) / (2 |p1-p4|) in the image plane.
    ///
    /// Open eyes give roughly 0.25–0.35 and closed ones noticeably less, but the level depends on the person
    /// and the pose: compare against the same face's own open-eye baseline, not a fixed threshold. NaN when
    /// the landmarks are not a full FaceMesh set.
    pub fn eye_aspect_ratio(&self) -> (f32, f32) {
        (ear(&self.points, &RIGHT_EYE), ear(&self.points, &LEFT_EYE))
    }
}

fn ear(points: &[[f32; 3]], idx: &[usize; 6]) -> f32 {
    let p = |k: usize| points.get(idx[k]).map(|p| [p[0], p[1]]);
    let (Some(p1), Some(p2), Some(p3), Some(p4), Some(p5), Some(p6)) =
        (p(0), p(1), p(2), p(3), p(4), p(5))
    else {
        return f32::NAN;
    };
    let d = |a: [f32; 2], b: [f32; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
    (d(p2, p6) + d(p3, p5)) / (2.0 * d(p1, p4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ear_of_a_drawn_eye() {
        let mut points = vec![[0.0f32; 3]; NUM_POINTS];
        // Right eye 40 px wide, lids 12 and 8 px apart; left eye closed (lids together).
        let right = [
            [0.0, 0.0],
            [10.0, -6.0],
            [30.0, -4.0],
            [40.0, 0.0],
            [30.0, 4.0],
            [10.0, 6.0],
        ];
        let left = [
            [0.0, 0.0],
            [10.0, 0.0],
            [30.0, 0.0],
            [40.0, 0.0],
            [30.0, 0.0],
            [10.0, 0.0],
        ];
        for (k, p) in right.iter().enumerate() {
            points[RIGHT_EYE[k]] = [p[0], p[1], 0.0];
        }
        for (k, p) in left.iter().enumerate() {
            points[LEFT_EYE[k]] = [p[0] + 100.0, p[1], 0.0];
        }
        let lm = Landmarks {
            points,
            face_score: 1.0,
        };
        let (r, l) = lm.eye_aspect_ratio();
        assert!((r - 20.0 / 80.0).abs() < 1e-6, "{r}");
        assert_eq!(l, 0.0);
        let short = Landmarks {
            points: vec![[0.0; 3]; 10],
            face_score: 1.0,
        };
        assert!(short.eye_aspect_ratio().0.is_nan());
    }
}
