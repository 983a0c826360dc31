//! MiniFASNet V2 + V1SE against an independent numpy implementation
//! (`tests/fixtures/antispoof/make_reference.py`) on real photos, and the spoof decision on Silent-Face's
//! samples.
//!
//! Face boxes come from the fixture (YuNet in onnxruntime, rounded to 1/64 px so f32 holds them exactly).
//! PNG photos decode identically here and in Pillow, so their crops must match bit for bit and the
//! softmax within 1e-4. JPEG decoders differ by a few levels on some pixels (zune-jpeg vs libjpeg-turbo),
//! so JPEG-derived numbers get a looser, stated tolerance.

mod common;

use std::path::Path;

use facegate::vision::antispoof::{self, AntiSpoof, DEFAULT_THRESHOLD, V1SE_SCALE, V2_SCALE};
use facegate::vision::detect::Detector;
use facegate::vision::weights::pth;
use facegate::vision::{BBox, Detection, VisionError};
use image::RgbImage;
use serde_json::Value;

/// Softmax agreement when the crops are bit-identical (float32 candle vs float64 numpy).
const EXACT_TOL: f32 = 1e-4;
/// Softmax agreement for JPEG photos, whose decoded pixels differ by up to 4 levels between decoders.
const JPEG_TOL: f32 = 0.05;

fn reference() -> Value {
    let p = common::fixture("antispoof/reference.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Decodes a photo the way facegate does (EXIF orientation applied, like Pillow's `exif_transpose` in the
/// reference).
fn load_photo(path: &Path) -> RgbImage {
    facegate::imageio::load_image(path).unwrap()
}

fn detection(entry: &Value) -> Detection {
    let b: Vec<f32> = entry["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    Detection {
        bbox: BBox {
            x: b[0],
            y: b[1],
            w: b[2],
            h: b[3],
        },
        score: entry["det_score"].as_f64().unwrap() as f32,
        keypoints: [[0.0; 2]; 5],
    }
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn pixel_sum(img: &RgbImage) -> i64 {
    img.as_raw().iter().map(|&v| i64::from(v)).sum()
}

#[test]
fn pth_reader_reads_both_checkpoints() {
    let store = common::models();
    let r = reference();
    for (id, key) in [("minifasnet_v2", "v2"), ("minifasnet_v1se", "v1se")] {
        let w = pth::read(&store.path(id).unwrap()).unwrap();
        let want = &r["weights"][key];
        assert_eq!(w.len() as u64, want["count"].as_u64().unwrap(), "{id}");
        assert!(
            w.keys().all(|k| !k.starts_with("module.")),
            "{id}: DataParallel prefix kept"
        );
        for (name, sum) in want["sums"].as_object().unwrap() {
            let t = &w[name];
            let shape: Vec<usize> = want["shapes"][name]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(t.dims(), shape.as_slice(), "{id} {name}");
            let got = t
                .to_dtype(candle_core::DType::F64)
                .unwrap()
                .flatten_all()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            let want = sum.as_f64().unwrap();
            assert!(
                (got - want).abs() < 1e-9 * want.abs().max(1.0),
                "{id} {name}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn truncated_and_foreign_files_are_clear_errors() {
    let path = common::models().path("minifasnet_v2").unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let storage_cut = pth::parse(&bytes[..bytes.len() - 1000]).unwrap_err();
    assert!(
        matches!(storage_cut, pth::PthError::Truncated(_)),
        "{storage_cut}"
    );
    let pickle_cut = pth::parse(&bytes[..30_000]).unwrap_err();
    assert!(
        pickle_cut.to_string().contains("state dict"),
        "{pickle_cut}"
    );
    let jpeg = std::fs::read(common::face("spoof/silentface/image_T1.jpg")).unwrap();
    let e = pth::parse(&jpeg).unwrap_err();
    assert!(matches!(e, pth::PthError::NotPth(_)), "{e}");
    let e = pth::parse(b"PK\x03\x04rest of a zip").unwrap_err();
    assert!(e.to_string().contains("zip format"), "{e}");
    assert!(pth::parse(&[]).is_err());

    // Through the model API the error names the model.
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pth");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = AntiSpoof::from_files(&cut, &cut).err().unwrap();
    assert!(
        matches!(
            err,
            VisionError::BadWeights {
                model: "minifasnet_v2",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn outputs_match_numpy_reference() {
    let spoof = AntiSpoof::load(&common::models()).unwrap();
    let r = reference();
    for entry in r["photos"].as_array().unwrap() {
        let file = entry["file"].as_str().unwrap();
        let img = load_photo(&common::face(file));
        let det = detection(entry);
        let exact = file.ends_with(".png");
        for (key, scale) in [("v2", V2_SCALE), ("v1se", V1SE_SCALE)] {
            let rect = antispoof::crop_rect(img.width(), img.height(), &det.bbox, scale).unwrap();
            let want: Vec<u32> = entry[key]["rect"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(rect.to_vec(), want, "{file} {key}: crop rectangle");
            let crop = antispoof::crop_face(&img, &det.bbox, scale).unwrap();
            let want_sum = entry[key]["pixel_sum"].as_i64().unwrap();
            if exact {
                assert_eq!(pixel_sum(&crop), want_sum, "{file} {key}: crop pixels");
            } else {
                // Decoder noise averages out: well under one level per value.
                let mean_diff = (pixel_sum(&crop) - want_sum).abs() as f64 / (80.0 * 80.0 * 3.0);
                assert!(
                    mean_diff < 0.5,
                    "{file} {key}: mean pixel difference {mean_diff}"
                );
            }
        }
        let out = spoof.outputs(&img, &det).unwrap();
        let tol = if exact { EXACT_TOL } else { JPEG_TOL };
        let dv2 = max_diff(&out.v2, &floats(&entry["v2"]["softmax"]));
        let dv1 = max_diff(&out.v1se, &floats(&entry["v1se"]["softmax"]));
        println!(
            "{file:72} p_real {:.4} (numpy {:.4})  max diff v2 {dv2:.2e} v1se {dv1:.2e}",
            out.p_real(),
            entry["p_real"].as_f64().unwrap()
        );
        assert!(
            dv2 <= tol && dv1 <= tol,
            "{file}: diff {dv2} / {dv1} > {tol}"
        );
        let sum: f32 = out.v2.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5);
    }
}

#[test]
fn silentface_samples_are_classified_at_the_default_threshold() {
    let spoof = AntiSpoof::load(&common::models()).unwrap();
    let r = reference();
    for (name, real) in [
        ("image_F1.jpg", false),
        ("image_F2.jpg", false),
        ("image_T1.jpg", true),
    ] {
        let file = format!("spoof/silentface/{name}");
        let entry = r["photos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["file"] == file.as_str())
            .unwrap();
        let img = load_photo(&common::face(&file));
        let t = std::time::Instant::now();
        let score = spoof.score(&img, &detection(entry)).unwrap();
        println!(
            "{name}: p_real {score:.4} ({:.1} ms)",
            t.elapsed().as_secs_f64() * 1e3
        );
        assert_eq!(score >= DEFAULT_THRESHOLD, real, "{name} scored {score}");
    }
}

#[test]
fn crops_of_the_wrong_size_are_rejected() {
    let spoof = AntiSpoof::load(&common::models()).unwrap();
    let small = RgbImage::new(40, 80);
    let ok = RgbImage::new(80, 80);
    assert!(matches!(
        spoof.score_crops(&small, &ok),
        Err(VisionError::BadInput(_))
    ));
    // A flat grey crop is a valid input and gives probabilities.
    let p = spoof.score_crops(&ok, &ok).unwrap();
    assert!((0.0..=1.0).contains(&p));
}

#[test]
fn corrupted_files_give_errors_not_panics() {
    let bytes = std::fs::read(common::models().path("minifasnet_v1se").unwrap()).unwrap();
    // Cut inside every part (the pickles end near byte 66,400; storages follow).
    for len in (0..bytes.len()).step_by(4999) {
        assert!(pth::parse(&bytes[..len]).is_err(), "cut at {len} parsed");
    }
    // Byte flips in the pickles: any outcome but a panic (some flips only change a name or a value).
    let mut x = 12345u64;
    for _ in 0..300 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let at = (x >> 33) as usize % 66_400;
        let mut b = bytes.clone();
        b[at] ^= (x >> 8) as u8 | 1;
        let _ = pth::parse(&b);
    }
}

/// The whole path facegate runs: YuNet in candle finds the face, MiniFASNet scores it.
#[test]
fn yunet_boxes_give_the_same_decisions() {
    let store = common::models();
    let detector = Detector::load(&store).unwrap();
    let spoof = AntiSpoof::load(&store).unwrap();
    let r = reference();
    for entry in r["photos"].as_array().unwrap() {
        let file = entry["file"].as_str().unwrap();
        let img = load_photo(&common::face(file));
        // The 150 px identity photos are tight face crops: the detector needs a margin around them.
        let dets = if img.width() <= 150 {
            detector.detect_crop(&img, 0.5).unwrap()
        } else {
            detector.detect(&img, 0.5).unwrap()
        };
        let det = dets.first().unwrap_or_else(|| panic!("{file}: no face"));
        let iou = det.bbox.iou(&detection(entry).bbox);
        let score = spoof.score(&img, det).unwrap();
        let want = entry["p_real"].as_f64().unwrap();
        println!("{file:72} p_real {score:.4} (fixture box {want:.4}, IoU {iou:.3})");
        assert!(
            iou > 0.85,
            "{file}: detector box differs from the fixture's (IoU {iou})"
        );
        if let Some(real) = match file {
            "spoof/silentface/image_F1.jpg" | "spoof/silentface/image_F2.jpg" => Some(false),
            "spoof/silentface/image_T1.jpg" => Some(true),
            _ => None,
        } {
            assert_eq!(score >= DEFAULT_THRESHOLD, real, "{file} scored {score}");
        }
    }
}
