//! The benchmark's input frames: one real photo with one face, scaled to cover each frame size and
//! centre-cropped, so every size shows the same face the way a camera at that resolution would.

use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use image::RgbImage;

use super::BenchError;

/// Relative to the shared data folder: Obama at 1280x720, one frontal face (the face_recognition examples).
const DEFAULT_PHOTO: &str = "faces/misc/face_recognition/examples_obama-720p.jpg";

/// The default photo: under `$FACEGATE_SHARED`, else `../shared` next to the source tree.
pub fn default_image() -> Result<PathBuf, BenchError> {
    let shared = std::env::var_os("FACEGATE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let p = shared.join(DEFAULT_PHOTO);
    if p.is_file() {
        Ok(p)
    } else {
        Err(BenchError::Image {
            path: p,
            reason: "not found: pass --image PHOTO (one face) or set FACEGATE_SHARED".into(),
        })
    }
}

/// Loads the photo as RGB through facegate's own image loader (limits, EXIF orientation).
pub fn load(path: &Path) -> Result<RgbImage, BenchError> {
    crate::imageio::load_image(path).map_err(|e| BenchError::Image {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Scales `img` (aspect kept, bilinear) so it covers `width` x `height`, then crops the centre to exactly that.
pub fn cover(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let scale = (width as f64 / w as f64).max(height as f64 / h as f64);
    let (sw, sh) = (
        ((w as f64 * scale).round() as u32).max(width),
        ((h as f64 * scale).round() as u32).max(height),
    );
    let scaled = if (sw, sh) == (w, h) {
        img.clone()
    } else {
        imageops::resize(img, sw, sh, FilterType::Triangle)
    };
    imageops::crop_imm(&scaled, (sw - width) / 2, (sh - height) / 2, width, height).to_image()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cover_fills_the_frame_and_keeps_the_centre() {
        // A 200x100 image whose centre column is white: covering 100x100 keeps the centre.
        let mut img = RgbImage::new(200, 100);
        for y in 0..100 {
            img.put_pixel(100, y, image::Rgb([255, 255, 255]));
        }
        let c = cover(&img, 100, 100);
        assert_eq!(c.dimensions(), (100, 100));
        assert_eq!(c.get_pixel(50, 50).0, [255, 255, 255]);
        assert_eq!(c.get_pixel(10, 50).0, [0, 0, 0]);
        // Same size: untouched copy. Upscaling works too.
        assert_eq!(cover(&img, 200, 100), img);
        assert_eq!(cover(&img, 640, 480).dimensions(), (640, 480));
    }
}
