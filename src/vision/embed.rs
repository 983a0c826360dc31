//! dlib ResNet (face_recognition_resnet_model_v1, from the face-api tfjs port): 150x150 chip -> 128-d embedding.
//!
//! The network is dlib's 29-layer ResNet as face-api runs it:
//! - input: RGB, `(x - [122.782, 117.001, 104.298]) / 256` (dlib's `input_rgb_image` mean and divisor);
//! - stem: 7x7 conv stride 2 (no padding) + per-channel affine + ReLU, 3x3 max-pool stride 2;
//! - residual blocks (conv3x3 + affine + ReLU, conv3x3 + affine, add the input, ReLU): 32x3, down-64 + 64x3,
//!   down-128 + 128x2, down-256 + 256x2, down-256. A "down" block's first conv has stride 2 and no padding;
//!   its shortcut is a 2x2 average pool, zero-padded in channels (32 -> 64 ...) and the two branches are
//!   zero-padded at the bottom/right where their sizes differ (dlib's `add_prev` adds over the larger
//!   shape);
//! - global average pool, fully connected 256 -> 128 without bias.
//!
//! Each conv's per-channel affine (dlib's folded batch-norm) is folded into the conv's weights and bias at
//! load, so every conv is one [`nn::Conv2d`] with its ReLU fused: the fast kernels behind `nn` apply to the
//! whole network. tfjs stores filters HWIO; they are turned into OIHW once, here.

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor, D};
use image::RgbImage;

use super::nn::{self, Activation, Conv2d, ConvCfg};
use super::weights::{tfjs, WeightMap};
use super::{Embedding, Result, VisionError, EMBEDDING_DIM};
use crate::models::ModelStore;

/// Side of the square face chip the network takes.
pub const CHIP_SIZE: u32 = 150;

/// dlib's per-channel RGB mean, subtracted before dividing by 256.
const MEAN_RGB: [f32; 3] = [122.782, 117.001, 104.298];

const MODEL: &str = "dlib_resnet";

enum Block {
    /// Same shape in and out: `relu(conv2(conv1(x)) + x)`.
    Same { conv1: Conv2d, conv2: Conv2d },
    /// Halves the size: `relu(conv2(conv1(x)) + avgpool2(x))`, zero-padded where shapes differ.
    Down { conv1: Conv2d, conv2: Conv2d },
}

/// The dlib face embedding network, weights loaded once.
pub struct Embedder {
    stem: Conv2d,
    blocks: Vec<Block>,
    /// Fully connected layer, (256, 128).
    fc: Tensor,
}

impl Embedder {
    /// Loads the face-api tfjs files (sha256-checked through the manifest).
    pub fn load(store: &ModelStore) -> Result<Self> {
        let manifest = store.path("dlib_resnet_manifest")?;
        let weights = store.path("dlib_resnet_weights")?;
        Self::from_files(&manifest, &weights)
    }

    /// Loads from a tfjs manifest and its single shard (the files face-api publishes).
    pub fn from_files(manifest: &Path, shard: &Path) -> Result<Self> {
        let bad = |reason: String| VisionError::BadWeights {
            model: MODEL,
            reason,
        };
        let json = std::fs::read(manifest)
            .map_err(|e| bad(format!("cannot read {}: {e}", manifest.display())))?;
        let shard_name = shard.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let map = tfjs::parse(&json, |name| {
            if name == shard_name {
                std::fs::read(shard).map_err(|source| tfjs::TfjsError::Io {
                    path: shard.display().to_string(),
                    source,
                })
            } else {
                Err(tfjs::TfjsError::Manifest(format!(
                    "manifest names shard {name}, expected {shard_name}"
                )))
            }
        })
        .map_err(|e| bad(e.to_string()))?;
        Self::from_weights(&map)
    }

    /// Builds the network from named tfjs tensors (names as in face-api's manifest).
    pub fn from_weights(w: &WeightMap) -> Result<Self> {
        let stem = conv_layer(w, "conv32_down", 3, 32, 7, ConvCfg::new(2, 0, 1), true)?;
        let mut blocks = Vec::new();
        let mut cin = 32;
        let plan: [(&str, usize, bool); 13] = [
            ("conv32_1", 32, false),
            ("conv32_2", 32, false),
            ("conv32_3", 32, false),
            ("conv64_down", 64, true),
            ("conv64_1", 64, false),
            ("conv64_2", 64, false),
            ("conv64_3", 64, false),
            ("conv128_down", 128, true),
            ("conv128_1", 128, false),
            ("conv128_2", 128, false),
            ("conv256_down", 256, true),
            ("conv256_1", 256, false),
            ("conv256_2", 256, false),
        ];
        for (name, cout, down) in plan.into_iter().chain([("conv256_down_out", 256, true)]) {
            let first = if down {
                ConvCfg::new(2, 0, 1)
            } else {
                ConvCfg::new(1, 1, 1)
            };
            let conv1 = conv_layer(w, &format!("{name}/conv1"), cin, cout, 3, first, true)?;
            let conv2 = conv_layer(
                w,
                &format!("{name}/conv2"),
                cout,
                cout,
                3,
                ConvCfg::new(1, 1, 1),
                false,
            )?;
            blocks.push(if down {
                Block::Down { conv1, conv2 }
            } else {
                Block::Same { conv1, conv2 }
            });
            cin = cout;
        }
        let fc = get(w, "fc", &[256, EMBEDDING_DIM])?.clone();
        Ok(Self { stem, blocks, fc })
    }

    /// The 128-d embedding of a 150x150 RGB face chip (see [`super::align::chip`]).
    pub fn embed(&self, chip: &RgbImage) -> Result<Embedding> {
        let x = chip_tensor(chip)?;
        let y = self.forward(&x)?;
        Ok(Embedding(y.flatten_all()?.to_vec1::<f32>()?))
    }

    /// Embeddings of several chips (one network pass each: the layers run at batch 1).
    pub fn embed_batch(&self, chips: &[RgbImage]) -> Result<Vec<Embedding>> {
        chips.iter().map(|c| self.embed(c)).collect()
    }

    /// The network on a normalised (1, 3, 150, 150) tensor; returns (1, 128).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = nn::max_pool2d(&self.stem.forward(x)?, 3, 2)?;
        for block in &self.blocks {
            x = match block {
                Block::Same { conv1, conv2 } => {
                    nn::add_residual(&conv2.forward(&conv1.forward(&x)?)?, &x, &Activation::Relu)?
                }
                Block::Down { conv1, conv2 } => {
                    let y = conv2.forward(&conv1.forward(&x)?)?;
                    let s = nn::avg_pool2d(&x, 2)?;
                    let (yd, sd) = (y.dims4()?, s.dims4()?);
                    if sd.1 <= yd.1 && sd.2 <= yd.2 && sd.3 <= yd.3 {
                        // The usual case: one fused pass (the shortcut is zero-padded inside `y`).
                        nn::add_residual(&y, &s, &Activation::Relu)?
                    } else {
                        add_padded(&y, &s)?.relu()?
                    }
                }
            };
        }
        let pooled = x.mean(D::Minus1)?.mean(D::Minus1)?;
        Ok(pooled.matmul(&self.fc)?)
    }
}

/// `a + b` over the larger of their shapes, the smaller one zero-padded at the end of each dimension
/// (channels, bottom rows, right columns), as dlib's `add_prev` does.
fn add_padded(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (ad, bd) = (a.dims().to_vec(), b.dims().to_vec());
    let mut a = a.clone();
    let mut b = b.clone();
    for dim in 1..4 {
        let n = ad[dim].max(bd[dim]);
        a = a.pad_with_zeros(dim, 0, n - ad[dim])?;
        b = b.pad_with_zeros(dim, 0, n - bd[dim])?;
    }
    Ok((a + b)?)
}

/// The chip as a normalised (1, 3, 150, 150) tensor.
pub fn chip_tensor(chip: &RgbImage) -> Result<Tensor> {
    if chip.width() != CHIP_SIZE || chip.height() != CHIP_SIZE {
        return Err(VisionError::BadInput(format!(
            "face chip must be {CHIP_SIZE}x{CHIP_SIZE}, got {}x{}",
            chip.width(),
            chip.height()
        )));
    }
    let n = (CHIP_SIZE * CHIP_SIZE) as usize;
    let mut data = vec![0f32; 3 * n];
    for (i, p) in chip.pixels().enumerate() {
        for c in 0..3 {
            data[c * n + i] = (p.0[c] as f32 - MEAN_RGB[c]) / 256.0;
        }
    }
    let s = CHIP_SIZE as usize;
    Ok(Tensor::from_vec(data, (1, 3, s, s), &Device::Cpu)?)
}

fn get<'a>(w: &'a WeightMap, name: &str, shape: &[usize]) -> Result<&'a Tensor> {
    let t = w.get(name).ok_or_else(|| VisionError::BadWeights {
        model: MODEL,
        reason: format!("tensor {name} is missing"),
    })?;
    if t.dims() != shape || t.dtype() != DType::F32 {
        return Err(VisionError::BadWeights {
            model: MODEL,
            reason: format!(
                "tensor {name} has shape {:?} ({:?}), expected {shape:?} (f32)",
                t.dims(),
                t.dtype()
            ),
        });
    }
    Ok(t)
}

/// One conv + affine (+ ReLU) of face-api's layout, folded into a single OIHW conv:
/// `(conv(x, W) + b) * s + t == conv(x, W * s) + (b * s + t)`.
fn conv_layer(
    w: &WeightMap,
    prefix: &str,
    cin: usize,
    cout: usize,
    k: usize,
    cfg: ConvCfg,
    relu: bool,
) -> Result<Conv2d> {
    let filters = get(w, &format!("{prefix}/conv/filters"), &[k, k, cin, cout])?;
    let bias = get(w, &format!("{prefix}/conv/bias"), &[cout])?;
    let scale = get(w, &format!("{prefix}/scale/weights"), &[cout])?;
    let shift = get(w, &format!("{prefix}/scale/biases"), &[cout])?;
    let oihw = filters.permute((3, 2, 0, 1))?.contiguous()?;
    let weight = oihw.broadcast_mul(&scale.reshape((cout, 1, 1, 1))?)?;
    let bias = ((bias * scale)? + shift)?;
    let act = if relu {
        Activation::Relu
    } else {
        Activation::None
    };
    Ok(Conv2d::new(weight, Some(bias), cfg, act)?)
}

/// The unfolded reference of one conv layer (conv, then [`nn::channel_affine`]); kept for the test that
/// checks the folding.
#[cfg(test)]
fn conv_layer_unfolded(x: &Tensor, w: &WeightMap, prefix: &str, cfg: ConvCfg) -> Result<Tensor> {
    let filters = &w[&format!("{prefix}/conv/filters")];
    let conv = Conv2d::new(
        filters.permute((3, 2, 0, 1))?.contiguous()?,
        Some(w[&format!("{prefix}/conv/bias")].clone()),
        cfg,
        Activation::None,
    )?;
    Ok(crate::vision::nn::channel_affine(
        &conv.forward(x)?,
        &w[&format!("{prefix}/scale/weights")],
        &w[&format!("{prefix}/scale/biases")],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights() -> WeightMap {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        tfjs::read(&dir.join("face_recognition_model-weights_manifest.json")).unwrap()
    }

    #[test]
    fn manifest_holds_the_whole_network() {
        let w = weights();
        assert_eq!(w.len(), 117);
        let values: usize = w.values().map(|t| t.elem_count()).sum();
        assert_eq!(values, 5_614_592);
        Embedder::from_weights(&w).unwrap();
    }

    #[test]
    fn folded_affine_equals_conv_then_affine() {
        let w = weights();
        let x = Tensor::randn(0f32, 1.0, (1, 32, 12, 12), &Device::Cpu).unwrap();
        let cfg = ConvCfg::new(1, 1, 1);
        let folded = conv_layer(&w, "conv32_1/conv2", 32, 32, 3, cfg, false)
            .unwrap()
            .forward(&x)
            .unwrap();
        let reference = conv_layer_unfolded(&x, &w, "conv32_1/conv2", cfg).unwrap();
        let diff = (folded - reference)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-4, "max difference {diff}");
    }

    #[test]
    fn missing_or_misshapen_tensors_are_errors() {
        let mut w = weights();
        w.remove("fc");
        assert!(matches!(
            Embedder::from_weights(&w),
            Err(VisionError::BadWeights { .. })
        ));
        let mut w = weights();
        w.insert(
            "conv64_1/conv1/scale/weights".into(),
            Tensor::zeros(63, DType::F32, &Device::Cpu).unwrap(),
        );
        let err = Embedder::from_weights(&w).err().unwrap().to_string();
        assert!(err.contains("conv64_1/conv1/scale/weights"), "{err}");
    }

    #[test]
    fn wrong_chip_size_is_bad_input() {
        let e = Embedder::from_weights(&weights()).unwrap();
        let err = e.embed(&RgbImage::new(149, 150)).unwrap_err();
        assert!(matches!(err, VisionError::BadInput(_)), "{err}");
    }
}
