//! TensorFlow.js "layers-model" weight files: a JSON manifest plus binary shards, read as published.
//!
//! The manifest is a list of weight groups; each group names its shard files (whose bytes, concatenated in
//! order, hold the group's tensors back to back) and lists each tensor's name, shape and dtype. A tensor may
//! be quantized: then its bytes are `uint8`/`uint16` codes with a per-tensor `scale` and `min`
//! (value = code * scale + min) or `float16` values. face-api ships the dlib ResNet this way (uint8), which is
//! why this reader exists: the runtime reads the npm files directly, no conversion step at install time.
//!
//! Tensors come back as f32 candle tensors in the manifest's shape (tfjs conv filters are HWIO; the model
//! code converts layouts, not this reader).

use std::path::Path;

use candle_core::{Device, Tensor};
use serde::Deserialize;

use super::WeightMap;

/// Why a tfjs model could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TfjsError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("weights manifest is not valid tfjs JSON: {0}")]
    Manifest(String),
    #[error("tensor {name}: unsupported dtype {dtype} (supported: float32, or quantized uint8/uint16/float16)")]
    UnknownDtype { name: String, dtype: String },
    #[error("tensor {name}: quantized {dtype} needs both scale and min")]
    MissingQuantParams { name: String, dtype: String },
    #[error("tensor {name} needs {needed} bytes at offset {offset} but weight group {group} has only {available}: shard file truncated or not the manifest's")]
    Truncated {
        name: String,
        group: usize,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("weight group {group}: {extra} bytes left after the last tensor: shard file is not the manifest's")]
    TrailingBytes { group: usize, extra: usize },
    #[error("tensor {name} is listed twice")]
    Duplicate { name: String },
    #[error("tensor {name}: shape {shape:?} is too large")]
    BadShape { name: String, shape: Vec<usize> },
    #[error("tensor {name}: {source}")]
    Tensor {
        name: String,
        source: candle_core::Error,
    },
}

#[derive(Debug, Deserialize)]
struct Group {
    paths: Vec<String>,
    weights: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    name: String,
    shape: Vec<usize>,
    dtype: String,
    #[serde(default)]
    quantization: Option<Quantization>,
}

#[derive(Debug, Deserialize)]
struct Quantization {
    dtype: String,
    #[serde(default)]
    scale: Option<f64>,
    #[serde(default)]
    min: Option<f64>,
}

/// Reads the manifest at `manifest` with its shards taken from the same folder.
pub fn read(manifest: &Path) -> Result<WeightMap, TfjsError> {
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let json = read_file(manifest)?;
    parse(&json, |shard| read_file(&dir.join(shard)))
}

/// Parses a manifest; `shard` returns the bytes of a shard named in it (lets callers supply files they have
/// already verified, or bytes in memory).
pub fn parse(
    manifest_json: &[u8],
    mut shard: impl FnMut(&str) -> Result<Vec<u8>, TfjsError>,
) -> Result<WeightMap, TfjsError> {
    let groups: Vec<Group> =
        serde_json::from_slice(manifest_json).map_err(|e| TfjsError::Manifest(e.to_string()))?;
    let mut out = WeightMap::new();
    for (gi, group) in groups.iter().enumerate() {
        let mut data = Vec::new();
        for p in &group.paths {
            data.extend_from_slice(&shard(p)?);
        }
        let mut offset = 0;
        for entry in &group.weights {
            let (values, used) = decode(entry, gi, &data[offset..], offset)?;
            offset += used;
            let t = Tensor::from_vec(values, entry.shape.as_slice(), &Device::Cpu).map_err(
                |source| TfjsError::Tensor {
                    name: entry.name.clone(),
                    source,
                },
            )?;
            if out.insert(entry.name.clone(), t).is_some() {
                return Err(TfjsError::Duplicate {
                    name: entry.name.clone(),
                });
            }
        }
        if offset != data.len() {
            return Err(TfjsError::TrailingBytes {
                group: gi,
                extra: data.len() - offset,
            });
        }
    }
    Ok(out)
}

/// Decodes one tensor from the start of `bytes`; returns its values and how many bytes it used.
fn decode(
    e: &Entry,
    group: usize,
    bytes: &[u8],
    offset: usize,
) -> Result<(Vec<f32>, usize), TfjsError> {
    let count = e
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| TfjsError::BadShape {
            name: e.name.clone(),
            shape: e.shape.clone(),
        })?;
    let unknown = |dtype: &str| TfjsError::UnknownDtype {
        name: e.name.clone(),
        dtype: dtype.to_string(),
    };
    if e.dtype != "float32" {
        return Err(unknown(&e.dtype));
    }
    let width = match e.quantization.as_ref().map(|q| q.dtype.as_str()) {
        None => 4,
        Some("uint8") => 1,
        Some("uint16") | Some("float16") => 2,
        Some(other) => return Err(unknown(other)),
    };
    let needed = count
        .checked_mul(width)
        .ok_or_else(|| TfjsError::BadShape {
            name: e.name.clone(),
            shape: e.shape.clone(),
        })?;
    if bytes.len() < needed {
        return Err(TfjsError::Truncated {
            name: e.name.clone(),
            group,
            offset,
            needed,
            available: offset + bytes.len(),
        });
    }
    let raw = &bytes[..needed];
    let values = match &e.quantization {
        None => raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Some(q) if q.dtype == "float16" => raw
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Some(q) => {
            let (Some(scale), Some(min)) = (q.scale, q.min) else {
                return Err(TfjsError::MissingQuantParams {
                    name: e.name.clone(),
                    dtype: q.dtype.clone(),
                });
            };
            // tfjs dequantizes in JavaScript doubles and stores f32: do the same for identical values.
            let dq = |code: u16| (code as f64 * scale + min) as f32;
            if width == 1 {
                raw.iter().map(|&c| dq(c as u16)).collect()
            } else {
                raw.chunks_exact(2)
                    .map(|b| dq(u16::from_le_bytes([b[0], b[1]])))
                    .collect()
            }
        }
    };
    Ok((values, needed))
}

fn read_file(path: &Path) -> Result<Vec<u8>, TfjsError> {
    std::fs::read(path).map_err(|source| TfjsError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"[{"paths": ["a.bin", "b.bin"], "weights": [
        {"name": "q", "shape": [2, 2], "dtype": "float32",
         "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}},
        {"name": "f", "shape": [2], "dtype": "float32"},
        {"name": "q16", "shape": [1], "dtype": "float32",
         "quantization": {"dtype": "uint16", "scale": 2.0, "min": 1.0}}]}]"#;

    fn shards(name: &str) -> Result<Vec<u8>, TfjsError> {
        Ok(match name {
            // The group's bytes run across both shards: 4 uint8 codes, then 2 f32 split over the files.
            "a.bin" => {
                let mut v = vec![0u8, 1, 2, 255];
                v.extend_from_slice(&1.5f32.to_le_bytes());
                v.extend_from_slice(&(-2.0f32).to_le_bytes()[..2]);
                v
            }
            _ => {
                let mut v = (-2.0f32).to_le_bytes()[2..].to_vec();
                v.extend_from_slice(&7u16.to_le_bytes());
                v
            }
        })
    }

    #[test]
    fn reads_quantized_and_float_tensors_across_shards() {
        let w = parse(MANIFEST.as_bytes(), shards).unwrap();
        let q = w["q"].to_vec2::<f32>().unwrap();
        assert_eq!(q, vec![vec![-1.0, -0.5], vec![0.0, 126.5]]);
        assert_eq!(w["f"].to_vec1::<f32>().unwrap(), vec![1.5, -2.0]);
        assert_eq!(w["q16"].to_vec1::<f32>().unwrap(), vec![15.0]);
    }

    #[test]
    fn truncated_shard_is_an_error_naming_the_tensor() {
        let err = parse(MANIFEST.as_bytes(), |n| {
            let mut v = shards(n)?;
            if n == "b.bin" {
                v.pop();
            }
            Ok(v)
        })
        .unwrap_err();
        assert!(
            matches!(&err, TfjsError::Truncated { name, .. } if name == "q16"),
            "{err}"
        );
    }

    #[test]
    fn extra_bytes_are_an_error() {
        let err = parse(MANIFEST.as_bytes(), |n| {
            let mut v = shards(n)?;
            if n == "b.bin" {
                v.push(0);
            }
            Ok(v)
        })
        .unwrap_err();
        assert!(
            matches!(err, TfjsError::TrailingBytes { extra: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn unknown_dtypes_are_rejected() {
        let m = MANIFEST.replace("uint16", "int4");
        let err = parse(m.as_bytes(), shards).unwrap_err();
        assert!(
            matches!(&err, TfjsError::UnknownDtype { dtype, .. } if dtype == "int4"),
            "{err}"
        );
        let m = MANIFEST.replace(
            r#""name": "f", "shape": [2], "dtype": "float32""#,
            r#""name": "f", "shape": [2], "dtype": "int32""#,
        );
        assert!(matches!(
            parse(m.as_bytes(), shards).unwrap_err(),
            TfjsError::UnknownDtype { .. }
        ));
    }

    #[test]
    fn bad_json_and_missing_files_are_errors() {
        assert!(matches!(
            parse(b"{not json", shards).unwrap_err(),
            TfjsError::Manifest(_)
        ));
        let err = read(Path::new("/nonexistent/manifest.json")).unwrap_err();
        assert!(matches!(err, TfjsError::Io { .. }), "{err}");
    }
}
