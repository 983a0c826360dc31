//! The FaceMesh network (MediaPipe `face_landmark.tflite`, 604,685 weights) built from [`crate::vision::nn`].
//!
//! A 3x3 stride-2 stem, then residual blocks (depthwise 3x3 -> 1x1 conv, added to the input or to a 2x2
//! max-pool of it, zero-padded in channels when the block widens, then PReLU) down to 6x6x128, where the
//! network forks into the landmark head (1404 = 468 x (x, y, z) in crop pixels) and the face-presence head
//! (one logit). Tensor names are those written by `models/convert_facemesh.py`, which checks this exact
//! architecture against the TFLite interpreter before writing the file.
//!
//! TFLite pads SAME asymmetrically: a stride-2 3x3 conv on an even size pads one pixel at the bottom/right
//! only, which [`ConvCfg::pad`] expresses directly.

use std::collections::HashMap;

use candle_core::{DType, Module, Tensor};

use crate::vision::nn::{self, Activation, Conv2d, ConvCfg};
use crate::vision::{Result, VisionError};

const MODEL: &str = "facemesh";

/// Stride of each backbone block (`backbone.0` .. `backbone.13`): 96x96 -> 6x6.
const BACKBONE_STRIDES: [usize; 14] = [1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 1];

/// 3x3 SAME padding as [top, left, bottom, right] for a given stride (input sizes here are always even).
fn same_3x3(stride: usize) -> [usize; 4] {
    if stride == 1 {
        [1, 1, 1, 1]
    } else {
        [0, 0, 1, 1]
    }
}

/// Named f32 tensors of the converted model file, taken out one by one with their shapes checked.
struct Weights(HashMap<String, Tensor>);

impl Weights {
    fn get(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.0.remove(name).ok_or_else(|| VisionError::BadWeights {
            model: MODEL,
            reason: format!("tensor {name} is missing"),
        })?;
        if t.dims() != shape {
            return Err(VisionError::BadWeights {
                model: MODEL,
                reason: format!("tensor {name} has shape {:?}, expected {shape:?}", t.dims()),
            });
        }
        Ok(t.to_dtype(DType::F32)?)
    }

    /// A conv `name` with weight (cout, cin/groups, k, k) and bias, with an optional fused PReLU `prelu`.
    fn conv(
        &mut self,
        name: &str,
        [cout, cin_g, k]: [usize; 3],
        cfg: ConvCfg,
        prelu: Option<&str>,
    ) -> Result<Conv2d> {
        let w = self.get(&format!("{name}.weight"), &[cout, cin_g, k, k])?;
        let b = self.get(&format!("{name}.bias"), &[cout])?;
        let act = match prelu {
            Some(p) => Activation::PRelu(self.get(&format!("{p}.alpha"), &[cout])?),
            None => Activation::None,
        };
        Ok(Conv2d::new(w, Some(b), cfg, act)?)
    }
}

/// Depthwise 3x3 -> 1x1 conv, plus the (pooled, channel-padded) input, then PReLU.
struct Block {
    dw: Conv2d,
    pw: Conv2d,
    alpha: Tensor,
    stride: usize,
}

impl Block {
    fn load(w: &mut Weights, name: &str, cin: usize, cout: usize, stride: usize) -> Result<Self> {
        let dw_cfg = ConvCfg {
            stride,
            pad: same_3x3(stride),
            groups: cin,
        };
        Ok(Self {
            dw: w.conv(&format!("{name}.dw"), [cin, 1, 3], dw_cfg, None)?,
            pw: w.conv(
                &format!("{name}.pw"),
                [cout, cin, 1],
                ConvCfg::new(1, 0, 1),
                None,
            )?,
            alpha: w.get(&format!("{name}.alpha"), &[cout])?,
            stride,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = self.pw.forward(&self.dw.forward(x)?)?;
        let shortcut = if self.stride == 2 {
            nn::max_pool2d(x, 2, 2)?
        } else {
            x.clone()
        };
        // Channels the shortcut lacks count as zero padding (MediaPipe's PAD op), fused with the PReLU.
        nn::add_residual(&y, &shortcut, &Activation::PRelu(self.alpha.clone()))
    }
}

/// One output head: blocks at 128 channels, a 1x1 reduction to 32 + PReLU, one block at 32, then a 3x3
/// VALID stride-3 conv that turns the 3x3 map into a single vector.
struct Head {
    wide: Vec<Block>,
    reduce: Conv2d,
    narrow: Block,
    out: Conv2d,
}

impl Head {
    fn load(
        w: &mut Weights,
        name: &str,
        wide: &[&str],
        narrow: &str,
        outputs: usize,
    ) -> Result<Self> {
        let wide = wide
            .iter()
            .enumerate()
            .map(|(i, b)| {
                Block::load(
                    w,
                    &format!("{name}.{b}"),
                    128,
                    128,
                    if i == 0 { 2 } else { 1 },
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let reduce_name = format!("{name}.reduce");
        Ok(Self {
            wide,
            reduce: w.conv(
                &reduce_name,
                [32, 128, 1],
                ConvCfg::new(1, 0, 1),
                Some(&reduce_name),
            )?,
            narrow: Block::load(w, &format!("{name}.{narrow}"), 32, 32, 1)?,
            out: w.conv(
                &format!("{name}.out"),
                [outputs, 32, 3],
                ConvCfg::new(3, 0, 1),
                None,
            )?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = x.clone();
        for b in &self.wide {
            x = b.forward(&x)?;
        }
        let x = self.narrow.forward(&self.reduce.forward(&x)?)?;
        self.out.forward(&x)?.flatten_all()
    }
}

/// The whole network: input (1, 3, 192, 192) RGB in [0, 1] -> (1404 values, face logit).
pub(super) struct Net {
    stem: Conv2d,
    backbone: Vec<Block>,
    mesh: Head,
    face: Head,
}

impl Net {
    pub(super) fn from_tensors(tensors: HashMap<String, Tensor>) -> Result<Self> {
        let mut w = Weights(tensors);
        let stem_cfg = ConvCfg {
            stride: 2,
            pad: same_3x3(2),
            groups: 1,
        };
        let stem = w.conv("stem", [16, 3, 3], stem_cfg, Some("stem"))?;
        let mut backbone = Vec::with_capacity(BACKBONE_STRIDES.len());
        let mut cin = 16;
        for (i, &stride) in BACKBONE_STRIDES.iter().enumerate() {
            // Channels double at each of the first three downsamplings (16 -> 32 -> 64 -> 128), then stay.
            let cout = if stride == 2 { (cin * 2).min(128) } else { cin };
            backbone.push(Block::load(
                &mut w,
                &format!("backbone.{i}"),
                cin,
                cout,
                stride,
            )?);
            cin = cout;
        }
        let mesh = Head::load(
            &mut w,
            "mesh",
            &["block0", "block1", "block2"],
            "block3",
            1404,
        )?;
        let face = Head::load(&mut w, "face", &["block0"], "block1", 1)?;
        if !w.0.is_empty() {
            let mut left: Vec<_> = w.0.keys().cloned().collect();
            left.sort();
            return Err(VisionError::BadWeights {
                model: MODEL,
                reason: format!("unexpected tensors {left:?}"),
            });
        }
        Ok(Self {
            stem,
            backbone,
            mesh,
            face,
        })
    }

    pub(super) fn forward(&self, x: &Tensor) -> candle_core::Result<(Vec<f32>, f32)> {
        let mut x = self.stem.forward(x)?;
        for b in &self.backbone {
            x = b.forward(&x)?;
        }
        let mesh = self.mesh.forward(&x)?.to_vec1::<f32>()?;
        let face = self.face.forward(&x)?.to_vec1::<f32>()?;
        Ok((mesh, face[0]))
    }
}
