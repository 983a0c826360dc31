//! 2-D convolution with fused bias and activation.

use candle_core::{Module, Result, Tensor};

/// Geometry of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvCfg {
    pub stride: usize,
    /// Zero padding as [top, left, bottom, right] (TFLite's SAME padding is asymmetric).
    pub pad: [usize; 4],
    /// 1 for a dense conv; the channel count for a depthwise conv.
    pub groups: usize,
}

impl ConvCfg {
    /// Symmetric padding `p` on every side.
    pub fn new(stride: usize, p: usize, groups: usize) -> Self {
        Self {
            stride,
            pad: [p, p, p, p],
            groups,
        }
    }
}

/// Activation fused into a convolution.
#[derive(Clone, Debug)]
pub enum Activation {
    None,
    Relu,
    /// Per-output-channel slopes for negative values.
    PRelu(Tensor),
}

/// A convolution layer: weight (Cout, Cin/groups, kh, kw), optional bias (Cout), activation.
#[derive(Clone, Debug)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    cfg: ConvCfg,
    act: Activation,
}

impl Conv2d {
    pub fn new(
        weight: Tensor,
        bias: Option<Tensor>,
        cfg: ConvCfg,
        act: Activation,
    ) -> Result<Self> {
        let (cout, _cin_g, _kh, _kw) = weight.dims4()?;
        if let Some(b) = &bias {
            if b.elem_count() != cout {
                candle_core::bail!(
                    "conv bias has {} values for {} output channels",
                    b.elem_count(),
                    cout
                );
            }
        }
        Ok(Self {
            weight,
            bias,
            cfg,
            act,
        })
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.dims()[0]
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // Reference path on candle's own ops; the fast kernels replace this without changing the API.
        let [t, l, b, r] = self.cfg.pad;
        let x = x.pad_with_zeros(2, t, b)?.pad_with_zeros(3, l, r)?;
        let mut y = x.conv2d(&self.weight, 0, self.cfg.stride, 1, self.cfg.groups)?;
        if let Some(bias) = &self.bias {
            y = y.broadcast_add(&bias.reshape((1, bias.elem_count(), 1, 1))?)?;
        }
        match &self.act {
            Activation::None => Ok(y),
            Activation::Relu => y.relu(),
            Activation::PRelu(a) => super::prelu(&y, a),
        }
    }
}
