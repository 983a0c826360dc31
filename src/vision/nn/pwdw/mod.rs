//! A 1x1 (pointwise) convolution followed by a 3x3 depthwise convolution (stride 1, padding 1), fused.
//!
//! This pair is nearly all of YuNet (and of most mobile detectors). Run as two layers, the pointwise result
//! (up to 64 channels of a 320x240 map, megabytes) goes out to memory and comes back; fused, it lives in a
//! ring of rows per channel that stays in cache: output row `y` needs pointwise rows `y-1..=y+1`, and
//! each pointwise row is computed once. Output rows are split into bands (and, with several threads,
//! output channels into groups) over rayon's pool; each band recomputes the two pointwise rows at its edges.
//!
//! The pointwise row is a small matrix product `[cout, cin] x [cin, w]` computed by the register-blocked
//! kernel in [`super::rows`], which at these sizes beats calling a general GEMM per row. Both layers' bias and
//! activation are fused. Two neighbours can join the layer, again so that their maps never go to memory: a
//! 2x2 max-pool after it ([`PointwiseDepthwise::with_max_pool2`]) and a first conv with few taps before it
//! ([`PointwiseDepthwise::with_input_conv`], YuNet's stride-2 3x3 conv over the image).

mod kernel;

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Module, Result, Shape, Tensor};

use super::conv::{Conv2d, ConvCfg};
use super::fewtaps::MAX_TAPS;
use super::rows::pack_rows;
use kernel::{PreConv, PwDwPacked};

/// A 1x1 convolution (stride 1, no padding, one group) followed by a 3x3 depthwise convolution (stride 1,
/// padding 1), run as one fused layer. Built from the two [`Conv2d`] layers, which stay available as the
/// reference definition.
#[derive(Clone, Debug)]
pub struct PointwiseDepthwise {
    /// A first conv fused in front ([`Self::with_input_conv`]).
    pre: Option<Conv2d>,
    pw: Conv2d,
    dw: Conv2d,
    packed: Arc<PwDwPacked>,
}

impl PointwiseDepthwise {
    /// Fuses `pw` then `dw`; `None` when they are not that pair of shapes.
    pub fn fuse(pw: &Conv2d, dw: &Conv2d) -> Option<Self> {
        let (cout, cin, kh, kw, cfg, w, epi) = pw.packed_parts();
        let (dcout, dcin_g, dkh, dkw, dcfg, dwv, depi) = dw.packed_parts();
        let pw_ok = (kh, kw, cfg) == (1, 1, ConvCfg::new(1, 0, 1));
        let dw_ok = (dcout, dcin_g, dkh, dkw, dcfg) == (cout, 1, 3, 3, ConvCfg::new(1, 1, cout));
        (pw_ok && dw_ok).then(|| Self {
            pre: None,
            pw: pw.clone(),
            dw: dw.clone(),
            packed: Arc::new(PwDwPacked::new(
                cin,
                cout,
                w,
                epi.clone(),
                dwv.to_vec(),
                depi.clone(),
            )),
        })
    }

    /// The layers side by side (all reading the same input): one layer whose output channels are theirs in
    /// order, e.g. a detector's heads at one level. `None` when their shapes or activations differ.
    pub fn concat_outputs(layers: &[&PointwiseDepthwise]) -> Option<Self> {
        let pws: Vec<&Conv2d> = layers.iter().map(|l| &l.pw).collect();
        let dws: Vec<&Conv2d> = layers.iter().map(|l| &l.dw).collect();
        Self::fuse(
            &Conv2d::concat_outputs(&pws, false)?,
            &Conv2d::concat_outputs(&dws, true)?,
        )
    }

    /// The pair followed by a 2x2 / stride 2 max-pool (floor mode: an odd last row or column is dropped),
    /// still one pass: each output row pools two depthwise rows that never leave the cache.
    pub fn with_max_pool2(mut self) -> Self {
        let mut packed = (*self.packed).clone();
        packed.pool = true;
        self.packed = Arc::new(packed);
        self
    }

    /// `conv` then this layer, still one pass: each pointwise input row is computed from `conv`'s input
    /// just before it is needed. `conv` must be dense with few taps (`cin * kh * kw` at most 32: a first
    /// layer over the image) and give this layer's input channels; `None` otherwise, or when a first conv
    /// is already fused in.
    pub fn with_input_conv(mut self, conv: &Conv2d) -> Option<Self> {
        let (cout, cin_g, kh, kw, cfg, w, epi) = conv.packed_parts();
        let k = cin_g * kh * kw;
        if self.pre.is_some() || cfg.groups != 1 || k > MAX_TAPS || cout != self.packed.cin {
            return None;
        }
        let mut packed = (*self.packed).clone();
        packed.pre = Some(PreConv {
            cin: cin_g,
            cout,
            kh,
            kw,
            stride: cfg.stride,
            pad: cfg.pad,
            packed: pack_rows(w, cout, k),
            epi: epi.clone(),
        });
        self.packed = Arc::new(packed);
        self.pre = Some(conv.clone());
        Some(self)
    }

    /// This layer applied to `lateral + nearest_upsample_2x(small)` (an FPN's top-down merge), still one
    /// pass: the sum is made one row at a time as the pointwise conv needs it, never as a whole map.
    /// `small` must be `lateral`'s size halved (even sizes); no first conv may be fused in.
    pub fn forward_upsample2_add(&self, lateral: &Tensor, small: &Tensor) -> Result<Tensor> {
        if self.pre.is_some() {
            candle_core::bail!("pointwise+depthwise with a first conv takes one input");
        }
        lateral
            .contiguous()?
            .apply_op2_no_bwd(&small.contiguous()?, self.packed.as_ref())
    }

    /// [`Self::forward_upsample2_add`] through candle's own ops.
    pub fn forward_upsample2_add_reference(
        &self,
        lateral: &Tensor,
        small: &Tensor,
    ) -> Result<Tensor> {
        let (_, _, h, w) = lateral.dims4()?;
        self.forward_reference(&(lateral + small.upsample_nearest2d(h, w)?)?)
    }

    /// Whether a first conv is fused in ([`Self::with_input_conv`]).
    pub fn has_input_conv(&self) -> bool {
        self.pre.is_some()
    }

    /// Whether a 2x2 max-pool is fused in ([`Self::with_max_pool2`]).
    pub fn pools(&self) -> bool {
        self.packed.pool
    }

    /// (input channels, output channels) of the whole layer.
    pub fn channels(&self) -> (usize, usize) {
        (self.packed.in_channels(), self.packed.cout)
    }

    /// The layers through candle's own ops (the definition the fused kernel must match).
    pub fn forward_reference(&self, x: &Tensor) -> Result<Tensor> {
        let x = match &self.pre {
            Some(conv) => conv.forward_reference(x)?,
            None => x.clone(),
        };
        let y = self.dw.forward_reference(&self.pw.forward_reference(&x)?)?;
        if self.packed.pool {
            y.max_pool2d(2)
        } else {
            Ok(y)
        }
    }
}

impl Module for PointwiseDepthwise {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op1_no_bwd(self.packed.as_ref())
    }
}

impl CustomOp1 for PwDwPacked {
    fn name(&self) -> &'static str {
        "facegate-pw-dw"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, cin, xh, xw) = layout.shape().dims4()?;
        if cin != self.in_channels() {
            candle_core::bail!(
                "pointwise+depthwise expects {} input channels, got {cin}",
                self.in_channels()
            );
        }
        let Some((h, w)) = self.map_size(xh, xw) else {
            candle_core::bail!("pointwise+depthwise: first conv does not fit a {xh}x{xw} input");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("conv input must be contiguous");
        };
        let x = &storage.as_slice::<f32>()?[start..end];
        let (oh, ow) = self.out_size(h, w);
        let (img_in, img_out) = (cin * xh * xw, self.cout * oh * ow);
        // Every element is written: each output row of each channel by exactly one band (nothing when the
        // output is empty).
        let out = super::planes::written_buffer(n * img_out, |out| {
            if img_out > 0 {
                for (xi, oi) in x.chunks_exact(img_in).zip(out.chunks_exact_mut(img_out)) {
                    self.run(xi, xh, xw, None, oi);
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((n, self.cout, oh, ow))))
    }
}

impl CustomOp2 for PwDwPacked {
    fn name(&self) -> &'static str {
        "facegate-upsample2-add-pw-dw"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, cin, h, w) = l1.shape().dims4()?;
        let small_dims = l2.shape().dims4()?;
        if cin != self.cin || self.pre.is_some() {
            candle_core::bail!(
                "pointwise+depthwise expects {} input channels, got {cin}",
                self.cin
            );
        }
        if small_dims != (n, cin, h / 2, w / 2) || h % 2 != 0 || w % 2 != 0 {
            candle_core::bail!("cannot upsample {small_dims:?} onto {:?}", (n, cin, h, w));
        }
        let (Some((a0, a1)), Some((b0, b1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("conv inputs must be contiguous");
        };
        let lateral = &s1.as_slice::<f32>()?[a0..a1];
        let small = &s2.as_slice::<f32>()?[b0..b1];
        let (oh, ow) = self.out_size(h, w);
        let (img_in, img_small, img_out) =
            (cin * h * w, cin * (h / 2) * (w / 2), self.cout * oh * ow);
        // Every element is written: each output row of each channel by exactly one task (nothing when the
        // output is empty).
        let out = super::planes::written_buffer(n * img_out, |out| {
            if img_out > 0 && img_small > 0 {
                for ((xi, si), oi) in lateral
                    .chunks_exact(img_in)
                    .zip(small.chunks_exact(img_small))
                    .zip(out.chunks_exact_mut(img_out))
                {
                    self.run(xi, h, w, Some(si), oi);
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((n, self.cout, oh, ow))))
    }
}
