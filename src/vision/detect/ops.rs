//! YuNet's two non-convolution hot spots as candle custom ops: 2x2/stride-2 max-pooling, and the FPN's
//! "nearest 2x upsample, then add the lateral map" fused into one pass.
//!
//! candle's generic `max_pool2d` and `upsample_nearest2d` + add took ~6 ms of a ~40 ms frame at 640x480
//! (about as much as onnxruntime's whole network); these memory-bound loops over contiguous NCHW planes,
//! parallel over channels, take a fraction of that. Results are bit-identical (max and add are exact).

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::vision::nn;

/// Planes per rayon task: small maps are not worth splitting.
fn min_planes(plane: usize) -> usize {
    (16 * 1024 / plane.max(1)).max(1)
}

/// (batch, channels, height, width).
type Dims4 = (usize, usize, usize, usize);

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<(&'a [f32], Dims4)> {
    let dims = l.shape().dims4()?;
    let data = match s {
        CpuStorage::F32(v) => v,
        _ => candle_core::bail!("{op}: only f32 is supported"),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok((&data[a..b], dims)),
        None => candle_core::bail!("{op}: input must be contiguous"),
    }
}

struct MaxPool2;

impl CustomOp1 for MaxPool2 {
    fn name(&self) -> &'static str {
        "yunet-maxpool2x2"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, (n, c, h, w)) = contiguous(s, l, self.name())?;
        let (oh, ow) = (h / 2, w / 2);
        // Every output element is written below (an empty map has nothing to write).
        let out = nn::written_buffer(n * c * oh * ow, |out| {
            if oh * ow > 0 {
                out.par_chunks_mut(oh * ow)
                    .zip(x.par_chunks(h * w))
                    .with_min_len(min_planes(h * w))
                    .for_each(|(o, p)| {
                        for (y, orow) in o.chunks_exact_mut(ow).enumerate() {
                            let r0 = &p[2 * y * w..2 * y * w + 2 * ow];
                            let r1 = &p[(2 * y + 1) * w..(2 * y + 1) * w + 2 * ow];
                            for (i, v) in orow.iter_mut().enumerate() {
                                *v = r0[2 * i]
                                    .max(r0[2 * i + 1])
                                    .max(r1[2 * i].max(r1[2 * i + 1]));
                            }
                        }
                    });
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((n, c, oh, ow))))
    }
}

struct Upsample2Add;

impl CustomOp2 for Upsample2Add {
    fn name(&self) -> &'static str {
        "yunet-upsample2-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (lat, (n, c, h, w)) = contiguous(s1, l1, self.name())?;
        let (small, dims2) = contiguous(s2, l2, self.name())?;
        if dims2 != (n, c, h / 2, w / 2) || h % 2 != 0 || w % 2 != 0 {
            candle_core::bail!(
                "{}: cannot upsample {dims2:?} onto {:?}",
                self.name(),
                (n, c, h, w)
            );
        }
        let (sh, sw) = (h / 2, w / 2);
        // Every output element is written (each plane, row by row).
        let out = nn::written_buffer(lat.len(), |out| {
            out.par_chunks_mut(h * w)
                .zip(lat.par_chunks(h * w))
                .zip(small.par_chunks(sh * sw))
                .with_min_len(min_planes(h * w))
                .for_each(|((o, a), b)| {
                    for ((orow, arow), y) in o.chunks_exact_mut(w).zip(a.chunks_exact(w)).zip(0..) {
                        let brow = &b[(y / 2) * sw..(y / 2 + 1) * sw];
                        for (i, v) in orow.iter_mut().enumerate() {
                            *v = arow[i] + brow[i / 2];
                        }
                    }
                });
        });
        Ok((CpuStorage::F32(out), Shape::from((n, c, h, w))))
    }
}

/// 2x2 max-pooling with stride 2 (floor: an odd last row/column is dropped, as ONNX/candle do).
pub(super) fn max_pool_2x2(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1_no_bwd(&MaxPool2)
}

/// `lateral + nearest_upsample_2x(small)`, with `small` half the height and width of `lateral`.
pub(super) fn upsample2_add(lateral: &Tensor, small: &Tensor) -> Result<Tensor> {
    lateral
        .contiguous()?
        .apply_op2_no_bwd(&small.contiguous()?, &Upsample2Add)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn assert_same(a: &Tensor, b: &Tensor) {
        assert_eq!(a.dims(), b.dims());
        let d: f32 = (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert_eq!(d, 0.0);
    }

    #[test]
    fn max_pool_matches_candle() {
        for (h, w) in [(8, 12), (7, 9), (64, 80)] {
            let x = Tensor::randn(0f32, 1.0, (1, 5, h, w), &Device::Cpu).unwrap();
            assert_same(&max_pool_2x2(&x).unwrap(), &x.max_pool2d(2).unwrap());
        }
    }

    #[test]
    fn upsample_add_matches_candle() {
        let a = Tensor::randn(0f32, 1.0, (1, 3, 12, 20), &Device::Cpu).unwrap();
        let b = Tensor::randn(0f32, 1.0, (1, 3, 6, 10), &Device::Cpu).unwrap();
        let expect = (&a + b.upsample_nearest2d(12, 20).unwrap()).unwrap();
        assert_same(&upsample2_add(&a, &b).unwrap(), &expect);
        let bad = Tensor::zeros((1, 3, 5, 10), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(upsample2_add(&a, &bad).is_err());
    }
}
