//! Neural-network layers shared by the four models, on candle tensors (NCHW, batch 1, f32, CPU).
//!
//! Models build themselves only from these layers, so the kernels behind them can be made fast without
//! touching any model. Weights are packed once when a layer is built, never per call.

mod conv;
mod dense;
mod depthwise;
mod gemm;
mod geom;
mod im2col;
mod simd;

pub use conv::{Activation, Conv2d, ConvCfg};

use candle_core::{Result, Tensor};

/// Per-channel PReLU on an NCHW tensor: `x` where positive, `alpha[c] * x` where negative.
pub fn prelu(x: &Tensor, alpha: &Tensor) -> Result<Tensor> {
    let c = alpha.elem_count();
    let alpha = alpha.reshape((1, c, 1, 1))?;
    let pos = x.relu()?;
    let neg = x.minimum(0f32)?.broadcast_mul(&alpha)?;
    pos + neg
}

/// Per-channel affine `x * scale[c] + bias[c]` on an NCHW tensor (folded batch-norm, dlib's "affine" layer).
pub fn channel_affine(x: &Tensor, scale: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let c = scale.elem_count();
    x.broadcast_mul(&scale.reshape((1, c, 1, 1))?)?
        .broadcast_add(&bias.reshape((1, c, 1, 1))?)
}
