//! The enrollment rule on synthetic analysed faces: each refusal with its exact words, and the sample it gives.

use image::RgbImage;

use super::*;
use crate::vision::{BBox, Detection, Embedding, FaceObservation};

/// A face of `size` px whose nose sits `nose_dx` px off the eyes' midpoint, on a `chip`.
fn face(size: f32, nose_dx: f32, chip: RgbImage, axis: usize) -> AnalyzedFace {
    let mut v = vec![0.0; 128];
    v[axis] = 1.0;
    AnalyzedFace {
        observation: FaceObservation {
            detection: Detection {
                bbox: BBox {
                    x: 10.0,
                    y: 10.0,
                    w: size,
                    h: size,
                },
                score: 0.95,
                keypoints: [
                    [30.0, 40.0],
                    [70.0, 40.0],
                    [50.0 + nose_dx, 60.0],
                    [35.0, 80.0],
                    [65.0, 80.0],
                ],
            },
            landmarks: None,
            embedding: Embedding(v),
            antispoof: 0.9,
        },
        chip,
    }
}

/// A chip with plenty of detail (sharpness far above the limit).
fn sharp() -> RgbImage {
    RgbImage::from_fn(150, 150, |x, y| {
        let v = if (x / 3 + y / 3) % 2 == 0 { 40 } else { 200 };
        image::Rgb([v, v, v])
    })
}

fn good(axis: usize) -> AnalyzedFace {
    face(120.0, 0.0, sharp(), axis)
}

fn rule(faces: &[AnalyzedFace], seen_in: SeenIn) -> Result<EnrollSample, Rejection> {
    enrollment_sample(faces, &QualityLimits::default(), seen_in, "src")
}

fn words(faces: &[AnalyzedFace], seen_in: SeenIn) -> String {
    rule(faces, seen_in).unwrap_err().to_string()
}

#[test]
fn one_good_face_gives_its_sample() {
    let s = rule(&[good(3)], SeenIn::Photo).unwrap();
    assert_eq!(s.embedding, good(3).observation.embedding);
    assert_eq!(s.source, "src");
    assert_eq!(s.quality.face_size, 120.0);
    assert_eq!(s.quality.pose, 0.0);
    assert!(s.quality.score > 0.99, "{:?}", s.quality);
    let framed = enrollment_sample(
        &[good(3)],
        &QualityLimits::default(),
        SeenIn::Camera,
        format!("camera frame {}", 42),
    )
    .unwrap();
    assert_eq!(framed.source, "camera frame 42");
}

#[test]
fn no_face() {
    assert_eq!(
        rule(&[], SeenIn::Photo).unwrap_err(),
        Rejection::NoFace(SeenIn::Photo)
    );
    assert_eq!(words(&[], SeenIn::Photo), "no face found");
    assert_eq!(words(&[], SeenIn::Camera), "no face in view");
}

#[test]
fn two_faces_even_if_both_are_good() {
    let two = [good(0), good(1)];
    assert_eq!(
        words(&two, SeenIn::Photo),
        "2 faces found: an enrollment photo must show only the person"
    );
    assert_eq!(
        words(&two, SeenIn::Camera),
        "2 faces in view: only the person enrolling may be in view"
    );
}

#[test]
fn too_small() {
    let small = [face(30.0, 0.0, sharp(), 0)];
    assert!(matches!(
        rule(&small, SeenIn::Photo),
        Err(Rejection::Quality(QualityIssue::TooSmall { .. }))
    ));
    assert_eq!(
        words(&small, SeenIn::Camera),
        "face too small: 30 px, the minimum is 48 px"
    );
}

#[test]
fn blurry() {
    let flat = RgbImage::from_pixel(150, 150, image::Rgb([9, 9, 9]));
    assert_eq!(
        words(&[face(120.0, 0.0, flat, 0)], SeenIn::Photo),
        "too blurry: sharpness 0.0, the minimum is 20.0"
    );
}

#[test]
fn turned_away() {
    // The nose 15 px off the midpoint of eyes 40 px apart: pose 0.75, the limit is 0.70.
    assert_eq!(
        words(&[face(120.0, 15.0, sharp(), 0)], SeenIn::Photo),
        "head turned too far: pose 0.75, the maximum is 0.70"
    );
}

#[test]
fn the_limits_given_are_the_ones_applied() {
    let strict = QualityLimits {
        min_face_size: 200.0,
        ..QualityLimits::default()
    };
    assert!(matches!(
        enrollment_sample(&[good(0)], &strict, SeenIn::Photo, "x"),
        Err(Rejection::Quality(QualityIssue::TooSmall { .. }))
    ));
}
