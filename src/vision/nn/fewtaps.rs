//! Dense convolutions with few taps per output (`cin * kh * kw <= MAX_TAPS`: the first layer of each network,
//! which reads the 3-channel image). A general GEMM is poorly shaped for them (a 27-long inner dimension,
//! 16-32 output channels, tens of thousands of pixels); here each output row's patches are laid out once
//! (im2col of one row, a few kilobytes) and multiplied by the register-blocked kernel of [`super::rows`],
//! which adds the bias and applies the activation in registers and stores straight into the NCHW output
//! rows. Output rows are split into bands over rayon's pool.

use std::cell::RefCell;

use rayon::prelude::*;

use super::gemm::Epilogue;
use super::geom::Geom;
use super::im2col::im2col_tile;
use super::rows::{rows_product, RowEpi};
use super::OutPtr;

/// Largest `cin * kh * kw` this path takes.
pub(crate) const MAX_TAPS: usize = 32;
/// Fewest multiply-adds per rayon band.
const BAND_MACS: usize = 256 * 1024;

thread_local! {
    /// Per-thread buffer for one output row's patches, reused across calls.
    static COL: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Dense conv of one image: `x` is `[cin, h, w]`, `packed` the weights packed by
/// [`super::rows::pack_rows`] (`cout` rows of `g.k()`), `out` is `[cout, oh*ow]`.
pub(crate) fn conv_few_taps(x: &[f32], g: &Geom, packed: &[f32], epi: &Epilogue, out: &mut [f32]) {
    let (k, ow, plane) = (g.k(), g.ow, g.out_pixels());
    debug_assert!(k <= MAX_TAPS);
    debug_assert_eq!(out.len(), g.cout * plane);
    if plane == 0 || g.cout == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    let min_rows = BAND_MACS.div_ceil(g.cout * k * ow).max(1);
    let band = if threads > 1 {
        g.oh.div_ceil(2 * threads).max(min_rows)
    } else {
        g.oh
    };
    let n_bands = g.oh.div_ceil(band);
    let dst = OutPtr(out.as_mut_ptr());
    let row_epi = epi.active.then_some(RowEpi {
        bias: &epi.bias,
        slope: &epi.slope,
    });
    let run_band = |b: usize| {
        COL.with(|cell| {
            let mut col = std::mem::take(&mut *cell.borrow_mut());
            col.resize(k * ow, 0.0);
            for oy in b * band..((b + 1) * band).min(g.oh) {
                im2col_tile(x, g, oy * ow, ow, &mut col);
                // SAFETY: rows oy of all `cout` channel planes lie inside `out` (the span below ends at
                // the last channel's row oy), and only this band writes output row oy (bands are disjoint
                // row ranges); the product writes those rows only (ldo = plane, n = ow).
                let rows = unsafe {
                    std::slice::from_raw_parts_mut(
                        dst.get().add(oy * ow),
                        (g.cout - 1) * plane + ow,
                    )
                };
                rows_product(packed, k, g.cout, &col, ow, ow, rows, plane, row_epi);
            }
            *cell.borrow_mut() = col;
        });
    };
    if n_bands > 1 {
        (0..n_bands).into_par_iter().for_each(run_band);
    } else {
        run_band(0);
    }
}
