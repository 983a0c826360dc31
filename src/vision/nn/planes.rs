//! Per-channel-plane operations on NCHW f32 tensors: one pass over the data, parallel over planes, output
//! built straight from a `Vec` (no candle broadcasting, no temporaries). Pooling, upsampling, PReLU and the
//! per-channel affine layer all have this shape.

use candle_core::{Device, Result, Storage, Tensor};
use rayon::prelude::*;

/// Fewest input elements per rayon task (smaller planes are grouped).
const TASK_ELEMS: usize = 32 * 1024;

/// Runs `f(plane, in_plane, out_plane)` for every plane (`plane` = image * C + channel) of the NCHW tensor `x` and returns the
/// `(n, c, oh, ow)` result. `x` may be non-contiguous (it is made contiguous first).
pub(crate) fn map_planes<F>(x: &Tensor, oh: usize, ow: usize, f: F) -> Result<Tensor>
where
    F: Fn(usize, &[f32], &mut [f32]) + Sync,
{
    let (n, c, h, w) = x.dims4()?;
    let x = x.contiguous()?;
    let (storage, layout) = x.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("nn kernels run on the CPU only");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("input must be contiguous");
    };
    let data = &cpu.as_slice::<f32>()?[start..end];
    let (pin, pout) = (h * w, oh * ow);
    let mut out = vec![0f32; n * c * pout];
    let run = |(i, o): (usize, &mut [f32])| f(i, &data[i * pin..(i + 1) * pin], o);
    let per_task = TASK_ELEMS.div_ceil(pin.max(1)).max(1);
    if rayon::current_num_threads() > 1 && n * c > per_task && pout > 0 {
        out.par_chunks_mut(pout)
            .enumerate()
            .with_min_len(per_task)
            .for_each(run);
    } else if pout > 0 {
        out.chunks_mut(pout).enumerate().for_each(run);
    }
    drop(storage);
    Tensor::from_vec(out, (n, c, oh, ow), &Device::Cpu)
}

/// A new `len`-float buffer filled by `fill`, which must write every element before reading it: the buffer
/// is not zeroed first. Layer outputs are megabytes per frame; zeroing them only to overwrite them cost
/// several percent of a detector pass.
pub(crate) fn written_buffer(len: usize, fill: impl FnOnce(&mut [f32])) -> Vec<f32> {
    let mut v: Vec<f32> = Vec::with_capacity(len);
    if cfg!(debug_assertions) {
        // Test builds: NaN where `fill` forgets to write, so the tests' finiteness checks catch it.
        v.resize(len, f32::NAN);
        v.clear();
    }
    // SAFETY: the capacity is `len`; `fill` writes all of it before any read (its contract), so after it
    // returns every element is initialised and the length can be set.
    unsafe {
        fill(std::slice::from_raw_parts_mut(v.as_mut_ptr(), len));
        v.set_len(len);
    }
    v
}

/// Max over `k x k` windows every `stride` pixels, no padding, output size rounded down (candle's and
/// ONNX's default `MaxPool`).
pub fn max_pool2d(x: &Tensor, k: usize, stride: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if k == 0 || stride == 0 || h < k || w < k {
        candle_core::bail!("max_pool2d: {k}x{k} window, stride {stride}, on {h}x{w}");
    }
    let (oh, ow) = ((h - k) / stride + 1, (w - k) / stride + 1);
    map_planes(x, oh, ow, |_, src, dst| {
        for (oy, orow) in dst.chunks_exact_mut(ow).enumerate() {
            orow.fill(f32::NEG_INFINITY);
            for ky in 0..k {
                let row = &src[(oy * stride + ky) * w..][..w];
                for kx in 0..k {
                    for (ox, o) in orow.iter_mut().enumerate() {
                        *o = o.max(row[ox * stride + kx]);
                    }
                }
            }
        }
    })
}

/// Mean over non-overlapping `k x k` windows (stride `k`), output size rounded down.
pub fn avg_pool2d(x: &Tensor, k: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if k == 0 || h < k || w < k {
        candle_core::bail!("avg_pool2d: {k}x{k} window on {h}x{w}");
    }
    let (oh, ow) = (h / k, w / k);
    let scale = 1.0 / (k * k) as f32;
    map_planes(x, oh, ow, |_, src, dst| {
        for (oy, orow) in dst.chunks_exact_mut(ow).enumerate() {
            orow.fill(0.0);
            for ky in 0..k {
                let row = &src[(oy * k + ky) * w..][..w];
                for kx in 0..k {
                    for (ox, o) in orow.iter_mut().enumerate() {
                        *o += row[ox * k + kx];
                    }
                }
            }
            orow.iter_mut().for_each(|o| *o *= scale);
        }
    })
}

/// Nearest-neighbour upsampling by an integer `factor` in both directions.
pub fn upsample_nearest(x: &Tensor, factor: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if factor == 0 {
        candle_core::bail!("upsample_nearest: factor 0");
    }
    let ow = w * factor;
    map_planes(x, h * factor, ow, |_, src, dst| {
        for (y, rows) in dst.chunks_exact_mut(ow * factor).enumerate() {
            let (first, rest) = rows.split_at_mut(ow);
            for (o, v) in first.chunks_exact_mut(factor).zip(&src[y * w..(y + 1) * w]) {
                o.fill(*v);
            }
            for r in rest.chunks_exact_mut(ow) {
                r.copy_from_slice(first);
            }
        }
    })
}

/// Per-channel values of a `[C]` (or `[1, C, 1, 1]`) parameter tensor, checked against `c` channels.
pub(crate) fn channel_values(t: &Tensor, c: usize, what: &str) -> Result<Vec<f32>> {
    if t.elem_count() != c {
        candle_core::bail!("{what} has {} values for {c} channels", t.elem_count());
    }
    t.flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()
}
