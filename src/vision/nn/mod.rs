//! Neural-network layers shared by the four models, on candle tensors (NCHW, batch 1, f32, CPU).
//!
//! Models build themselves only from these layers, so the kernels behind them can be made fast without
//! touching any model. Weights are packed once when a layer is built, never per call.

mod conv;
mod dense;
mod depthwise;
mod fewtaps;
mod gemm;
mod geom;
mod im2col;
mod planes;
mod pwdw;
mod residual;
mod rows;
pub(crate) mod simd;

pub use conv::{Activation, Conv2d, ConvCfg};
pub(crate) use planes::written_buffer;
pub use planes::{avg_pool2d, max_pool2d, upsample_nearest};
pub use pwdw::PointwiseDepthwise;
pub use residual::add_residual;

use candle_core::{Result, Tensor};

/// Per-channel PReLU on an NCHW tensor: `x` where positive, `alpha[c] * x` where negative.
pub fn prelu(x: &Tensor, alpha: &Tensor) -> Result<Tensor> {
    let (_, c, h, w) = x.dims4()?;
    let a = planes::channel_values(alpha, c, "prelu slopes")?;
    planes::map_planes(x, h, w, |ch, src, dst| {
        let a = a[ch % c];
        for (o, v) in dst.iter_mut().zip(src) {
            *o = v.max(0.0) + a * v.min(0.0);
        }
    })
}

/// Per-channel affine `x * scale[c] + bias[c]` on an NCHW tensor (folded batch-norm, dlib's "affine" layer).
pub fn channel_affine(x: &Tensor, scale: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let (_, c, h, w) = x.dims4()?;
    let s = planes::channel_values(scale, c, "affine scale")?;
    let b = planes::channel_values(bias, c, "affine bias")?;
    planes::map_planes(x, h, w, |ch, src, dst| {
        let (s, b) = (s[ch % c], b[ch % c]);
        for (o, v) in dst.iter_mut().zip(src) {
            *o = v * s + b;
        }
    })
}

/// A raw output pointer that the parallel bands or tiles of one kernel share, each writing its own disjoint
/// rows or columns of a buffer that outlives the parallel loop (each user states its split at the call).
#[derive(Clone, Copy)]
pub(crate) struct OutPtr(pub(crate) *mut f32);
// SAFETY: every user writes disjoint regions through it, within the lifetime of the buffer.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer (a method, so closures capture the `Send` wrapper and not its raw field).
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}
