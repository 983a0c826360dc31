//! The real `facegate` binary on real photos from `../shared/faces`: enroll, identify, embed, people, and every
//! kind of bad input (each a clear per-file error while the other files are still processed).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use image::{DynamicImage, ImageEncoder, RgbImage};
use serde_json::Value;

/// Run the binary with the test model folders.
fn facegate(args: &[&str]) -> Output {
    let models = std::env::join_paths([
        common::repo().join("models"),
        common::shared().join("models"),
    ])
    .unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_facegate"))
        .args(args)
        .env("FACEGATE_MODELS", models)
        .env_remove("FACEGATE_DB")
        .output()
        .expect("run facegate")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Parse JSON lines, keyed by their "image".
fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn id_photo(person: &str, n: u32) -> String {
    common::face(&format!("identities/{person}/{person}_{n:04}.jpg"))
        .display()
        .to_string()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort();
    k
}

const PERSON: &str = "Jerry_Seinfeld";
const IMPOSTOR: &str = "Madonna";

fn enroll_person(db: &str) {
    let photos: Vec<String> = (1..=3).map(|n| id_photo(PERSON, n)).collect();
    let mut args = vec!["enroll", "--db", db, "--name", PERSON];
    args.extend(photos.iter().map(String::as_str));
    let o = facegate(&args);
    assert!(
        o.status.success(),
        "{}\n{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout(&o).contains(&format!("enrolled 3 of 3 photos for {PERSON}")),
        "{}",
        stdout(&o)
    );
}

fn people(db: &str) -> Vec<Value> {
    let o = facegate(&["people", "list", "--db", db, "--json"]);
    assert!(o.status.success());
    json_lines(&o)
}

#[test]
fn enroll_identify_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gallery.db").display().to_string();
    enroll_person(&db);
    let listed = people(&db);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], PERSON);
    assert_eq!(listed[0]["access_level"], "resident");
    assert_eq!(listed[0]["embeddings"], 3);

    let (probe, other) = (id_photo(PERSON, 10), id_photo(IMPOSTOR, 1));
    let o = facegate(&["identify", "--db", &db, "--json", &probe, &other]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["image"], probe.as_str());
    let m = &lines[0]["faces"][0]["match"];
    assert_eq!(m["person"], PERSON, "{m}");
    assert!(m["distance"].as_f64().unwrap() <= 0.5, "{m}");
    let faces = lines[1]["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1);
    assert!(faces[0]["match"]["person"].is_null(), "{}", faces[0]);
    // identify --json: the embed schema without the embedding, plus the match.
    assert_eq!(
        keys(&faces[0]),
        ["antispoof", "box", "keypoints", "match", "score"]
    );
    assert_eq!(keys(&faces[0]["match"]), ["distance", "person"]);

    // The human-readable form says the same.
    let o = facegate(&["identify", "--db", &db, &probe, &other]);
    let text = stdout(&o);
    assert!(
        text.contains(&format!("{probe}: face 1"))
            && text.contains(&format!(": {PERSON} (distance")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{other}: face 1")) && text.contains("unknown (nearest"),
        "{text}"
    );

    let o = facegate(&["people", "remove", "--db", &db, PERSON]);
    assert!(o.status.success());
    assert!(people(&db).is_empty());
    let o = facegate(&["people", "remove", "--db", &db, PERSON]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no person named"));
    let o = facegate(&["identify", "--db", &db, "--json", &probe]);
    assert!(json_lines(&o)[0]["faces"][0]["match"]["person"].is_null());
}

#[test]
fn embed_json_schema_is_exact() {
    let img = id_photo(PERSON, 4);
    let o = facegate(&["embed", "--json", &img]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1);
    assert_eq!(keys(&lines[0]), ["faces", "image"]);
    assert_eq!(lines[0]["image"], img.as_str());
    let faces = lines[0]["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1);
    let f = &faces[0];
    assert_eq!(
        keys(f),
        ["antispoof", "box", "embedding", "keypoints", "score"]
    );
    let nums = |v: &Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let b = nums(&f["box"]);
    assert_eq!(b.len(), 4);
    // A 150 px tight crop: the face box lies within it and is at least a third of it.
    assert!(
        b[2] > 50.0 && b[3] > 50.0 && b[0] > -20.0 && b[0] + b[2] < 170.0,
        "{b:?}"
    );
    let kps = f["keypoints"].as_array().unwrap();
    assert_eq!(kps.len(), 5);
    assert!(kps.iter().all(|k| nums(k).len() == 2));
    let e = nums(&f["embedding"]);
    assert_eq!(e.len(), 128);
    let norm = e.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!(norm > 0.1 && norm < 10.0, "{norm}");
    let (s, a) = (
        f["score"].as_f64().unwrap(),
        f["antispoof"].as_f64().unwrap(),
    );
    assert!(
        (0.5..=1.0).contains(&s) && (0.0..=1.0).contains(&a),
        "{s} {a}"
    );
}

/// Write `img` as a JPEG (quality 95), optionally with an EXIF orientation tag.
fn write_jpeg(path: &Path, img: &RgbImage, orientation: Option<u16>) {
    let mut bytes = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95);
    if let Some(o) = orientation {
        enc.set_exif_metadata(exif_orientation(o)).unwrap();
    }
    enc.write_image(
        img,
        img.width(),
        img.height(),
        image::ExtendedColorType::Rgb8,
    )
    .unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A minimal little-endian EXIF (TIFF) block holding only the orientation tag.
fn exif_orientation(value: u16) -> Vec<u8> {
    let mut e = b"II*\0".to_vec();
    e.extend_from_slice(&8u32.to_le_bytes());
    e.extend_from_slice(&1u16.to_le_bytes());
    e.extend_from_slice(&0x0112u16.to_le_bytes());
    e.extend_from_slice(&3u16.to_le_bytes());
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&value.to_le_bytes());
    e.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    e
}

/// A PNG header claiming `w` x `h` pixels (the 1x1 image's IHDR rewritten, CRC fixed).
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(&[0, 0, 0], 1, 1, image::ExtendedColorType::Rgb8)
        .unwrap();
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    let mut crc = 0xffff_ffffu32;
    for &b in &bytes[12..29] {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    bytes[29..33].copy_from_slice(&(!crc).to_be_bytes());
    bytes
}

/// Naive RGB -> CMYK, written as an Adobe CMYK JPEG.
fn write_cmyk_jpeg(path: &Path, img: &RgbImage) {
    let cmyk: Vec<u8> = img
        .pixels()
        .flat_map(|p| {
            let k = 255 - *p.0.iter().max().unwrap();
            let c = |v: u8| {
                if k == 255 {
                    0
                } else {
                    ((255 - v - k) as u32 * 255 / (255 - k) as u32) as u8
                }
            };
            [c(p[0]), c(p[1]), c(p[2]), k]
        })
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 95)
        .encode(
            &cmyk,
            img.width() as u16,
            img.height() as u16,
            jpeg_encoder::ColorType::Cmyk,
        )
        .unwrap();
    std::fs::write(path, out).unwrap();
}

/// Every bad or unusual input next to good ones, in one `embed --json` run.
#[test]
fn bad_inputs_are_per_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let src_path = id_photo(PERSON, 5);
    let src = image::open(&src_path).unwrap().to_rgb8();
    let src_bytes = std::fs::read(&src_path).unwrap();

    std::fs::write(at("empty.jpg"), b"").unwrap();
    std::fs::write(at("truncated.jpg"), &src_bytes[..src_bytes.len() / 2]).unwrap();
    std::fs::write(at("text.jpg"), b"this is not a photo\n").unwrap();
    std::fs::write(at("huge.png"), png_header_only(30000, 30000)).unwrap();
    DynamicImage::ImageRgb8(src.clone())
        .to_luma8()
        .save(at("gray.png"))
        .unwrap();
    DynamicImage::ImageRgb8(src.clone())
        .to_rgb16()
        .save(at("rgb16.png"))
        .unwrap();
    write_cmyk_jpeg(&at("cmyk.jpg"), &src);
    // Stored turned a quarter to the left, tagged "turn 90 degrees clockwise to display" (orientation 6).
    write_jpeg(
        &at("exif_rotated.jpg"),
        &image::imageops::rotate270(&src),
        Some(6),
    );

    let no_face = common::face("negatives/no_person/coco_000000052891.jpg");
    let files: Vec<PathBuf> = [
        "empty.jpg",
        "truncated.jpg",
        "text.jpg",
        "huge.png",
        "gray.png",
        "rgb16.png",
        "cmyk.jpg",
        "exif_rotated.jpg",
    ]
    .iter()
    .map(|n| at(n))
    .chain([PathBuf::from(&src_path), no_face.clone()])
    .collect();
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let mut args = vec!["embed", "--json"];
    args.extend(names.iter().map(String::as_str));
    let o = facegate(&args);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines = json_lines(&o);
    assert_eq!(lines.len(), files.len(), "one line per image, in order");
    for (line, name) in lines.iter().zip(&names) {
        assert_eq!(line["image"], name.as_str());
    }
    let error = |i: usize| {
        lines[i]["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{}", lines[i]))
            .to_string()
    };
    let faces = |i: usize| {
        lines[i]["faces"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", lines[i]))
            .clone()
    };
    assert_eq!(error(0), "empty file (0 bytes)");
    assert!(error(1).contains("truncated"), "{}", error(1));
    assert!(error(2).starts_with("not an image"), "{}", error(2));
    assert_eq!(
        error(3),
        "image too large: 30000x30000 = 900.0 megapixels, the limit is 50.0 megapixels"
    );
    assert_eq!(keys(&lines[3]), ["error", "image"]);

    let original = faces(8);
    assert_eq!(original.len(), 1);
    let ob: Vec<f64> = original[0]["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for (i, what) in [
        (4, "grayscale"),
        (5, "16-bit"),
        (6, "CMYK"),
        (7, "EXIF-rotated"),
    ] {
        let f = faces(i);
        assert_eq!(f.len(), 1, "{what}: {}", lines[i]);
        // Upright again, the face is where it is in the original (within 10 px: JPEG and colour changes).
        let b: Vec<f64> = f[0]["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for k in 0..4 {
            assert!(
                (b[k] - ob[k]).abs() < 10.0,
                "{what}: box {b:?} vs original {ob:?}"
            );
        }
        // Upright: both eyes above the nose, the nose above both mouth corners.
        let y = |k: usize| f[0]["keypoints"][k][1].as_f64().unwrap();
        assert!(
            y(0).max(y(1)) < y(2) && y(2) < y(3).min(y(4)),
            "{what}: {}",
            f[0]["keypoints"]
        );
    }
    assert!(faces(9).is_empty(), "no_person: {}", lines[9]);
}

/// Enrollment refuses unusable photos one by one, enrolls the rest, and never half-writes.
#[test]
fn enroll_reports_each_bad_photo_and_never_half_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db").display().to_string();
    enroll_person(&db);
    let at = |name: &str| dir.path().join(name).display().to_string();
    let src = image::open(id_photo(PERSON, 6)).unwrap().to_rgb8();
    std::fs::write(at("empty.jpg"), b"").unwrap();
    // The face shrunk to ~1/4: a 37 px image with its face well under the minimum size.
    image::imageops::resize(&src, 38, 38, image::imageops::FilterType::Triangle)
        .save(at("small.png"))
        .unwrap();
    // Heavily blurred: detectable, but no detail left.
    image::imageops::blur(&src, 4.0)
        .save(at("blurry.png"))
        .unwrap();
    let no_face = common::face("negatives/no_person/coco_000000052891.jpg")
        .display()
        .to_string();
    let two = common::face("misc/face_recognition/examples_two_people.jpg")
        .display()
        .to_string();
    let good = id_photo(PERSON, 7);

    let before = people(&db);
    // All bad: nothing is written and the exit code says so.
    let o = facegate(&[
        "enroll",
        "--db",
        &db,
        "--name",
        "Someone_Else",
        &at("empty.jpg"),
        &no_face,
        &two,
    ]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(
        text.contains(&format!("error {}: empty file (0 bytes)", at("empty.jpg"))),
        "{text}"
    );
    assert!(
        text.contains(&format!("error {no_face}: no face found")),
        "{text}"
    );
    assert!(
        text.contains(&format!("error {two}: 2 faces found")),
        "{text}"
    );
    assert!(text.contains("nothing enrolled for Someone_Else"), "{text}");
    assert_eq!(people(&db), before);

    // Mixed: the good photo is enrolled, each bad one is named with its reason.
    let o = facegate(&[
        "enroll",
        "--db",
        &db,
        "--name",
        PERSON,
        &at("small.png"),
        &good,
        &at("blurry.png"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(
        text.contains(&format!("error {}: face too small:", at("small.png"))),
        "{text}"
    );
    assert!(text.contains("the minimum is 48 px"), "{text}");
    assert!(
        text.contains(&format!(
            "error {}: too blurry: sharpness",
            at("blurry.png")
        )),
        "{text}"
    );
    assert!(text.contains(&format!("ok    {good}: face")), "{text}");
    assert!(text.contains("enrolled 1 of 3 photos"), "{text}");
    let after = people(&db);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["embeddings"], 4);
}

#[test]
fn models_check_lists_every_model() {
    let o = facegate(&["models", "check"]);
    let text = stdout(&o);
    assert!(o.status.success(), "{text}");
    let manifest = facegate::models::manifest().unwrap();
    for m in &manifest {
        assert!(text.contains(&format!("ok       {}", m.id)), "{text}");
    }
    assert!(
        text.contains(&format!("{0} of {0} models ok", manifest.len())),
        "{text}"
    );
    // An empty folder: every model is missing, with the way to get it.
    let empty = tempfile::tempdir().unwrap();
    let o = facegate(&[
        "models",
        "check",
        "--models",
        &empty.path().display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(
        text.contains("MISSING  yunet") && text.contains("scripts/fetch-models.sh"),
        "{text}"
    );
}
