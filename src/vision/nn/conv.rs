//! 2-D convolution with fused bias and activation.
//!
//! Weights are packed into plain `Vec<f32>`s once, when the layer is built. A call runs one of our CPU
//! kernels as a candle custom op: depthwise convs ([`super::depthwise`]), dense and grouped convs as
//! matrix products ([`super::dense`]). Candle's own `conv2d` stays available as
//! [`Conv2d::forward_reference`], the definition the kernels are tested against.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Module, Result, Shape, Tensor};

use super::dense::conv_dense;
use super::depthwise::conv_depthwise;
use super::fewtaps::{conv_few_taps, MAX_TAPS};
use super::gemm::Epilogue;
use super::geom::Geom;
use super::rows::pack_rows;

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
    /// The weights as given, for [`Conv2d::forward_reference`].
    weight: Tensor,
    bias: Option<Tensor>,
    cfg: ConvCfg,
    act: Activation,
    /// The same layer packed for the fast kernels (shared by clones).
    packed: Arc<Packed>,
}

/// A conv layer in the form the kernels read.
#[derive(Debug)]
struct Packed {
    cout: usize,
    /// Input channels per group.
    cin_g: usize,
    kh: usize,
    kw: usize,
    cfg: ConvCfg,
    /// Row-major `[cout, cin_g*kh*kw]`.
    weight: Vec<f32>,
    epilogue: Epilogue,
    /// The weights packed for [`conv_few_taps`], for dense convs with few taps per output.
    few_taps: Option<Vec<f32>>,
}

impl Conv2d {
    pub fn new(
        weight: Tensor,
        bias: Option<Tensor>,
        cfg: ConvCfg,
        act: Activation,
    ) -> Result<Self> {
        let (cout, cin_g, kh, kw) = weight.dims4()?;
        if cfg.stride == 0 || cfg.groups == 0 || cout % cfg.groups != 0 {
            candle_core::bail!("conv config {cfg:?} does not fit {cout} output channels");
        }
        let flat = |t: &Tensor| t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>();
        let bias_v = match &bias {
            Some(b) if b.elem_count() != cout => candle_core::bail!(
                "conv bias has {} values for {} output channels",
                b.elem_count(),
                cout
            ),
            Some(b) => flat(b)?,
            None => vec![0.0; cout],
        };
        let slope = match &act {
            Activation::None => vec![1.0; cout],
            Activation::Relu => vec![0.0; cout],
            Activation::PRelu(a) if a.elem_count() == cout => flat(a)?,
            Activation::PRelu(a) if a.elem_count() == 1 => vec![flat(a)?[0]; cout],
            Activation::PRelu(a) => candle_core::bail!(
                "conv PReLU has {} slopes for {} output channels",
                a.elem_count(),
                cout
            ),
        };
        let active = bias.is_some() || !matches!(act, Activation::None);
        let weight_v = flat(&weight)?;
        let taps = cin_g * kh * kw;
        let pointwise = kh == 1 && kw == 1 && cfg.stride == 1 && cfg.pad == [0; 4];
        let few_taps = (cfg.groups == 1 && taps <= MAX_TAPS && !pointwise)
            .then(|| pack_rows(&weight_v, cout, taps));
        let packed = Packed {
            cout,
            cin_g,
            kh,
            kw,
            cfg,
            weight: weight_v,
            few_taps,
            epilogue: Epilogue {
                bias: bias_v,
                slope,
                active,
            },
        };
        Ok(Self {
            weight,
            bias,
            cfg,
            act,
            packed: Arc::new(packed),
        })
    }

    /// The layers side by side: one layer whose output channels are `layers`' in order. Dense layers
    /// (`depthwise` false: `groups` 1) must read the same input; depthwise layers (one input channel per
    /// output channel) read the concatenation of their inputs. All need the same kernel, geometry and
    /// activation kind (None or ReLU); `None` otherwise. Used to run detection heads as one layer.
    pub fn concat_outputs(layers: &[&Conv2d], depthwise: bool) -> Option<Conv2d> {
        let first = layers.first()?;
        let (_, cin_g, kh, kw) = first.weight.dims4().ok()?;
        let kind_ok = |c: &Conv2d| {
            if depthwise {
                c.weight.dims()[1] == 1 && c.cfg.groups == c.out_channels()
            } else {
                c.cfg.groups == 1
            }
        };
        let same_act = |c: &Conv2d| {
            matches!(
                (&first.act, &c.act),
                (Activation::None, Activation::None) | (Activation::Relu, Activation::Relu)
            )
        };
        let same = layers.iter().all(|c| {
            c.weight.dims4().ok() == Some((c.out_channels(), cin_g, kh, kw))
                && (c.cfg.stride, c.cfg.pad) == (first.cfg.stride, first.cfg.pad)
                && same_act(c)
                && kind_ok(c)
        });
        if !same {
            return None;
        }
        let weights: Vec<&Tensor> = layers.iter().map(|c| &c.weight).collect();
        let weight = Tensor::cat(&weights, 0).ok()?;
        let bias = if layers.iter().any(|c| c.bias.is_some()) {
            let parts = layers
                .iter()
                .map(|c| match &c.bias {
                    Some(b) => b.flatten_all(),
                    None => Tensor::zeros(c.out_channels(), DType::F32, c.weight.device()),
                })
                .collect::<Result<Vec<_>>>()
                .ok()?;
            Some(Tensor::cat(&parts, 0).ok()?)
        } else {
            None
        };
        let cout = weight.dims()[0];
        let cfg = ConvCfg {
            groups: if depthwise { cout } else { 1 },
            ..first.cfg
        };
        Conv2d::new(weight, bias, cfg, first.act.clone()).ok()
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.dims()[0]
    }

    /// The packed form: (cout, cin per group, kh, kw, geometry, row-major weights, bias + activation).
    pub(crate) fn packed_parts(&self) -> (usize, usize, usize, usize, ConvCfg, &[f32], &Epilogue) {
        let p = &*self.packed;
        (p.cout, p.cin_g, p.kh, p.kw, p.cfg, &p.weight, &p.epilogue)
    }

    /// The same layer through candle's own ops: slow, but the definition the fast kernels must match.
    pub fn forward_reference(&self, x: &Tensor) -> Result<Tensor> {
        let [t, l, b, r] = self.cfg.pad;
        let x = x.pad_with_zeros(2, t, b)?.pad_with_zeros(3, l, r)?;
        let mut y = x.conv2d(&self.weight, 0, self.cfg.stride, 1, self.cfg.groups)?;
        if let Some(bias) = &self.bias {
            y = y.broadcast_add(&bias.reshape((1, bias.elem_count(), 1, 1))?)?;
        }
        match &self.act {
            Activation::None => Ok(y),
            Activation::Relu => y.relu(),
            Activation::PRelu(a) => {
                let a = a.reshape((1, a.elem_count(), 1, 1))?;
                y.relu()? + y.minimum(0f32)?.broadcast_mul(&a)?
            }
        }
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.contiguous()?;
        x.apply_op1_no_bwd(self.packed.as_ref())
    }
}

impl Packed {
    /// Per-group geometry for an input of `cin` x `h` x `w`.
    fn geom(&self, cin: usize, h: usize, w: usize) -> Result<Geom> {
        let groups = self.cfg.groups;
        if cin != self.cin_g * groups {
            candle_core::bail!(
                "conv expects {} input channels, got {cin}",
                self.cin_g * groups
            );
        }
        let g = Geom::new(
            self.cin_g,
            h,
            w,
            self.cout / groups,
            self.kh,
            self.kw,
            self.cfg.stride,
            self.cfg.pad,
        );
        g.ok_or_else(|| {
            candle_core::Error::Msg(format!(
                "conv {}x{} kernel does not fit a {h}x{w} input padded by {:?}",
                self.kh, self.kw, self.cfg.pad
            ))
        })
    }

    /// One image: `x` is `[cin, h, w]`, `out` is `[cout, oh, ow]`.
    fn run(&self, x: &[f32], g: &Geom, out: &mut [f32]) {
        let groups = self.cfg.groups;
        if let Some(packed) = &self.few_taps {
            conv_few_taps(x, g, packed, &self.epilogue, out);
        } else if groups == 1 {
            conv_dense(x, g, &self.weight, &self.epilogue, out);
        } else if g.cin == 1 && g.cout == 1 {
            let dw = Geom {
                cin: groups,
                cout: groups,
                ..*g
            };
            conv_depthwise(x, &dw, &self.weight, &self.epilogue, out);
        } else {
            let (xin, xout, wn) = (g.cin * g.h * g.w, g.cout * g.out_pixels(), g.cout * g.k());
            for gi in 0..groups {
                let epi = self.epilogue.slice(gi * g.cout, g.cout);
                conv_dense(
                    &x[gi * xin..(gi + 1) * xin],
                    g,
                    &self.weight[gi * wn..(gi + 1) * wn],
                    &epi,
                    &mut out[gi * xout..(gi + 1) * xout],
                );
            }
        }
    }
}

impl CustomOp1 for Packed {
    fn name(&self) -> &'static str {
        "facegate-conv2d"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, cin, h, w) = layout.shape().dims4()?;
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("conv input must be contiguous");
        };
        let x = &storage.as_slice::<f32>()?[start..end];
        let g = self.geom(cin, h, w)?;
        let (img_in, img_out) = (cin * h * w, self.cout * g.out_pixels());
        // Every element is written by the kernels (gemm does not read it; depthwise fills each row first).
        let out = super::planes::written_buffer(n * img_out, |out| {
            for (xi, oi) in x.chunks_exact(img_in).zip(out.chunks_exact_mut(img_out)) {
                self.run(xi, &g, oi);
            }
        });
        Ok((
            CpuStorage::F32(out),
            Shape::from((n, self.cout, g.oh, g.ow)),
        ))
    }
}
