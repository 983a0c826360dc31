//! The real `facegate` binary on every kind of bad input: each is a clear per-file error (or, for unusual but
//! valid images, a face found as in the original) while the other files are still processed, and a failed
//! enrollment writes nothing.

mod cli_util;
mod common;

use std::path::PathBuf;

use cli_util::*;
use image::DynamicImage;

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
