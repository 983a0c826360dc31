//! FaceMesh in candle against the original MediaPipe TFLite model, on real photos from ../shared.
//!
//! `tests/fixtures/facemesh/reference.json` holds the TFLite interpreter's outputs (made by
//! `make_reference.py` next to it) for network inputs this test rebuilds from the photos: integer box-averaged
//! square windows ("box" cases, for `run_crop`) and MediaPipe's rotated ROI of a YuNet detection ("roi" cases,
//! for the whole `landmarks` path including the crop and the mapping back to image pixels), with the YuNet
//! detections stored next to them. The blink test runs the real detector.

mod common;

use std::sync::OnceLock;

use facegate::vision::detect::{Detector, DEFAULT_SCORE_THRESHOLD};
use facegate::vision::landmarks::{FaceMesh, INPUT};
use facegate::vision::{BBox, Detection};
use image::RgbImage;
use serde_json::Value;

/// Largest allowed difference to TFLite, in crop pixels (the crop is 192 px; a face spans ~128 px), when the
/// input is bit-identical (PNG photos). Measured: < 0.0003.
const TOL_CROP_PX: f32 = 0.05;
/// The same for JPEG photos: the `image` crate's decoder and Pillow's libjpeg-turbo differ by a grey level
/// here and there, so the inputs differ slightly. Measured: < 0.05.
const TOL_JPEG_CROP_PX: f32 = 0.25;

/// Tolerance for a photo, by how exactly its decoded pixels are reproduced.
fn tolerance(rel: &str) -> f32 {
    if rel.ends_with(".png") {
        TOL_CROP_PX
    } else {
        TOL_JPEG_CROP_PX
    }
}
/// Largest allowed difference of the face-presence logit.
const TOL_LOGIT: f32 = 0.01;

fn mesh() -> &'static FaceMesh {
    static MESH: OnceLock<FaceMesh> = OnceLock::new();
    MESH.get_or_init(|| FaceMesh::load(&common::models()).expect("facemesh loads"))
}

fn reference() -> &'static Value {
    static REF: OnceLock<Value> = OnceLock::new();
    REF.get_or_init(|| {
        let text = std::fs::read_to_string(common::fixture("facemesh/reference.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    })
}

fn photo(rel: &str) -> RgbImage {
    image::open(common::face(rel)).unwrap().to_rgb8()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// The YuNet detection stored for a photo by make_reference.py.
fn fixture_detection(rel: &str) -> Detection {
    let p = reference()["photos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["photo"] == rel)
        .unwrap_or_else(|| panic!("no fixture detection for {rel}"));
    let b = floats(&p["box"]);
    let mut keypoints = [[0f32; 2]; 5];
    for (k, kp) in p["keypoints"].as_array().unwrap().iter().enumerate() {
        let v = floats(kp);
        keypoints[k] = [v[0], v[1]];
    }
    Detection {
        bbox: BBox {
            x: b[0],
            y: b[1],
            w: b[2],
            h: b[3],
        },
        score: p["score"].as_f64().unwrap() as f32,
        keypoints,
    }
}

/// make_reference.py's box crop: a (192k)^2 window at (x0, y0), zeros outside the photo, k x k block means
/// rounded half-up in integers.
fn box_crop(img: &RgbImage, x0: i64, y0: i64, k: u32) -> RgbImage {
    let n = k * k;
    RgbImage::from_fn(INPUT as u32, INPUT as u32, |u, v| {
        let mut sum = [0u32; 3];
        for dy in 0..k {
            for dx in 0..k {
                let x = x0 + (u * k + dx) as i64;
                let y = y0 + (v * k + dy) as i64;
                if x >= 0 && y >= 0 && x < img.width() as i64 && y < img.height() as i64 {
                    let p = img.get_pixel(x as u32, y as u32).0;
                    for c in 0..3 {
                        sum[c] += p[c] as u32;
                    }
                }
            }
        }
        image::Rgb(sum.map(|s| ((s + n / 2) / n) as u8))
    })
}

fn cases(kind: &str) -> Vec<&'static Value> {
    reference()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == kind)
        .collect()
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Max |difference| over all 1404 values, and whether the face score agrees.
fn compare(points: &[[f32; 3]], score: f32, case: &Value) -> (f32, f32) {
    let want = floats(&case["points"]);
    assert_eq!(points.len() * 3, want.len());
    let diff = points
        .iter()
        .flatten()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let logit = case["face_logit"].as_f64().unwrap() as f32;
    let score_diff = (score - sigmoid(logit)).abs();
    (diff, score_diff)
}

#[test]
fn network_matches_tflite_on_box_crops() {
    let mut report = Vec::new();
    for case in cases("box") {
        let rel = case["photo"].as_str().unwrap();
        let img = photo(rel);
        let k = case["k"].as_u64().unwrap() as u32;
        let crop = box_crop(
            &img,
            case["x0"].as_i64().unwrap(),
            case["y0"].as_i64().unwrap(),
            k,
        );
        let sum: u64 = crop.as_raw().iter().map(|&p| p as u64).sum();
        let want = case["pixel_sum"].as_u64().unwrap();
        if rel.ends_with(".png") {
            assert_eq!(sum, want, "{rel}: input not rebuilt exactly");
        } else {
            // Different JPEG decoders: the crop's mean may move by a small fraction of a grey level.
            let mean_shift = (sum as f64 - want as f64).abs() / crop.as_raw().len() as f64;
            assert!(
                mean_shift < 0.05,
                "{rel}: decoded crop differs by {mean_shift} grey levels on average"
            );
        }
        let (points, score) = mesh().run_crop(&crop).unwrap();
        let (diff, score_diff) = compare(&points, score, case);
        report.push(format!("{rel}: max diff {diff:.5} px, score {score:.4}"));
        assert!(
            diff < tolerance(rel),
            "{rel}: landmarks differ from TFLite by {diff} px"
        );
        // The logit tolerance mapped through the sigmoid (its slope is at most 1/4).
        assert!(
            score_diff < TOL_LOGIT / 4.0,
            "{rel}: face score {score} vs TFLite"
        );
        assert!(score > 0.99, "{rel}: a clear face scores {score}");
    }
    println!("{}", report.join("\n"));
}

#[test]
fn face_presence_logit_matches_tflite_where_there_is_no_face() {
    for case in cases("nonface") {
        let rel = case["photo"].as_str().unwrap();
        let k = case["k"].as_u64().unwrap() as u32;
        let crop = box_crop(
            &photo(rel),
            case["x0"].as_i64().unwrap(),
            case["y0"].as_i64().unwrap(),
            k,
        );
        let sum: u64 = crop.as_raw().iter().map(|&p| p as u64).sum();
        assert_eq!(
            sum,
            case["pixel_sum"].as_u64().unwrap(),
            "{rel}: input not rebuilt exactly"
        );
        let (_, score) = mesh().run_crop(&crop).unwrap();
        let logit = (score / (1.0 - score)).ln();
        let want = case["face_logit"].as_f64().unwrap() as f32;
        println!("{rel}: face logit {logit:.4} (TFLite {want:.4})");
        assert!(
            (logit - want).abs() < TOL_LOGIT,
            "{rel}: logit {logit} vs TFLite {want}"
        );
        assert!(score < 0.05, "{rel}: no face, yet score {score}");
    }
}

#[test]
fn landmarks_match_tflite_on_mediapipe_rois() {
    let mut report = Vec::new();
    for case in cases("roi") {
        let rel = case["photo"].as_str().unwrap();
        let img = photo(rel);
        let det = fixture_detection(rel);
        let lm = mesh().landmarks(&img, &det).unwrap();
        assert_eq!(lm.points.len(), 468);
        let (diff, score_diff) = compare(&lm.points, lm.face_score, case);
        // Image pixels per crop pixel: the crop tolerance scales with it.
        let scale = case["roi_scale"].as_f64().unwrap() as f32;
        report.push(format!("{rel}: max diff {diff:.5} image px (x{scale:.2})"));
        assert!(
            diff < tolerance(rel) * scale,
            "{rel}: landmarks differ from TFLite by {diff} px"
        );
        assert!(
            score_diff < TOL_LOGIT / 4.0,
            "{rel}: face score {} vs TFLite",
            lm.face_score
        );
        // The eye landmarks lie near the detector's eye keypoints (image left = person's right).
        let eye_centre = |idx: [usize; 6]| {
            let (x, y) = idx.iter().fold((0.0, 0.0), |(x, y), &i| {
                (x + lm.points[i][0], y + lm.points[i][1])
            });
            [x / 6.0, y / 6.0]
        };
        let re = eye_centre(facegate::vision::landmarks::RIGHT_EYE);
        let dist =
            ((re[0] - det.keypoints[0][0]).powi(2) + (re[1] - det.keypoints[0][1]).powi(2)).sqrt();
        assert!(
            dist < 0.1 * det.bbox.w,
            "{rel}: right eye {re:?} far from keypoint {:?}",
            det.keypoints[0]
        );
    }
    println!("{}", report.join("\n"));
}

/// Turns an image point a quarter turn clockwise (`image::imageops::rotate90`), in continuous coordinates.
fn quarter_turn(p: [f32; 2], height: u32) -> [f32; 2] {
    [height as f32 - p[1], p[0]]
}

#[test]
fn a_turned_face_gives_the_same_landmarks_turned() {
    // Rotating the photo and its detection by quarter turns moves the eye line by 90 degrees each time; the
    // ROI follows it, so the network sees the same upright crop and the points must turn with the photo.
    let rel = "misc/face_recognition/tests_test_images_32bit.png";
    let (mut img, mut det) = (photo(rel), fixture_detection(rel));
    let base = mesh().landmarks(&img, &det).unwrap();
    let mut want: Vec<[f32; 2]> = base.points.iter().map(|p| [p[0], p[1]]).collect();
    for turn in 1..=3 {
        let h = img.height();
        let b = det.bbox;
        det.bbox = BBox {
            x: h as f32 - (b.y + b.h),
            y: b.x,
            w: b.h,
            h: b.w,
        };
        det.keypoints = det.keypoints.map(|k| quarter_turn(k, h));
        want = want.into_iter().map(|p| quarter_turn(p, h)).collect();
        img = image::imageops::rotate90(&img);
        let lm = mesh().landmarks(&img, &det).unwrap();
        let diff = lm
            .points
            .iter()
            .zip(&want)
            .map(|(p, q)| (p[0] - q[0]).abs().max((p[1] - q[1]).abs()))
            .fold(0f32, f32::max);
        println!("{turn} quarter turn(s): max diff {diff:.5} px");
        assert!(
            diff < 0.01,
            "after {turn} quarter turn(s) the points moved by {diff} px"
        );
        assert!((lm.face_score - base.face_score).abs() < 1e-4);
        let (r, l) = (lm.eye_aspect_ratio(), base.eye_aspect_ratio());
        assert!((r.0 - l.0).abs() < 1e-3 && (r.1 - l.1).abs() < 1e-3);
    }
}

#[test]
fn eye_aspect_ratio_drops_for_closed_eyes() {
    // The whole path as the pipeline runs it: YuNet's best face, then FaceMesh on it.
    let detector = Detector::load(&common::models()).expect("yunet loads");
    let ear = |name: &str| {
        let img = photo(&format!(
            "misc/faceonnx/EyeBlinkDetection_images_{name}.jpg"
        ));
        let faces = detector.detect(&img, DEFAULT_SCORE_THRESHOLD).unwrap();
        assert_eq!(faces.len(), 1, "{name}: one face expected, got {faces:?}");
        let lm = mesh().landmarks(&img, &faces[0]).unwrap();
        assert!(lm.face_score > 0.99);
        lm.eye_aspect_ratio()
    };
    let open = ear("open_open");
    let wink = ear("closed_open");
    let closed = ear("closed_closed");
    println!(
        "EAR (right, left): open_open {open:?}, closed_open {wink:?}, closed_closed {closed:?}"
    );
    // Both eyes open vs both closed: a clear drop on each eye (measured 0.319/0.315 -> 0.197/0.203).
    assert!(open.0 > closed.0 + 0.05 && open.1 > closed.1 + 0.05);
    // The wink (measured 0.198/0.275) closes the person's right eye (image left): lower than the open eye
    // beside it (which squints while laughing) and far below the right eye when open.
    assert!(wink.0 < wink.1 - 0.02);
    assert!(wink.0 < open.0 - 0.1);
}

#[test]
fn bad_inputs_are_errors() {
    assert!(mesh().run_crop(&RgbImage::new(100, 192)).is_err());
    let mut det = fixture_detection("misc/faceonnx/EyeBlinkDetection_images_open_open.jpg");
    assert!(mesh().landmarks(&RgbImage::new(0, 0), &det).is_err());
    det.bbox.w = f32::NAN;
    assert!(mesh()
        .landmarks(
            &photo("misc/faceonnx/EyeBlinkDetection_images_open_open.jpg"),
            &det
        )
        .is_err());
    // Without the models folder the error names the file.
    let empty = tempfile::tempdir().unwrap();
    let err = FaceMesh::load(&facegate::models::ModelStore::new(vec![empty
        .path()
        .into()]))
    .err()
    .unwrap();
    assert!(err.to_string().contains("facemesh.safetensors"), "{err}");
}
