//! Alignment: a similarity transform from the detector's 5 keypoints onto dlib's 150x150 face chip.
//!
//! The dlib ResNet was trained on chips cut by dlib's `get_face_chip_details(shape, 150, 0.25)`, which fits a
//! similarity from a landmark set onto dlib's *mean face shape* (68 points in a unit square) expanded by the
//! padding: a unit-square point `p` lands at `(padding + p) / (1 + 2 padding) * size` on the chip. dlib
//! fits its 5-point model's points (eye corners, nose base); YuNet gives different points (eye centres,
//! nose tip, mouth corners). So the [template](chip_template) is those same 5 features taken from the
//! *same* mean face shape (dlib's `mean_face_shape_x/y` for the 68-point layout):
//! - eye centre = mean of the eye's 6 contour points (36-41 for the person's right eye, 42-47 left),
//! - nose tip = point 30, mouth corners = points 48 and 54,
//!
//! and mapped with the same padding formula. A chip cut this way puts the face where dlib would. Measured in
//! `tests/align.rs` against dlib's own descriptors on 23 real faces: mean L2 0.14 from dlib's 68 landmarks,
//! 0.165 from YuNet's keypoints; dlib itself moves by 0.127 between its 68- and 5-point chips, and the
//! quantized weights alone by ~0.04. A template fitted to where YuNet's points fall on dlib's chips (122
//! faces) did no better (0.170 vs 0.171 on held-out faces): per-face landmark differences dominate, so the
//! data-free template stays.
//!
//! The transform is fitted template -> image (dlib's direction) and the chip is sampled exactly as dlib
//! samples, image pyramid included (see [`extract`]): from dlib's own 5 points our chips equal
//! `dlib.get_face_chip`'s to within one level.

mod similarity;
mod warp;

pub use similarity::Similarity;
pub use warp::{extract, pyramid_down};

use image::RgbImage;

use super::Detection;

/// Side of dlib's face chip.
pub const CHIP_SIZE: u32 = 150;
/// dlib's padding around the mean face for the ResNet chip.
pub const CHIP_PADDING: f64 = 0.25;

/// The 5 features in dlib's mean face shape (unit square, unpadded), in YuNet's order: right eye centre,
/// left eye centre, nose tip, right mouth corner, left mouth corner (right = person's right = image left).
/// Derived from dlib's 68-point mean face shape as described in the module doc.
pub const MEAN_FACE_5: [[f64; 2]; 5] = [
    [0.225_491_833, 0.215_990_333],
    [0.754_761_333, 0.215_990_333],
    [0.490_127, 0.515_625],
    [0.254_149, 0.780_233],
    [0.726_104, 0.780_233],
];

/// [`MEAN_FACE_5`] on a chip of `size` pixels with `padding`, in chip pixels.
pub fn template(size: u32, padding: f64) -> [[f64; 2]; 5] {
    MEAN_FACE_5.map(|p| p.map(|v| (padding + v) / (1.0 + 2.0 * padding) * size as f64))
}

/// The template for dlib's ResNet chip (150 px, padding 0.25): eyes at about (47.5, 46.6) and
/// (100.5, 46.6), nose tip (74.0, 76.6), mouth corners (50.4, 103.0) and (97.6, 103.0).
pub fn chip_template() -> [[f64; 2]; 5] {
    template(CHIP_SIZE, CHIP_PADDING)
}

/// The transform from chip template coordinates to image pixels for a face's 5 keypoints (YuNet order);
/// `None` when the keypoints are degenerate (coincident or not finite).
pub fn chip_transform(keypoints: &[[f32; 2]; 5]) -> Option<Similarity> {
    let image: Vec<[f64; 2]> = keypoints
        .iter()
        .map(|p| [p[0] as f64, p[1] as f64])
        .collect();
    Similarity::fit(&chip_template(), &image)
}

/// The 150x150 dlib face chip of a detected face, ready for [`super::embed::Embedder::embed`].
///
/// Aligned on the keypoints; if those are degenerate, the box is placed where dlib's padded mean face
/// sits (upright, centred). Pixels outside the image are black.
pub fn chip(img: &RgbImage, det: &Detection) -> RgbImage {
    let t = chip_transform(&det.keypoints).unwrap_or_else(|| box_transform(det));
    extract(img, &t, CHIP_SIZE)
}

/// Fallback: the unpadded mean-face square onto the detector box.
fn box_transform(det: &Detection) -> Similarity {
    let b = det.bbox;
    let size = CHIP_SIZE as f64;
    let face = size / (1.0 + 2.0 * CHIP_PADDING);
    let s = b.w.max(b.h) as f64 / face;
    let c = b.center();
    Similarity {
        a: s,
        b: 0.0,
        tx: c[0] as f64 - s * size / 2.0,
        ty: c[1] as f64 - s * size / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::BBox;

    #[test]
    fn template_matches_dlib_padding_formula() {
        let t = chip_template();
        assert!((t[0][0] - 47.549_183).abs() < 1e-5 && (t[0][1] - 46.599_033).abs() < 1e-5);
        assert!((t[2][0] - 74.012_7).abs() < 1e-5 && (t[2][1] - 76.562_5).abs() < 1e-5);
        // Left-right symmetric about the mean face's midline x = 0.490127.
        let mid = (0.25 + 0.490_127) / 1.5 * 150.0;
        assert!((t[0][0] + t[1][0] - 2.0 * mid).abs() < 1e-3);
        assert!((t[3][0] + t[4][0] - 2.0 * mid).abs() < 1e-3);
    }

    #[test]
    fn keypoints_on_the_template_give_the_identity() {
        let t = chip_template();
        let kps = t.map(|p| [p[0] as f32, p[1] as f32]);
        let s = chip_transform(&kps).unwrap();
        assert!((s.a - 1.0).abs() < 1e-6 && s.b.abs() < 1e-6);
        assert!(s.tx.abs() < 1e-4 && s.ty.abs() < 1e-4);
    }

    #[test]
    fn rotated_scaled_face_is_brought_upright() {
        // A face twice the template size, rotated by 30 degrees and shifted: the fit recovers exactly that.
        let truth = Similarity {
            a: 2.0 * 30f64.to_radians().cos(),
            b: 2.0 * 30f64.to_radians().sin(),
            tx: 300.0,
            ty: 120.0,
        };
        let kps = chip_template().map(|p| truth.apply(p).map(|v| v as f32));
        let s = chip_transform(&kps).unwrap();
        assert!((s.scale() - 2.0).abs() < 1e-5, "{s:?}");
        assert!((s.angle().to_degrees() - 30.0).abs() < 1e-4, "{s:?}");
    }

    #[test]
    fn degenerate_keypoints_fall_back_to_the_box() {
        let det = Detection {
            bbox: BBox {
                x: 100.0,
                y: 50.0,
                w: 200.0,
                h: 200.0,
            },
            score: 0.9,
            keypoints: [[f32::NAN, 0.0]; 5],
        };
        assert!(chip_transform(&det.keypoints).is_none());
        let t = box_transform(&det);
        // The chip centre lands on the box centre, the unpadded face square spans the box.
        let c = t.apply([75.0, 75.0]);
        assert!((c[0] - 200.0).abs() < 1e-9 && (c[1] - 150.0).abs() < 1e-9);
        assert!((t.scale() * 100.0 - 200.0).abs() < 1e-9);
        let img = RgbImage::from_pixel(400, 300, image::Rgb([9, 9, 9]));
        let chip = chip(&img, &det);
        assert_eq!(chip.dimensions(), (150, 150));
        assert_eq!(chip.get_pixel(75, 75).0, [9, 9, 9]);
    }
}
