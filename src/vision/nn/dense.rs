//! Dense (groups = 1) convolution as matrix products: `weights [Cout, K] x col [K, pixels]` gives NCHW
//! output rows directly. 1x1 stride-1 convs use the input itself as `col`; other shapes build `col` with
//! im2col, one cache-sized tile of output pixels at a time, so the patches are consumed while in cache.
//!
//! Work is split over rayon's current pool: over pixel tiles when the image is large, over output-channel
//! blocks when it is small (deep layers with a few pixels). Small problems stay on the calling thread.

use std::cell::RefCell;

use rayon::prelude::*;

use super::gemm::{matmul, Epilogue};
use super::geom::Geom;
use super::im2col::im2col_tile;
use super::OutPtr;

/// Below this many multiply-adds a conv runs on one thread: rayon's hand-off would cost more than it saves.
const PAR_MIN_MACS: usize = 400_000;
/// Target size (floats) of one im2col tile: about half a typical L2.
const COL_TILE_FLOATS: usize = 48 * 1024;
/// Fewest output pixels per tile (gemm is inefficient on thinner panels).
const MIN_TILE: usize = 64;

thread_local! {
    /// Per-thread im2col scratch, reused across calls so the hot path does not allocate.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a scratch buffer of `len` floats owned by this thread.
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| {
        // Take the buffer out so a nested use (never expected) would just allocate, not panic.
        let mut buf = std::mem::take(&mut *cell.borrow_mut());
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        let r = f(&mut buf[..len]);
        *cell.borrow_mut() = buf;
        r
    })
}

/// Dense conv of one image: `x` is `[cin, h, w]`, `w` is `[cout, K]` row-major (K = cin*kh*kw), `out` is
/// `[cout, oh*ow]`.
pub(crate) fn conv_dense(x: &[f32], g: &Geom, w: &[f32], epi: &Epilogue, out: &mut [f32]) {
    let (p, k, m) = (g.out_pixels(), g.k(), g.cout);
    debug_assert_eq!(x.len(), g.cin * g.h * g.w);
    debug_assert_eq!(w.len(), m * k);
    debug_assert_eq!(out.len(), m * p);
    let threads = rayon::current_num_threads();
    let parallel = threads > 1 && m * k * p >= PAR_MIN_MACS;
    let pointwise = g.is_pointwise();

    // Pixel tile: the im2col tile fits the cache; 1x1 convs need no col but tiles still spread the work.
    let mut tile = if pointwise {
        1024
    } else {
        (COL_TILE_FLOATS / k).max(MIN_TILE)
    };
    if parallel {
        // At least ~3 tiles per thread for balance, but never thinner than MIN_TILE.
        tile = tile.min(p.div_ceil(3 * threads).max(MIN_TILE));
    }
    let tile = tile.min(p);
    let n_tiles = p.div_ceil(tile);

    if parallel && n_tiles < threads {
        conv_dense_by_channels(x, g, w, epi, out);
        return;
    }

    let dst = OutPtr(out.as_mut_ptr());
    let run_tile = |t: usize| {
        let p0 = t * tile;
        let n = tile.min(p - p0);
        let body = |col: &[f32], ldb: usize| {
            // SAFETY: this task alone writes columns p0..p0+n of every output row; out has m rows of p;
            // w is m x k, col is k rows of ldb.
            let o = unsafe { dst.get().add(p0) };
            unsafe { matmul(m, n, k, w.as_ptr(), k, col.as_ptr(), ldb, o, p) };
            for c in 0..m {
                // SAFETY: same disjoint region as above.
                let row = unsafe { std::slice::from_raw_parts_mut(o.add(c * p), n) };
                epi.apply(c, row);
            }
        };
        if pointwise {
            body(&x[p0..], p);
        } else {
            with_scratch(k * n, |col| {
                im2col_tile(x, g, p0, n, col);
                body(col, n);
            });
        }
    };
    if parallel {
        (0..n_tiles).into_par_iter().for_each(run_tile);
    } else {
        (0..n_tiles).for_each(run_tile);
    }
}

/// Few pixels and many channels: one col for the whole image, output-channel
/// blocks in parallel.
fn conv_dense_by_channels(x: &[f32], g: &Geom, w: &[f32], epi: &Epilogue, out: &mut [f32]) {
    let (p, k, m) = (g.out_pixels(), g.k(), g.cout);
    let col_owned;
    let col: &[f32] = if g.is_pointwise() {
        x
    } else {
        let mut c = vec![0.0; k * p];
        im2col_tile(x, g, 0, p, &mut c);
        col_owned = c;
        &col_owned
    };
    let block = m.div_ceil(rayon::current_num_threads() * 2).max(1);
    out.par_chunks_mut(block * p)
        .zip(w.par_chunks(block * k))
        .enumerate()
        .for_each(|(i, (o, wb))| {
            let rows = o.len() / p;
            // SAFETY: wb is rows x k, col is k x p, o is rows x p, all row-major and owned by this task.
            unsafe {
                matmul(
                    rows,
                    p,
                    k,
                    wb.as_ptr(),
                    k,
                    col.as_ptr(),
                    p,
                    o.as_mut_ptr(),
                    p,
                )
            };
            for (r, orow) in o.chunks_mut(p).enumerate() {
                epi.apply(i * block + r, orow);
            }
        });
}
