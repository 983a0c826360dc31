//! One MiniFASNet (V2 or V1SE) built from a Silent-Face state dict, batch-norm folded into the layers.
//!
//! The graph is read off the parameter names, so both variants share this code: a stem (`conv1` 3x3
//! stride 2, `conv2_dw` depthwise), inverted-residual blocks (`conv_23`, `conv_34`, `conv_45` stride 2;
//! `conv_3`, `conv_4`, `conv_5` residual stacks whose blocks may end in squeeze-excitation), `conv_6_sep`
//! 1x1, `conv_6_dw` 5x5 depthwise to 1x1, then linear 512->128 + BatchNorm1d and linear 128->3.
//! Every convolution is an [`nn::Conv2d`] so the fast kernels apply without changes here.

use candle_core::{DType, Module, Tensor, D};
use image::RgbImage;

use crate::vision::nn::{Activation, Conv2d, ConvCfg};
use crate::vision::weights::WeightMap;
use crate::vision::{Result, VisionError};

use super::crop::INPUT_SIZE;

/// PyTorch's BatchNorm default.
const BN_EPS: f64 = 1e-5;

/// Squeeze-excitation: channel gates from the global mean (1x1 convs, ReLU, sigmoid).
struct SqueezeExcite {
    fc1: Conv2d,
    fc2: Conv2d,
}

/// 1x1 expand, 3x3 depthwise, 1x1 linear projection; the residual ones add their input.
struct Block {
    expand: Conv2d,
    depthwise: Conv2d,
    project: Conv2d,
    residual: bool,
    se: Option<SqueezeExcite>,
}

pub struct MiniFasNet {
    stem: [Conv2d; 2],
    blocks: Vec<Block>,
    head: [Conv2d; 2],
    /// Linear 512->128 with BatchNorm1d folded in, stored transposed (512, 128).
    embed_w: Tensor,
    embed_b: Tensor,
    /// Linear 128->3, transposed (128, 3).
    prob_w: Tensor,
}

/// Reads parameters by name with errors that say which model and which tensor.
struct Params<'a> {
    w: &'a WeightMap,
    model: &'static str,
}

impl Params<'_> {
    fn bad(&self, reason: String) -> VisionError {
        VisionError::BadWeights {
            model: self.model,
            reason,
        }
    }

    fn has(&self, name: &str) -> bool {
        self.w.contains_key(name)
    }

    fn get(&self, name: &str) -> Result<Tensor> {
        let t = self
            .w
            .get(name)
            .ok_or_else(|| self.bad(format!("tensor {name} is missing")))?;
        Ok(t.to_dtype(DType::F32)?)
    }

    /// A vector of `n` values.
    fn vec(&self, name: &str, n: usize) -> Result<Tensor> {
        let t = self.get(name)?;
        if t.dims() != [n] {
            return Err(self.bad(format!("{name} has shape {:?}, expected [{n}]", t.dims())));
        }
        Ok(t)
    }

    /// Batch-norm `prefix` as a per-channel (scale, shift).
    fn bn(&self, prefix: &str, n: usize) -> Result<(Tensor, Tensor)> {
        let gamma = self.vec(&format!("{prefix}.weight"), n)?;
        let beta = self.vec(&format!("{prefix}.bias"), n)?;
        let mean = self.vec(&format!("{prefix}.running_mean"), n)?;
        let var = self.vec(&format!("{prefix}.running_var"), n)?;
        let scale = gamma.div(&(var + BN_EPS)?.sqrt()?)?;
        let shift = (beta - mean.mul(&scale)?)?;
        Ok((scale, shift))
    }

    /// A bias-free conv `conv_name` followed by batch-norm `bn_name`, folded; `cin` is checked.
    fn conv_bn(
        &self,
        conv_name: &str,
        bn_name: &str,
        cin: usize,
        stride: usize,
        pad: usize,
        act: Activation,
    ) -> Result<Conv2d> {
        let w = self.get(conv_name)?;
        let (cout, cin_g, kh, kw) = w.dims4()?;
        // A depthwise conv has one input channel per group; everything else here is dense.
        let groups = if cin_g == 1 && cin > 1 { cin } else { 1 };
        if cin_g * groups != cin || kh != kw || (groups > 1 && cout != cin) {
            return Err(self.bad(format!(
                "{conv_name} has shape {:?} for {cin} input channels",
                w.dims()
            )));
        }
        let (scale, shift) = self.bn(bn_name, cout)?;
        let w = w.broadcast_mul(&scale.reshape((cout, 1, 1, 1))?)?;
        Ok(Conv2d::new(
            w,
            Some(shift),
            ConvCfg::new(stride, pad, groups),
            act,
        )?)
    }

    /// Silent-Face's `Conv_block` (conv + bn + PReLU) or `Linear_block` (conv + bn) named `prefix`.
    fn block_layer(&self, prefix: &str, cin: usize, stride: usize, prelu: bool) -> Result<Conv2d> {
        let w = self.get(&format!("{prefix}.conv.weight"))?;
        let (cout, _, k, _) = w.dims4()?;
        let pad = if prefix == "conv_6_dw" {
            0
        } else {
            (k - 1) / 2
        };
        let act = if prelu {
            Activation::PRelu(self.vec(&format!("{prefix}.prelu.weight"), cout)?)
        } else {
            Activation::None
        };
        self.conv_bn(
            &format!("{prefix}.conv.weight"),
            &format!("{prefix}.bn"),
            cin,
            stride,
            pad,
            act,
        )
    }

    fn block(&self, prefix: &str, cin: usize, stride: usize, residual: bool) -> Result<Block> {
        let expand = self.block_layer(&format!("{prefix}.conv"), cin, 1, true)?;
        let mid = expand.out_channels();
        let depthwise = self.block_layer(&format!("{prefix}.conv_dw"), mid, stride, true)?;
        let project = self.block_layer(&format!("{prefix}.project"), mid, 1, false)?;
        let cout = project.out_channels();
        if residual && cout != cin {
            return Err(self.bad(format!(
                "{prefix}: residual block maps {cin} to {cout} channels"
            )));
        }
        let se_prefix = format!("{prefix}.se_module");
        let se = if residual && self.has(&format!("{se_prefix}.fc1.weight")) {
            let fc1 = self.conv_bn(
                &format!("{se_prefix}.fc1.weight"),
                &format!("{se_prefix}.bn1"),
                cout,
                1,
                0,
                Activation::Relu,
            )?;
            let fc2 = self.conv_bn(
                &format!("{se_prefix}.fc2.weight"),
                &format!("{se_prefix}.bn2"),
                fc1.out_channels(),
                1,
                0,
                Activation::None,
            )?;
            Some(SqueezeExcite { fc1, fc2 })
        } else {
            None
        };
        Ok(Block {
            expand,
            depthwise,
            project,
            residual,
            se,
        })
    }
}

impl MiniFasNet {
    pub fn from_weights(w: &WeightMap, model: &'static str) -> Result<Self> {
        let p = Params { w, model };
        let conv1 = p.block_layer("conv1", 3, 2, true)?;
        let conv2 = p.block_layer("conv2_dw", conv1.out_channels(), 1, true)?;
        let mut c = conv2.out_channels();
        let mut blocks = Vec::new();
        for (down, stack) in [
            ("conv_23", "conv_3"),
            ("conv_34", "conv_4"),
            ("conv_45", "conv_5"),
        ] {
            blocks.push(p.block(down, c, 2, false)?);
            c = blocks.last().map_or(c, |b| b.project.out_channels());
            let mut i = 0;
            while p.has(&format!("{stack}.model.{i}.conv.conv.weight")) {
                blocks.push(p.block(&format!("{stack}.model.{i}"), c, 1, true)?);
                i += 1;
            }
            if i == 0 {
                return Err(p.bad(format!("residual stack {stack} has no blocks")));
            }
        }
        let sep = p.block_layer("conv_6_sep", c, 1, true)?;
        let dw = p.block_layer("conv_6_dw", sep.out_channels(), 1, false)?;
        let feat = dw.out_channels();

        let linear = p.get("linear.weight")?;
        let (emb, lin_in) = linear.dims2()?;
        if lin_in != feat {
            return Err(p.bad(format!(
                "linear.weight takes {lin_in} inputs, features are {feat}"
            )));
        }
        let (scale, shift) = p.bn("bn", emb)?;
        let embed_w = linear
            .broadcast_mul(&scale.reshape((emb, 1))?)?
            .t()?
            .contiguous()?;
        let prob = p.get("prob.weight")?;
        let (classes, prob_in) = prob.dims2()?;
        if prob_in != emb || classes < 2 {
            return Err(p.bad(format!("prob.weight has shape {:?}", prob.dims())));
        }
        Ok(Self {
            stem: [conv1, conv2],
            blocks,
            head: [sep, dw],
            embed_w,
            embed_b: shift.reshape((1, emb))?,
            prob_w: prob.t()?.contiguous()?,
        })
    }

    /// Class probabilities (softmax) for one 80x80 crop; class 1 is "real".
    pub fn probabilities(&self, crop: &RgbImage) -> Result<Vec<f32>> {
        let mut x = to_input(crop)?;
        for l in &self.stem {
            x = l.forward(&x)?;
        }
        for b in &self.blocks {
            x = b.forward(&x)?;
        }
        for l in &self.head {
            x = l.forward(&x)?;
        }
        let x = x.flatten_from(1)?;
        let x = x.matmul(&self.embed_w)?.broadcast_add(&self.embed_b)?;
        let logits = x.matmul(&self.prob_w)?;
        let p = candle_nn::ops::softmax(&logits, D::Minus1)?;
        Ok(p.flatten_all()?.to_vec1::<f32>()?)
    }
}

impl Block {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = self.expand.forward(x)?;
        let y = self.depthwise.forward(&y)?;
        let mut y = self.project.forward(&y)?;
        if let Some(se) = &self.se {
            let s = y.mean_keepdim(3)?.mean_keepdim(2)?;
            let s = se.fc2.forward(&se.fc1.forward(&s)?)?;
            y = y.broadcast_mul(&candle_nn::ops::sigmoid(&s)?)?;
        }
        if self.residual {
            y = (y + x)?;
        }
        Ok(y)
    }
}

/// The network input: (1, 3, 80, 80), channels in BGR order, values 0..255 (Silent-Face feeds OpenCV images
/// without scaling).
fn to_input(crop: &RgbImage) -> Result<Tensor> {
    if crop.dimensions() != (INPUT_SIZE, INPUT_SIZE) {
        return Err(VisionError::BadInput(format!(
            "anti-spoof crop is {:?}, expected {INPUT_SIZE}x{INPUT_SIZE}",
            crop.dimensions()
        )));
    }
    let n = (INPUT_SIZE * INPUT_SIZE) as usize;
    let mut data = vec![0f32; 3 * n];
    for (i, p) in crop.pixels().enumerate() {
        data[i] = f32::from(p[2]);
        data[n + i] = f32::from(p[1]);
        data[2 * n + i] = f32::from(p[0]);
    }
    let s = INPUT_SIZE as usize;
    Ok(Tensor::from_vec(
        data,
        (1, 3, s, s),
        &candle_core::Device::Cpu,
    )?)
}
