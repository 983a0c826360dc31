//! Residual joins: `act(y + shortcut)` in one pass, where the shortcut may be smaller than `y` in channels,
//! rows or columns and counts as zero-padded at the end (MediaPipe's channel pad, dlib's `add_prev`).

use candle_core::{Result, Storage, Tensor};

use super::planes::{channel_values, map_planes};
use super::Activation;

/// Runs `f` on the contiguous f32 data of `t`.
fn with_data<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("nn kernels run on the CPU only");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("input must be contiguous");
    };
    f(&cpu.as_slice::<f32>()?[start..end])
}

/// `act(y + shortcut)` for NCHW tensors with the same batch size; where `shortcut` has fewer channels, rows
/// or columns than `y` it reads as zero (padding at the end of each dimension). The activation is applied per
/// channel of `y`.
pub fn add_residual(y: &Tensor, shortcut: &Tensor, act: &Activation) -> Result<Tensor> {
    let (n, c, h, w) = y.dims4()?;
    let (sn, sc, sh, sw) = shortcut.dims4()?;
    if sn != n || sc > c || sh > h || sw > w {
        candle_core::bail!(
            "residual shortcut {:?} does not fit inside {:?}",
            shortcut.dims(),
            y.dims()
        );
    }
    let slope = match act {
        Activation::None => vec![1.0; c],
        Activation::Relu => vec![0.0; c],
        Activation::PRelu(a) => channel_values(a, c, "residual PReLU slopes")?,
    };
    with_data(shortcut, |s| {
        map_planes(y, h, w, |plane, src, dst| {
            let ch = plane % c;
            let img = plane / c;
            let a = slope[ch];
            dst.copy_from_slice(src);
            if ch < sc {
                let sp = &s[(img * sc + ch) * sh * sw..][..sh * sw];
                for (drow, srow) in dst.chunks_exact_mut(w).zip(sp.chunks_exact(sw)) {
                    for (d, v) in drow.iter_mut().zip(srow) {
                        *d += v;
                    }
                }
            }
            for d in dst.iter_mut() {
                let v = *d;
                *d = v.max(0.0) + a * v.min(0.0);
            }
        })
    })
}
