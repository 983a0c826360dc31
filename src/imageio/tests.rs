//! Every kind of bad or unusual input, generated in the test: empty, truncated, corrupt, not an image,
//! grayscale, CMYK, 16-bit, alpha, EXIF-rotated and huge.

use std::io::Write;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageBuffer, ImageEncoder, Luma, Rgb, Rgba};

use super::*;

/// A textured RGB test picture (gradients, so every decoder path and JPEG's DCT get real work).
fn picture(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            (x * 255 / w.max(1)) as u8,
            (y * 255 / h.max(1)) as u8,
            ((x * 7 + y * 13) % 256) as u8,
        ])
    })
}

fn jpeg(img: &RgbImage, exif: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = JpegEncoder::new_with_quality(&mut out, 95);
    if let Some(exif) = exif {
        enc.set_exif_metadata(exif).unwrap();
    }
    enc.write_image(img, img.width(), img.height(), ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn png(bytes: &[u8], w: u32, h: u32, color: ExtendedColorType) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(bytes, w, h, color)
        .unwrap();
    out
}

/// A minimal little-endian TIFF/EXIF block holding only the orientation tag (0x0112).
pub(crate) fn exif_orientation(value: u16) -> Vec<u8> {
    let mut e = b"II*\0".to_vec();
    e.extend_from_slice(&8u32.to_le_bytes()); // first IFD right after the header
    e.extend_from_slice(&1u16.to_le_bytes()); // one entry
    e.extend_from_slice(&0x0112u16.to_le_bytes());
    e.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&value.to_le_bytes());
    e.extend_from_slice(&[0, 0]);
    e.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    e
}

/// Close enough for JPEG (lossy) comparisons of smooth content.
fn close(a: &Rgb<u8>, b: &Rgb<u8>, tol: i32) -> bool {
    a.0.iter()
        .zip(b.0.iter())
        .all(|(x, y)| (*x as i32 - *y as i32).abs() <= tol)
}

#[test]
fn zero_bytes_is_empty() {
    assert!(matches!(decode_image(&[]), Err(ImageError::Empty)));
    let f = tempfile::NamedTempFile::new().unwrap();
    let err = load_image(f.path()).unwrap_err();
    assert!(matches!(err, ImageError::Empty), "{err}");
    assert_eq!(err.to_string(), "empty file (0 bytes)");
}

#[test]
fn text_is_not_an_image() {
    let mut f = tempfile::Builder::new().suffix(".jpg").tempfile().unwrap();
    f.write_all(b"hello, I am a text file pretending to be a photo\n")
        .unwrap();
    let err = load_image(f.path()).unwrap_err();
    assert!(matches!(err, ImageError::NotAnImage), "{err}");
}

#[test]
fn missing_file_is_io() {
    let err = load_image("/nonexistent/facegate/x.jpg").unwrap_err();
    assert!(matches!(err, ImageError::Io(_)), "{err}");
}

#[test]
fn truncated_jpeg_is_corrupt() {
    let full = jpeg(&picture(320, 240), None);
    assert_eq!(decode_image(&full).unwrap().dimensions(), (320, 240));
    for cut in [full.len() / 2, full.len() - 100, 400] {
        let err = decode_image(&full[..cut]).unwrap_err();
        assert!(
            matches!(&err, ImageError::Corrupt { format, .. } if format == "JPEG"),
            "cut at {cut}: {err:?}"
        );
    }
}

#[test]
fn jpeg_with_trailing_bytes_is_fine() {
    // Some cameras append their own data after the end-of-image marker.
    let mut bytes = jpeg(&picture(64, 64), Some(exif_orientation(1)));
    bytes.extend_from_slice(b"\0\0vendor trailer");
    assert_eq!(decode_image(&bytes).unwrap().dimensions(), (64, 64));
}

#[test]
fn truncated_and_corrupt_png_are_corrupt() {
    let img = picture(64, 48);
    let full = png(img.as_raw(), 64, 48, ExtendedColorType::Rgb8);
    let err = decode_image(&full[..full.len() / 2]).unwrap_err();
    assert!(matches!(err, ImageError::Corrupt { .. }), "{err:?}");
    // Flip bytes in the middle of the compressed data: zlib or the chunk CRC must notice.
    let mut bad = full.clone();
    let mid = bad.len() / 2;
    for b in &mut bad[mid..mid + 8] {
        *b ^= 0x5a;
    }
    let err = decode_image(&bad).unwrap_err();
    assert!(matches!(err, ImageError::Corrupt { .. }), "{err:?}");
}

#[test]
fn grayscale_becomes_rgb() {
    let gray = ImageBuffer::<Luma<u8>, _>::from_fn(40, 30, |x, y| Luma([(x * 5 + y) as u8]));
    let img = decode_image(&png(gray.as_raw(), 40, 30, ExtendedColorType::L8)).unwrap();
    assert_eq!(img.dimensions(), (40, 30));
    assert_eq!(img.get_pixel(7, 3).0, [38, 38, 38]);
}

#[test]
fn sixteen_bit_becomes_eight_bit() {
    let img16 = ImageBuffer::<Rgb<u16>, _>::from_fn(20, 10, |x, _| {
        Rgb([x as u16 * 3000, 65535, 257 * 100])
    });
    let bytes: Vec<u8> = img16
        .as_raw()
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    let img = decode_image(&png(&bytes, 20, 10, ExtendedColorType::Rgb16)).unwrap();
    // 16-bit v maps to round(v / 257).
    assert_eq!(img.get_pixel(0, 0).0, [0, 255, 100]);
    assert_eq!(img.get_pixel(10, 5).0, [117, 255, 100]);
}

#[test]
fn alpha_is_dropped() {
    let rgba = ImageBuffer::<Rgba<u8>, _>::from_fn(8, 8, |x, y| Rgba([x as u8, y as u8, 9, 17]));
    let img = decode_image(&png(rgba.as_raw(), 8, 8, ExtendedColorType::Rgba8)).unwrap();
    assert_eq!(img.get_pixel(3, 5).0, [3, 5, 9]);
}

#[test]
fn cmyk_jpeg_becomes_rgb() {
    // Pure red in CMYK: no cyan, full magenta and yellow, no black.
    let (w, h) = (64u16, 32u16);
    let cmyk: Vec<u8> = (0..w as usize * h as usize)
        .flat_map(|_| [0u8, 255, 255, 0])
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 95)
        .encode(&cmyk, w, h, jpeg_encoder::ColorType::Cmyk)
        .unwrap();
    let img = decode_image(&out).unwrap();
    assert_eq!(img.dimensions(), (64, 32));
    let p = img.get_pixel(20, 10);
    assert!(close(p, &Rgb([255, 0, 0]), 8), "{p:?}");
}

#[test]
fn exif_orientation_is_applied() {
    // A 60x40 picture stored landscape, tagged "rotate 90 clockwise to display" (orientation 6).
    let stored = picture(60, 40);
    let img = decode_image(&jpeg(&stored, Some(exif_orientation(6)))).unwrap();
    assert_eq!(img.dimensions(), (40, 60));
    // After a clockwise turn the stored bottom-left corner is at the top-left.
    for (sx, sy, dx, dy) in [(2, 37, 2, 2), (57, 2, 37, 57), (30, 20, 19, 30)] {
        let (a, b) = (stored.get_pixel(sx, sy), img.get_pixel(dx, dy));
        assert!(
            close(a, b, 12),
            "stored ({sx},{sy}) {a:?} vs shown ({dx},{dy}) {b:?}"
        );
    }
    // Orientation 1 leaves the image as stored.
    let img = decode_image(&jpeg(&stored, Some(exif_orientation(1)))).unwrap();
    assert_eq!(img.dimensions(), (60, 40));
}

/// A PNG that is only a header claiming `w`x`h` pixels (plus a few bytes of nothing).
pub(crate) fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    // Encode a 1x1 image, then rewrite the IHDR size and CRC: the decoder must refuse from the header alone.
    let mut bytes = png(&[0, 0, 0], 1, 1, ExtendedColorType::Rgb8);
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn huge_image_is_refused_from_the_header() {
    let bytes = png_header_only(30000, 30000);
    let start = std::time::Instant::now();
    let err = decode_image(&bytes).unwrap_err();
    assert!(start.elapsed() < std::time::Duration::from_millis(200));
    assert!(
        matches!(
            err,
            ImageError::TooLarge {
                width: 30000,
                height: 30000,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "image too large: 30000x30000 = 900.0 megapixels, the limit is 50.0 megapixels"
    );
    // The same from a file.
    let mut f = tempfile::Builder::new().suffix(".png").tempfile().unwrap();
    f.write_all(&bytes).unwrap();
    assert!(matches!(
        load_image(f.path()),
        Err(ImageError::TooLarge { .. })
    ));
}

#[test]
fn tighter_limits_apply() {
    let bytes = jpeg(&picture(100, 100), None);
    let limits = ImageLimits {
        max_pixels: 5_000,
        ..ImageLimits::default()
    };
    assert!(matches!(
        decode_image_with(&bytes, &limits),
        Err(ImageError::TooLarge { .. })
    ));
    let limits = ImageLimits {
        max_file_bytes: 100,
        ..ImageLimits::default()
    };
    assert!(matches!(
        decode_image_with(&bytes, &limits),
        Err(ImageError::FileTooLarge { .. })
    ));
}
