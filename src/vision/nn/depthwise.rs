//! Depthwise convolution (one filter per channel, groups = channels), any kernel size, stride and
//! asymmetric padding, parallel over channel planes.
//!
//! Per plane, each input row is copied once into a zero-padded scratch row split into `stride` phases
//! (phase r holds padded columns r, r+s, r+2s, ...), so every kernel tap becomes a contiguous
//! multiply-add over a whole output row, which the compiler vectorises. Bias and activation are fused.

use rayon::prelude::*;

use super::gemm::Epilogue;
use super::geom::Geom;
use super::simd::{madd, multiversion};

/// Fewest multiply-adds per rayon task.
const TASK_MACS: usize = 64 * 1024;

/// Depthwise conv of one image: `x` is `[c, h, w]`, `w` is `[c, kh*kw]`, `out` is `[c, oh*ow]`
/// (`g.cin == g.cout == c`).
pub(crate) fn conv_depthwise(x: &[f32], g: &Geom, w: &[f32], epi: &Epilogue, out: &mut [f32]) {
    let (plane_in, plane_out, taps) = (g.h * g.w, g.out_pixels(), g.kh * g.kw);
    debug_assert_eq!(x.len(), g.cin * plane_in);
    debug_assert_eq!(out.len(), g.cout * plane_out);
    let macs_per_plane = (plane_out * taps).max(1);
    let per_task = TASK_MACS.div_ceil(macs_per_plane).max(1);
    let run = |scratch: &mut Vec<f32>, (c, o): (usize, &mut [f32])| {
        plane(
            &x[c * plane_in..(c + 1) * plane_in],
            g,
            &w[c * taps..(c + 1) * taps],
            epi.bias[c],
            epi.slope[c],
            epi.active,
            scratch,
            o,
        );
    };
    if rayon::current_num_threads() > 1 && g.cout > per_task {
        out.par_chunks_mut(plane_out)
            .enumerate()
            .with_min_len(per_task)
            .for_each_init(Vec::new, run);
    } else {
        let mut scratch = Vec::new();
        out.chunks_mut(plane_out)
            .enumerate()
            .for_each(|item| run(&mut scratch, item));
    }
}

/// Width of one padded phase row: enough for every tap of every output column.
fn phase_len(g: &Geom) -> usize {
    (g.w + g.pad[1] + g.pad[3]).div_ceil(g.stride)
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn plane_body<const FMA: bool>(
    x: &[f32],
    g: &Geom,
    w: &[f32],
    bias: f32,
    slope: f32,
    act: bool,
    scratch: &mut Vec<f32>,
    out: &mut [f32],
) {
    let (s, pl) = (g.stride, g.pad[1]);
    let plen = phase_len(g);
    let row_len = s * plen;
    // Padded, phase-split copy of every input row.
    scratch.clear();
    scratch.resize(g.h * row_len, 0.0);
    for (iy, prow) in scratch.chunks_exact_mut(row_len).enumerate() {
        let src = &x[iy * g.w..(iy + 1) * g.w];
        if s == 1 {
            prow[pl..pl + g.w].copy_from_slice(src);
        } else {
            for (j, v) in src.iter().enumerate() {
                let pj = j + pl;
                prow[(pj % s) * plen + pj / s] = *v;
            }
        }
    }
    let ow = g.ow;
    for (oy, orow) in out.chunks_exact_mut(ow).enumerate() {
        orow.fill(bias);
        for ky in 0..g.kh {
            let iy = (oy * s + ky) as isize - g.pad[0] as isize;
            if iy < 0 || iy >= g.h as isize {
                continue;
            }
            let prow = &scratch[iy as usize * row_len..(iy as usize + 1) * row_len];
            for kx in 0..g.kw {
                let wv = w[ky * g.kw + kx];
                let start = (kx % s) * plen + kx / s;
                let src = &prow[start..start + ow];
                for (o, v) in orow.iter_mut().zip(src) {
                    *o = madd::<FMA>(wv, *v, *o);
                }
            }
        }
        if act {
            for o in orow.iter_mut() {
                let v = *o;
                *o = madd::<FMA>(slope, v.min(0.0), v.max(0.0));
            }
        }
    }
}

multiversion!(fn plane => plane_body(
    x: &[f32],
    g: &Geom,
    w: &[f32],
    bias: f32,
    slope: f32,
    act: bool,
    scratch: &mut Vec<f32>,
    out: &mut [f32],
));
