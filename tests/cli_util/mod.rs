//! Helpers for the command-line tests: run the real binary, parse its output, and make unusual image files.
#![allow(dead_code)]

use std::path::Path;
use std::process::Output;

use image::{ImageEncoder, RgbImage};
use serde_json::Value;

use crate::common;

/// Run the binary with the test model folders.
pub fn facegate(args: &[&str]) -> Output {
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

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Parse JSON lines, keyed by their "image".
pub fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

pub fn id_photo(person: &str, n: u32) -> String {
    common::face(&format!("identities/{person}/{person}_{n:04}.jpg"))
        .display()
        .to_string()
}

pub fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort();
    k
}

pub const PERSON: &str = "Jerry_Seinfeld";
pub const IMPOSTOR: &str = "Madonna";

pub fn enroll_person(db: &str) {
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

pub fn people(db: &str) -> Vec<Value> {
    let o = facegate(&["people", "list", "--db", db, "--json"]);
    assert!(o.status.success());
    json_lines(&o)
}

/// Write `img` as a JPEG (quality 95), optionally with an EXIF orientation tag.
pub fn write_jpeg(path: &Path, img: &RgbImage, orientation: Option<u16>) {
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
pub fn exif_orientation(value: u16) -> Vec<u8> {
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
pub fn png_header_only(w: u32, h: u32) -> Vec<u8> {
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
pub fn write_cmyk_jpeg(path: &Path, img: &RgbImage) {
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
