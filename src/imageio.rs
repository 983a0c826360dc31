//! Decoding images from files and uploads: size limits checked before decoding, EXIF orientation applied,
//! every pixel format converted to 8-bit RGB.
//!
//! Images come from users (enrollment photos, uploads) and from cameras, so nothing about them is trusted:
//! the format is sniffed from the content (never the file name), the dimensions are read from the header and
//! checked before any pixel buffer is allocated, and every failure is a [`ImageError`] that says what is wrong
//! with this one file so a batch command can report it and go on with the others.

use std::io::{Cursor, Read};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

/// How large an image may be. The defaults admit any camera frame or phone photo and refuse decompression
/// bombs (a few kilobytes of PNG that claim 30000x30000 pixels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLimits {
    /// Most pixels (width x height) an image may have.
    pub max_pixels: u64,
    /// Most bytes the decoder may allocate for the decoded image in its native pixel format.
    pub max_alloc: u64,
    /// Largest encoded file accepted, in bytes.
    pub max_file_bytes: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_pixels: 50_000_000,
            // 50 Mpx of 16-bit RGB fits; the RGB8 copy made afterwards is smaller.
            max_alloc: 320 << 20,
            max_file_bytes: 100 << 20,
        }
    }
}

/// Why one image could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file exists but holds no bytes at all.
    #[error("empty file (0 bytes)")]
    Empty,
    /// The content is not any image format we know (a text file, a PDF, random bytes...).
    #[error("not an image: the content matches no known image format")]
    NotAnImage,
    /// An image format we recognise but do not decode (or a variant of one we cannot decode).
    #[error("unsupported image format: {0}")]
    Unsupported(String),
    /// The data ends early or contradicts itself.
    #[error("truncated or corrupt {format} data: {reason}")]
    Corrupt { format: String, reason: String },
    /// The header claims more pixels than we are willing to decode.
    #[error("image too large: {width}x{height} = {megapixels:.1} megapixels, the limit is {limit_megapixels:.1} megapixels")]
    TooLarge {
        width: u32,
        height: u32,
        megapixels: f64,
        limit_megapixels: f64,
    },
    /// The decoded image would need more memory than allowed.
    #[error("image needs {needed} bytes to decode, the limit is {limit} bytes")]
    TooMuchMemory { needed: u64, limit: u64 },
    /// The encoded file itself is too big to read.
    #[error("file too large: {bytes} bytes, the limit is {limit} bytes")]
    FileTooLarge { bytes: u64, limit: u64 },
    /// The file could not be read at all.
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
}

/// Load an image file as 8-bit RGB, upright, with the default [`ImageLimits`].
pub fn load_image(path: impl AsRef<Path>) -> Result<RgbImage, ImageError> {
    load_image_with(path.as_ref(), &ImageLimits::default())
}

/// Load an image file as 8-bit RGB, upright, within `limits`.
pub fn load_image_with(path: &Path, limits: &ImageLimits) -> Result<RgbImage, ImageError> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > limits.max_file_bytes {
        return Err(ImageError::FileTooLarge {
            bytes: len,
            limit: limits.max_file_bytes,
        });
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // `take` guards against a file that grows while we read it.
    file.take(limits.max_file_bytes + 1)
        .read_to_end(&mut bytes)?;
    decode_image_with(&bytes, limits)
}

/// Decode an encoded image held in memory (an upload) as 8-bit RGB, upright, with the default limits.
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage, ImageError> {
    decode_image_with(bytes, &ImageLimits::default())
}

/// Decode an encoded image held in memory as 8-bit RGB, upright, within `limits`.
pub fn decode_image_with(bytes: &[u8], limits: &ImageLimits) -> Result<RgbImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(ImageError::FileTooLarge {
            bytes: bytes.len() as u64,
            limit: limits.max_file_bytes,
        });
    }
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    let Some(format) = reader.format() else {
        return Err(ImageError::NotAnImage);
    };
    let format_name = format!("{format:?}").to_uppercase();
    let map = |e| map_error(e, &format_name);
    // The JPEG decoder pads a truncated file with grey, as browsers do; a face on half a photo is not what a
    // user meant to enroll, so a JPEG without its end marker is refused.
    if format == image::ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(ImageError::Corrupt {
            format: format_name,
            reason: "the file ends before the JPEG end-of-image marker (truncated)".to_string(),
        });
    }

    // Building the decoder reads only the header: nothing image-sized is allocated yet.
    let mut decoder = reader.into_decoder().map_err(map)?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(ImageError::TooLarge {
            width,
            height,
            megapixels: pixels as f64 / 1e6,
            limit_megapixels: limits.max_pixels as f64 / 1e6,
        });
    }
    if pixels == 0 {
        return Err(ImageError::Corrupt {
            format: format_name,
            reason: format!("the header says {width}x{height} pixels"),
        });
    }
    let needed = decoder.total_bytes();
    if needed > limits.max_alloc {
        return Err(ImageError::TooMuchMemory {
            needed,
            limit: limits.max_alloc,
        });
    }
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(limits.max_alloc);
    decoder.set_limits(decoder_limits).map_err(map)?;
    // A broken EXIF block must not cost the image: it is then shown as stored.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(map)?;
    img.apply_orientation(orientation);
    Ok(match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    })
}

/// Whether a JPEG has an end-of-image marker after its first scan starts.
///
/// Walks the header segments by their lengths (so an EXIF thumbnail's own markers are skipped) to the first
/// start-of-scan, then looks for EOI (`FF D9`) in what follows: inside entropy-coded data a literal `FF` is
/// always stuffed as `FF 00`, so `FF D9` there is the real marker. Trailing bytes after EOI are allowed.
fn jpeg_is_complete(b: &[u8]) -> bool {
    let mut i = 2; // after SOI
    loop {
        // Fill bytes: any number of FF before a marker code.
        while b.get(i) == Some(&0xff) && b.get(i + 1) == Some(&0xff) {
            i += 1;
        }
        let (Some(&0xff), Some(&code)) = (b.get(i), b.get(i + 1)) else {
            return false;
        };
        i += 2;
        if code == 0xd9 {
            return false; // EOI before any scan: no image data at all
        }
        if code == 0x01 || (0xd0..=0xd7).contains(&code) {
            continue; // markers without a length
        }
        let (Some(&hi), Some(&lo)) = (b.get(i), b.get(i + 1)) else {
            return false;
        };
        i += usize::from(u16::from_be_bytes([hi, lo]));
        if code == 0xda {
            break;
        }
    }
    b.get(i..)
        .is_some_and(|rest| rest.windows(2).any(|w| w == [0xff, 0xd9]))
}

/// Turn the image crate's error into ours, for a file already known to be of `format`.
fn map_error(e: image::ImageError, format: &str) -> ImageError {
    use image::error::{ImageError as E, LimitErrorKind};
    match e {
        E::Decoding(d) => ImageError::Corrupt {
            format: format.to_string(),
            reason: d.to_string(),
        },
        E::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => ImageError::Corrupt {
            format: format.to_string(),
            reason: "the data ends early".to_string(),
        },
        E::IoError(io) => ImageError::Corrupt {
            format: format.to_string(),
            reason: io.to_string(),
        },
        E::Unsupported(u) => ImageError::Unsupported(u.to_string()),
        E::Limits(l) => match l.kind() {
            LimitErrorKind::InsufficientMemory => ImageError::Unsupported(format!(
                "{format} image needs more memory than allowed to decode"
            )),
            _ => ImageError::Unsupported(format!("{format}: {l}")),
        },
        other => ImageError::Corrupt {
            format: format.to_string(),
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests;
