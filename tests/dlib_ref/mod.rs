//! `tests/fixtures/dlib/reference.json` (written by `make_reference.py`: an independent numpy implementation
//! of the dlib ResNet from the same tfjs files, plus dlib's own results) and how its inputs are rebuilt.
#![allow(dead_code)]

use std::sync::OnceLock;

use facegate::vision::embed::Embedder;
use facegate::vision::Embedding;
use image::RgbImage;
use serde::Deserialize;

use crate::common;

/// candle (f32) vs numpy (f64) on identical input pixels (PNG inputs, or chips cut from PNGs). Seen <= 2e-6.
pub const NUMPY_L2: f32 = 1e-4;
/// JPEG inputs: the `image` crate and Pillow decode some pixels one level apart. Seen <= 0.012.
pub const NUMPY_L2_JPEG: f32 = 0.02;

#[derive(Deserialize)]
pub struct Reference {
    pub chips: Vec<ChipRef>,
    pub aligned: Vec<AlignedRef>,
}

/// A 150x150 photo fed to the network as it is.
#[derive(Deserialize)]
pub struct ChipRef {
    pub file: String,
    pub person: String,
    pub embedding: Vec<f32>,
}

/// A face dlib found in a full photo.
#[derive(Deserialize)]
pub struct AlignedRef {
    pub file: String,
    /// dlib's detector box: left, top, width, height.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// YuNet-style keypoints from dlib's 68 landmarks.
    pub keypoints: [[f32; 2]; 5],
    /// dlib's 5-point landmarks.
    pub dlib5_points: [[f64; 2]; 5],
    /// numpy embedding of the chip cut from `dlib5_points` with dlib's 5-point template.
    pub dlib5_embedding: Vec<f32>,
    /// How far that chip (numpy) is from `dlib.get_face_chip`'s, in pixel levels.
    pub dlib5_chip_max_pixel_diff: u32,
    /// Image pixels per chip pixel.
    pub chip_scale: f64,
    /// numpy embedding of the chip cut from `keypoints` with facegate's template.
    pub embedding: Vec<f32>,
    /// dlib's own descriptor (its 5-point chip, its float network).
    pub dlib_embedding: Vec<f32>,
}

pub fn reference() -> &'static Reference {
    static R: OnceLock<Reference> = OnceLock::new();
    R.get_or_init(|| {
        let text = std::fs::read_to_string(common::fixture("dlib/reference.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    })
}

pub fn embedder() -> &'static Embedder {
    static E: OnceLock<Embedder> = OnceLock::new();
    E.get_or_init(|| Embedder::load(&common::models()).unwrap())
}

/// The input image as `make_reference.py` builds it: grayscale as R = G = B, `pad75:` = 75 black pixels
/// added on every side.
pub fn load(name: &str) -> RgbImage {
    let (pad, rel) = match name.strip_prefix("pad75:") {
        Some(rel) => (75, rel),
        None => (0, name),
    };
    let img = image::open(common::face(rel)).unwrap().to_rgb8();
    let mut out = RgbImage::new(img.width() + 2 * pad, img.height() + 2 * pad);
    image::imageops::replace(&mut out, &img, pad as i64, pad as i64);
    out
}

pub fn l2(a: &Embedding, b: &[f32]) -> f32 {
    a.distance(&Embedding(b.to_vec()))
}

/// The numpy tolerance for an input file.
pub fn numpy_tolerance(name: &str) -> f32 {
    if name.ends_with(".jpg") || name.ends_with(".jpeg") {
        NUMPY_L2_JPEG
    } else {
        NUMPY_L2
    }
}
