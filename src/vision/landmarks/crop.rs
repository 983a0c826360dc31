//! Where FaceMesh looks: MediaPipe's region of interest for a detected face, the rotated 192x192 crop sampled
//! from it, and the way back from crop pixels to image pixels.
//!
//! MediaPipe's face pipeline turns a detection into a square ROI: centred on the detector's box, side 1.5x the
//! box's longer side, rotated by the angle of the line from the right eye to the left eye so the eyes are
//! level in the crop. The network was trained on crops made that way, so the same convention matters here.
//! Coordinates are continuous: image pixel (i, j) covers [i, i+1) x [j, j+1), its centre is (i + 0.5, j + 0.5).

use image::RgbImage;

use crate::vision::{Detection, VisionError};

/// Side of the square network input.
pub const INPUT: usize = 192;

/// How much larger than the detector's box the crop is (MediaPipe's `scale_x/scale_y: 1.5`).
pub const ROI_SCALE: f32 = 1.5;

/// A square, rotated region of the image that becomes the 192x192 network input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Roi {
    /// Centre x in image pixels.
    pub cx: f32,
    /// Centre y in image pixels.
    pub cy: f32,
    /// Side length in image pixels.
    pub size: f32,
    /// Angle of the crop's x axis in the image, in radians (positive turns from +x towards +y, i.e.
    /// clockwise on screen, since image y points down).
    pub angle: f32,
}

impl Roi {
    /// MediaPipe's ROI for a detection: box centre, 1.5x the longer box side, eye line level.
    pub fn from_detection(det: &Detection) -> Result<Roi, VisionError> {
        let b = det.bbox;
        let [re, le] = [det.keypoints[0], det.keypoints[1]];
        let vals = [b.x, b.y, b.w, b.h, re[0], re[1], le[0], le[1]];
        if vals.iter().any(|v| !v.is_finite()) || b.w <= 0.0 || b.h <= 0.0 {
            return Err(VisionError::BadInput(format!(
                "detection box/keypoints unusable for landmarks: {det:?}"
            )));
        }
        let [cx, cy] = b.center();
        // Right eye is on the image's left: for an upright face the vector points along +x, angle 0.
        let angle = (le[1] - re[1]).atan2(le[0] - re[0]);
        Ok(Roi {
            cx,
            cy,
            size: b.w.max(b.h) * ROI_SCALE,
            angle,
        })
    }

    /// Image pixels per crop pixel.
    pub fn scale(&self) -> f32 {
        self.size / INPUT as f32
    }

    /// The image point of a crop point (both in continuous pixel coordinates).
    pub fn to_image(&self, x: f32, y: f32) -> [f32; 2] {
        let s = self.scale();
        let half = INPUT as f32 / 2.0;
        let (dx, dy) = ((x - half) * s, (y - half) * s);
        let (sin, cos) = self.angle.sin_cos();
        [self.cx + dx * cos - dy * sin, self.cy + dx * sin + dy * cos]
    }

    /// Samples the ROI into the network input: 3x192x192 (CHW) RGB in [0, 1], bilinear, with the image's
    /// edge pixels repeated where the ROI leaves the image (MediaPipe's default border mode).
    pub fn sample(&self, img: &RgbImage) -> Result<Vec<f32>, VisionError> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        if w == 0 || h == 0 {
            return Err(VisionError::BadInput("empty image".into()));
        }
        let px = img.as_raw();
        let plane = INPUT * INPUT;
        let mut out = vec![0f32; 3 * plane];
        let (xmax, ymax) = ((w - 1) as f32, (h - 1) as f32);
        for v in 0..INPUT {
            for u in 0..INPUT {
                let [ix, iy] = self.to_image(u as f32 + 0.5, v as f32 + 0.5);
                // Pixel centres sit at integer + 0.5: shift to index space, then clamp (edge replicate).
                let sx = (ix - 0.5).clamp(0.0, xmax);
                let sy = (iy - 0.5).clamp(0.0, ymax);
                let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
                let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
                let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
                let at = |x: usize, y: usize, c: usize| px[(y * w + x) * 3 + c] as f32;
                for c in 0..3 {
                    let top = at(x0, y0, c) * (1.0 - fx) + at(x1, y0, c) * fx;
                    let bot = at(x0, y1, c) * (1.0 - fx) + at(x1, y1, c) * fx;
                    out[c * plane + v * INPUT + u] = (top * (1.0 - fy) + bot * fy) / 255.0;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::BBox;

    fn det(keypoints: [[f32; 2]; 5]) -> Detection {
        Detection {
            bbox: BBox {
                x: 100.0,
                y: 50.0,
                w: 80.0,
                h: 100.0,
            },
            score: 0.9,
            keypoints,
        }
    }

    #[test]
    fn level_eyes_give_an_axis_aligned_roi_around_the_box() {
        let roi = Roi::from_detection(&det([
            [120.0, 80.0],
            [160.0, 80.0],
            [0.0; 2],
            [0.0; 2],
            [0.0; 2],
        ]))
        .unwrap();
        assert_eq!(
            (roi.cx, roi.cy, roi.size, roi.angle),
            (140.0, 100.0, 150.0, 0.0)
        );
        // The crop's corners and centre land where the square ROI says.
        assert_eq!(roi.to_image(0.0, 0.0), [65.0, 25.0]);
        assert_eq!(roi.to_image(96.0, 96.0), [140.0, 100.0]);
        assert_eq!(roi.to_image(192.0, 192.0), [215.0, 175.0]);
    }

    #[test]
    fn tilted_eyes_rotate_the_crop() {
        // Left eye lower than the right eye by as much as it is to the right: the head leans 45 degrees.
        let roi = Roi::from_detection(&det([
            [120.0, 80.0],
            [160.0, 120.0],
            [0.0; 2],
            [0.0; 2],
            [0.0; 2],
        ]))
        .unwrap();
        assert!((roi.angle - std::f32::consts::FRAC_PI_4).abs() < 1e-6);
        // One crop pixel to the right of the centre moves along the eye line in the image.
        let [x, y] = roi.to_image(97.0, 96.0);
        let s = roi.scale() / 2f32.sqrt();
        assert!((x - (140.0 + s)).abs() < 1e-4 && (y - (100.0 + s)).abs() < 1e-4);
    }

    #[test]
    fn unusable_detections_are_errors_not_panics() {
        let mut d = det([[0.0; 2]; 5]);
        d.bbox.w = 0.0;
        assert!(Roi::from_detection(&d).is_err());
        let mut d = det([[0.0; 2]; 5]);
        d.keypoints[1][0] = f32::NAN;
        assert!(Roi::from_detection(&d).is_err());
    }

    #[test]
    fn sampling_a_one_to_one_roi_copies_pixels_and_replicates_edges() {
        // A 192-pixel ROI centred on a 192x192 image reproduces it exactly.
        let img = RgbImage::from_fn(192, 192, |x, y| {
            image::Rgb([x as u8, y as u8, (x ^ y) as u8])
        });
        let roi = Roi {
            cx: 96.0,
            cy: 96.0,
            size: 192.0,
            angle: 0.0,
        };
        let t = roi.sample(&img).unwrap();
        let p = INPUT * INPUT;
        for (x, y) in [(0usize, 0usize), (5, 7), (191, 191), (100, 3)] {
            assert_eq!(t[y * INPUT + x], x as f32 / 255.0);
            assert_eq!(t[p + y * INPUT + x], y as f32 / 255.0);
            assert_eq!(t[2 * p + y * INPUT + x], (x ^ y) as f32 / 255.0);
        }
        // Shifted half-way out of the image, the left columns repeat the image's first column.
        let shifted = Roi { cx: 0.0, ..roi };
        let t = shifted.sample(&img).unwrap();
        assert_eq!(t[10 * INPUT + 3], 0.0);
        assert_eq!(t[p + 10 * INPUT + 3], 10.0 / 255.0);
        assert!(Roi { cx: 0.0, ..roi }.sample(&RgbImage::new(0, 0)).is_err());
    }
}
