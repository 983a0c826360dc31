//! The dlib ResNet in candle and the aligner, against `tests/fixtures/dlib/reference.json`: an independent
//! numpy implementation of the same network from the same tfjs files (`make_reference.py`), and dlib itself.

mod common;

use std::sync::OnceLock;

use facegate::vision::align::{self, Similarity};
use facegate::vision::embed::Embedder;
use facegate::vision::{BBox, Detection, Embedding};
use image::RgbImage;
use serde::Deserialize;

/// candle (f32) vs numpy (f64) on the same input pixels. Seen: <= 2e-6 (see `chips_match_numpy`).
const NUMPY_L2: f32 = 1e-4;
/// JPEG inputs: the `image` crate and Pillow decode some pixels differently by one level.
const NUMPY_L2_JPEG: f32 = 0.02;
/// Our aligned pipeline vs dlib's own (its 5-point landmarks, its chip, its float weights): landmark
/// definitions differ (our keypoints vs dlib's 5-point model) and the tfjs weights are quantized.
const DLIB_L2_ALIGNED: f32 = 0.25;
/// Our chip cut with dlib's own 5 points and 5-point template vs dlib's descriptor: only the weight
/// quantization (~0.04) and, above a 2x downscale, dlib's image pyramid differ.
const DLIB_L2_SAME_POINTS: f32 = 0.07;

#[derive(Deserialize)]
struct Reference {
    chips: Vec<ChipRef>,
    aligned: Vec<AlignedRef>,
}

#[derive(Deserialize)]
struct ChipRef {
    file: String,
    person: String,
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct AlignedRef {
    file: String,
    #[serde(rename = "box")]
    bbox: [f32; 4],
    keypoints: [[f32; 2]; 5],
    dlib5_points: [[f64; 2]; 5],
    chip_scale: f64,
    embedding: Vec<f32>,
    dlib_embedding: Vec<f32>,
}

fn reference() -> &'static Reference {
    static R: OnceLock<Reference> = OnceLock::new();
    R.get_or_init(|| {
        let text = std::fs::read_to_string(common::fixture("dlib/reference.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    })
}

fn embedder() -> &'static Embedder {
    static E: OnceLock<Embedder> = OnceLock::new();
    E.get_or_init(|| Embedder::load(&common::models()).unwrap())
}

/// The input image as `make_reference.py` builds it: grayscale as R = G = B, `pad75:` = 75 black pixels
/// added on every side.
fn load(name: &str) -> RgbImage {
    let (pad, rel) = match name.strip_prefix("pad75:") {
        Some(rel) => (75, rel),
        None => (0, name),
    };
    let img = image::open(common::face(rel)).unwrap().to_rgb8();
    let mut out = RgbImage::new(img.width() + 2 * pad, img.height() + 2 * pad);
    image::imageops::replace(&mut out, &img, pad as i64, pad as i64);
    out
}

fn l2(a: &Embedding, b: &[f32]) -> f32 {
    a.distance(&Embedding(b.to_vec()))
}

fn is_jpeg(name: &str) -> bool {
    name.ends_with(".jpg") || name.ends_with(".jpeg")
}

#[test]
fn chips_match_numpy() {
    let r = reference();
    assert!(r.chips.len() >= 40);
    let mut worst = [0f32; 2];
    for c in &r.chips {
        let e = embedder().embed(&load(&c.file)).unwrap();
        assert_eq!(e.0.len(), 128);
        let d = l2(&e, &c.embedding);
        let (tol, slot) = if is_jpeg(&c.file) {
            (NUMPY_L2_JPEG, 1)
        } else {
            (NUMPY_L2, 0)
        };
        assert!(d <= tol, "{}: L2 to numpy {d} > {tol}", c.file);
        worst[slot] = worst[slot].max(d);
    }
    eprintln!(
        "worst L2 to numpy: png {:.2e}, jpeg {:.2e}",
        worst[0], worst[1]
    );
}

#[test]
fn batch_equals_single() {
    let r = reference();
    let chips: Vec<RgbImage> = r.chips[..3].iter().map(|c| load(&c.file)).collect();
    let batch = embedder().embed_batch(&chips).unwrap();
    for (chip, b) in chips.iter().zip(&batch) {
        assert_eq!(&embedder().embed(chip).unwrap(), b);
    }
}

#[test]
fn same_person_is_within_dlib_threshold_and_others_are_not() {
    // Each Big Bang actor's photo 1 vs photo 2 (same person) and vs the next actor's photo 1.
    let r = reference();
    let first_two = |person: &str| {
        let mut it = r.chips.iter().filter(|c| c.person == person);
        let a = embedder().embed(&load(&it.next().unwrap().file)).unwrap();
        let b = embedder().embed(&load(&it.next().unwrap().file)).unwrap();
        (a, b)
    };
    let people = [
        "Jim_Parsons",
        "Johnny_Galecki",
        "Kaley_Cuoco",
        "Kunal_Nayyar",
        "Mayim_Bialik",
        "Melissa_Rauch",
        "Simon_Helberg",
    ];
    let pairs: Vec<_> = people.iter().map(|p| first_two(p)).collect();
    for (i, (a, b)) in pairs.iter().enumerate() {
        let same = a.distance(b);
        let other = a.distance(&pairs[(i + 1) % pairs.len()].0);
        assert!(same < 0.6, "{}: same person at {same}", people[i]);
        assert!(
            other > 0.6,
            "{} vs next: different people at {other}",
            people[i]
        );
    }
}

fn detection(a: &AlignedRef) -> Detection {
    Detection {
        bbox: BBox {
            x: a.bbox[0],
            y: a.bbox[1],
            w: a.bbox[2],
            h: a.bbox[3],
        },
        score: 1.0,
        keypoints: a.keypoints,
    }
}

#[test]
fn aligned_faces_match_numpy_and_stay_near_dlib() {
    let r = reference();
    assert!(r.aligned.len() >= 15);
    let mut to_dlib = Vec::new();
    let mut cache: Option<(String, RgbImage)> = None;
    let mut embeddings = Vec::new();
    for a in &r.aligned {
        if cache.as_ref().map(|c| &c.0) != Some(&a.file) {
            cache = Some((a.file.clone(), load(&a.file)));
        }
        let img = &cache.as_ref().unwrap().1;
        let e = embedder().embed(&align::chip(img, &detection(a))).unwrap();
        let tol = if is_jpeg(&a.file) {
            NUMPY_L2_JPEG
        } else {
            1e-3
        };
        let d = l2(&e, &a.embedding);
        assert!(d <= tol, "{}: L2 to numpy {d} > {tol}", a.file);
        let dd = l2(&e, &a.dlib_embedding);
        assert!(dd <= DLIB_L2_ALIGNED, "{}: L2 to dlib {dd}", a.file);
        to_dlib.push(dd);
        embeddings.push((a.file.clone(), e));
    }
    let mean = to_dlib.iter().sum::<f32>() / to_dlib.len() as f32;
    eprintln!(
        "aligned vs dlib: mean L2 {mean:.4}, max {:.4}",
        to_dlib.iter().cloned().fold(0.0, f32::max)
    );
    // Real identities through the whole aligned pipeline: Obama at 240p vs 1080p, Obama vs Biden.
    let find = |s: &str| &embeddings.iter().find(|(f, _)| f.ends_with(s)).unwrap().1;
    let obama = find("obama-240p.jpg");
    assert!(obama.distance(find("obama-1080p.jpg")) < 0.6);
    assert!(obama.distance(find("examples_biden.jpg")) > 0.6);
}

/// dlib's 5-point template (`get_face_chip_details`, the 5-point model's points in its mean face).
const DLIB_5_POINT_TEMPLATE: [[f64; 2]; 5] = [
    [0.8595674595992, 0.2134981538014],
    [0.6460604764104, 0.2289674387677],
    [0.1205750830292, 0.2137274215105],
    [0.3340850613712, 0.2290642403242],
    [0.4901123135679, 0.6277975316475],
];

#[test]
fn chip_sampling_reproduces_dlibs_chip() {
    // Same landmarks, same template as dlib: what is left is our sampling vs dlib's extract_image_chip.
    let tmpl = DLIB_5_POINT_TEMPLATE.map(|p| p.map(|v| (0.25 + v) / 1.5 * 150.0));
    let mut checked = 0;
    for a in reference().aligned.iter().filter(|a| a.chip_scale < 2.0) {
        let img = load(&a.file);
        let t = Similarity::fit(&tmpl, &a.dlib5_points).unwrap();
        let e = embedder().embed(&align::extract(&img, &t, 150)).unwrap();
        let d = l2(&e, &a.dlib_embedding);
        assert!(d <= DLIB_L2_SAME_POINTS, "{}: L2 to dlib {d}", a.file);
        checked += 1;
    }
    assert!(checked >= 10);
}
