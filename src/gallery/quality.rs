//! How good a face image is for enrollment: face size, sharpness and pose, each measured simply.
//!
//! A gallery built from small, blurred or turned faces gives embeddings that sit between people and cause
//! false accepts later, so enrollment refuses such images with a reason a user can act on.

use image::RgbImage;
use serde::Serialize;

use crate::vision::Detection;

/// Measurements of one face and the overall score derived from them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Quality {
    /// Overall quality in [0, 1] (product of the size, sharpness and pose terms).
    pub score: f32,
    /// Face size in source-image pixels: the geometric mean of the detector box's sides.
    pub face_size: f32,
    /// Sharpness: variance of the 4-neighbour Laplacian over the grey levels of the chip's central half
    /// (higher is sharper).
    pub blur: f32,
    /// Head turn from keypoint symmetry: 0 frontal, 1 the nose is as far off the eyes' midpoint as an eye.
    pub pose: f32,
}

/// Minimums an enrollment image must meet.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct QualityLimits {
    /// Smallest face size in pixels.
    pub min_face_size: f32,
    /// Smallest Laplacian variance on the chip.
    pub min_blur: f32,
    /// Largest pose value.
    pub max_pose: f32,
}

impl Default for QualityLimits {
    fn default() -> Self {
        Self {
            min_face_size: 48.0,
            min_blur: 20.0,
            max_pose: 0.7,
        }
    }
}

/// Why a face is not good enough to enroll.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum QualityIssue {
    #[error("face too small: {size:.0} px, the minimum is {min:.0} px")]
    TooSmall { size: f32, min: f32 },
    #[error("too blurry: sharpness {blur:.1}, the minimum is {min:.1}")]
    TooBlurry { blur: f32, min: f32 },
    #[error("head turned too far: pose {pose:.2}, the maximum is {max:.2}")]
    TurnedAway { pose: f32, max: f32 },
}

impl Quality {
    /// Measure a detected face; `chip` is its aligned 150x150 chip.
    pub fn measure(det: &Detection, chip: &RgbImage) -> Self {
        let face_size = (det.bbox.w.max(0.0) * det.bbox.h.max(0.0)).sqrt();
        // Only the middle of the chip: it is all face, while the edges may hold the border of a tight crop
        // (a hard edge that would pass for detail).
        let (w, h) = chip.dimensions();
        let centre = image::imageops::crop_imm(chip, w / 4, h / 4, w / 2, h / 2).to_image();
        let blur = laplacian_variance(&centre);
        let pose = pose_from_keypoints(&det.keypoints);
        // Terms saturate at a face of ~100 px (dlib's chip scale) and clearly sharp detail.
        let size_term = (face_size / 100.0).clamp(0.0, 1.0);
        let blur_term = (blur / 100.0).clamp(0.0, 1.0);
        let pose_term = 1.0 - pose;
        Self {
            score: size_term * blur_term * pose_term,
            face_size,
            blur,
            pose,
        }
    }

    /// The first limit this face fails, if any.
    pub fn check(&self, limits: &QualityLimits) -> Result<(), QualityIssue> {
        if self.face_size < limits.min_face_size {
            return Err(QualityIssue::TooSmall {
                size: self.face_size,
                min: limits.min_face_size,
            });
        }
        if self.blur < limits.min_blur {
            return Err(QualityIssue::TooBlurry {
                blur: self.blur,
                min: limits.min_blur,
            });
        }
        if self.pose > limits.max_pose {
            return Err(QualityIssue::TurnedAway {
                pose: self.pose,
                max: limits.max_pose,
            });
        }
        Ok(())
    }
}

/// Variance of the 4-neighbour Laplacian of the grey image (BT.601 luma), over interior pixels.
pub fn laplacian_variance(img: &RgbImage) -> f32 {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w < 3 || h < 3 {
        return 0.0;
    }
    let grey: Vec<f64> = img
        .pixels()
        .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
        .collect();
    let (mut sum, mut sum2, mut n) = (0.0, 0.0, 0.0);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let c = y * w + x;
            let l = grey[c - 1] + grey[c + 1] + grey[c - w] + grey[c + w] - 4.0 * grey[c];
            sum += l;
            sum2 += l * l;
            n += 1.0;
        }
    }
    let mean = sum / n;
    (sum2 / n - mean * mean).max(0.0) as f32
}

/// Yaw proxy from YuNet's 5 keypoints: how far the nose sits from the eyes' midpoint along the eye line,
/// relative to half the eye distance, in [0, 1].
pub fn pose_from_keypoints(k: &[[f32; 2]; 5]) -> f32 {
    let (re, le, nose) = (k[0], k[1], k[2]);
    let axis = [le[0] - re[0], le[1] - re[1]];
    let eye_dist = (axis[0] * axis[0] + axis[1] * axis[1]).sqrt();
    if eye_dist < 1e-3 {
        return 1.0;
    }
    let mid = [(re[0] + le[0]) / 2.0, (re[1] + le[1]) / 2.0];
    let along = ((nose[0] - mid[0]) * axis[0] + (nose[1] - mid[1]) * axis[1]) / eye_dist;
    (along.abs() / (eye_dist / 2.0)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::BBox;

    fn det(size: f32, nose_dx: f32) -> Detection {
        Detection {
            bbox: BBox {
                x: 0.0,
                y: 0.0,
                w: size,
                h: size,
            },
            score: 0.9,
            keypoints: [
                [30.0, 40.0],
                [70.0, 40.0],
                [50.0 + nose_dx, 60.0],
                [35.0, 80.0],
                [65.0, 80.0],
            ],
        }
    }

    #[test]
    fn flat_chip_has_no_sharpness_and_checkerboard_a_lot() {
        let flat = RgbImage::from_pixel(150, 150, image::Rgb([120, 120, 120]));
        assert_eq!(laplacian_variance(&flat), 0.0);
        let board = RgbImage::from_fn(150, 150, |x, y| {
            let v = if (x + y) % 2 == 0 { 0 } else { 255 };
            image::Rgb([v, v, v])
        });
        // Every interior Laplacian is +-4*255, so the variance is (1020)^2.
        let v = laplacian_variance(&board);
        assert!((v - 1020.0f32 * 1020.0).abs() < 1.0, "{v}");
    }

    #[test]
    fn pose_is_zero_frontal_and_grows_with_turn() {
        assert_eq!(pose_from_keypoints(&det(100.0, 0.0).keypoints), 0.0);
        assert!((pose_from_keypoints(&det(100.0, 10.0).keypoints) - 0.5).abs() < 1e-6);
        assert_eq!(pose_from_keypoints(&det(100.0, -40.0).keypoints), 1.0);
    }

    #[test]
    fn checks_report_the_failing_measure() {
        let sharp = RgbImage::from_fn(150, 150, |x, y| {
            let v = if (x / 3 + y / 3) % 2 == 0 { 40 } else { 200 };
            image::Rgb([v, v, v])
        });
        let limits = QualityLimits::default();
        let q = Quality::measure(&det(120.0, 0.0), &sharp);
        assert_eq!(q.check(&limits), Ok(()));
        assert!(q.score > 0.99, "{q:?}");
        let small = Quality::measure(&det(30.0, 0.0), &sharp);
        assert_eq!(
            small.check(&limits).unwrap_err().to_string(),
            "face too small: 30 px, the minimum is 48 px"
        );
        let flat = RgbImage::from_pixel(150, 150, image::Rgb([9, 9, 9]));
        let blurry = Quality::measure(&det(120.0, 0.0), &flat);
        assert!(matches!(
            blurry.check(&limits),
            Err(QualityIssue::TooBlurry { .. })
        ));
        let turned = Quality::measure(&det(120.0, 15.0), &sharp);
        assert!(matches!(
            turned.check(&limits),
            Err(QualityIssue::TurnedAway { .. })
        ));
    }
}
