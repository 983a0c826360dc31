//! The fused layer's kernel: bands of output rows, each with its ring of pointwise rows (see the module
//! above), an optional first conv producing the pointwise input row by row, an optional 2x2 max-pool.

use std::cell::RefCell;
use std::ops::Range;

use rayon::prelude::*;

use super::super::gemm::Epilogue;
use super::super::geom::Geom;
use super::super::im2col::im2col_tile;
use super::super::rows::{depthwise_row, pack_rows, rows_product, RowEpi, CO};
use crate::vision::nn::OutPtr;

/// Fewest multiply-adds per rayon band.
const BAND_MACS: usize = 256 * 1024;

thread_local! {
    /// Per-thread ring of pointwise rows (plus two depthwise rows when pooling, one patch matrix and one
    /// input row when a first conv is fused in), reused across calls.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Pointwise rows kept per band: output row `y` reads rows `y-1..=y+1`, and a pooled output row reads the
/// depthwise rows `2y` and `2y+1`, so rows `2y-1..=2y+2`.
const RING: usize = 4;

/// A dense conv with few taps (a network's first layer) computing the pointwise conv's input rows on the
/// fly, so its output map never goes to memory.
#[derive(Clone, Debug)]
pub(crate) struct PreConv {
    pub cin: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: [usize; 4],
    /// Weights packed by [`pack_rows`] (`cout` rows of `cin * kh * kw`).
    pub packed: Vec<f32>,
    pub epi: Epilogue,
}

impl PreConv {
    fn geom(&self, h: usize, w: usize) -> Option<Geom> {
        let (kh, kw) = (self.kh, self.kw);
        Geom::new(self.cin, h, w, self.cout, kh, kw, self.stride, self.pad)
    }
}

/// The fused pair, packed for the kernel.
#[derive(Clone, Debug)]
pub(crate) struct PwDwPacked {
    pub cin: usize,
    pub cout: usize,
    /// Pointwise weights packed by [`pack_rows`].
    pw: Vec<f32>,
    pw_epi: Epilogue,
    /// Depthwise weights `[cout][9]`.
    dw: Vec<f32>,
    dw_epi: Epilogue,
    /// A 2x2 / stride 2 max-pool follows (floor mode): output rows and columns are halved.
    pub pool: bool,
    /// A first conv in front: the layer's input is that conv's input.
    pub pre: Option<PreConv>,
}

impl PwDwPacked {
    /// `pw` is `[cout, cin]` row-major, `dw` is `[cout, 9]`.
    pub fn new(
        cin: usize,
        cout: usize,
        pw: &[f32],
        pw_epi: Epilogue,
        dw: Vec<f32>,
        dw_epi: Epilogue,
    ) -> Self {
        debug_assert_eq!(pw.len(), cout * cin);
        debug_assert_eq!(dw.len(), cout * 9);
        Self {
            cin,
            cout,
            pw: pack_rows(pw, cout, cin),
            pw_epi,
            dw,
            dw_epi,
            pool: false,
            pre: None,
        }
    }

    /// Input channels of the whole layer (the first conv's when there is one).
    pub fn in_channels(&self) -> usize {
        self.pre.as_ref().map_or(self.cin, |p| p.cin)
    }

    /// (height, width) of the pointwise conv's map for an `h` x `w` layer input; `None` when a first conv's
    /// kernel does not fit.
    pub fn map_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        match &self.pre {
            Some(p) => p.geom(h, w).map(|g| (g.oh, g.ow)),
            None => Some((h, w)),
        }
    }

    /// Output (height, width) for an `h` x `w` pointwise map ([`Self::map_size`]).
    pub fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        if self.pool {
            (h / 2, w / 2)
        } else {
            (h, w)
        }
    }

    /// One image: `x` is `[in_channels, xh, xw]`, `out` is `[cout, oh, ow]` (the out size of the map size).
    /// With `up` (`[cin, xh / 2, xw / 2]`, even `xh` and `xw`, no first conv), the pointwise input is
    /// `x + nearest_upsample_2x(up)`, made row by row.
    pub fn run(&self, x: &[f32], xh: usize, xw: usize, up: Option<&[f32]>, out: &mut [f32]) {
        debug_assert!(up.is_none() || (self.pre.is_none() && xh % 2 == 0 && xw % 2 == 0));
        let pre = self.pre.as_ref().and_then(|p| p.geom(xh, xw));
        let (h, w) = pre.map_or((xh, xw), |g| (g.oh, g.ow));
        let (oh, ow) = self.out_size(h, w);
        debug_assert_eq!(x.len(), self.in_channels() * xh * xw);
        debug_assert_eq!(out.len(), self.cout * oh * ow);
        if oh == 0 || ow == 0 {
            return;
        }
        let dw_rows = if self.pool { 2 } else { 1 };
        let threads = rayon::current_num_threads();
        // With several threads, work is split by output channels (two groups of whole 8-channel blocks,
        // which costs nothing extra) and by bands of rows (each band recomputes the pointwise rows at its
        // edges, which costs a lot on small maps): tasks = groups x bands, about two per thread. With a
        // first conv, every channel group would have to compute all of its rows: bands only.
        let groups = if threads > 1 && self.cout >= 2 * CO && pre.is_none() {
            2
        } else {
            1
        };
        let group_len = self.cout.div_ceil(groups).div_ceil(CO) * CO;
        let pre_macs = pre.map_or(0, |g| g.cout * g.k());
        let macs_per_row = dw_rows * w * (group_len * (self.cin + 9) + pre_macs);
        let min_rows = BAND_MACS.div_ceil(macs_per_row).max(2);
        let band = if threads > 1 {
            oh.div_ceil((2 * threads).div_ceil(groups)).max(min_rows)
        } else {
            oh
        };
        let n_bands = oh.div_ceil(band);
        let dst = OutPtr(out.as_mut_ptr());
        let run_task = |t: usize| {
            let (b, g) = (t / groups, t % groups);
            let (y0, y1) = (b * band, ((b + 1) * band).min(oh));
            let (c0, c1) = (g * group_len, ((g + 1) * group_len).min(self.cout));
            let ring_len = RING * (c1 - c0) * (w + 2);
            let pool_len = if self.pool { 2 * w } else { 0 };
            let pre_len = match (pre, up) {
                (Some(g), _) => (g.k() + g.cout) * w,
                (None, Some(_)) => self.cin * w,
                (None, None) => 0,
            };
            SCRATCH.with(|cell| {
                let mut buf = std::mem::take(&mut *cell.borrow_mut());
                if buf.len() < ring_len + pool_len + pre_len {
                    buf.resize(ring_len + pool_len + pre_len, 0.0);
                }
                let (ring, scratch) = buf.split_at_mut(ring_len);
                let src = match (&pre, up) {
                    (Some(g), _) => Source::Conv(x, g),
                    (None, Some(small)) => Source::UpAdd(x, small),
                    (None, None) => Source::Map(x),
                };
                // SAFETY: this task alone writes output rows y0..y1 of channels c0..c1 of `out`.
                unsafe {
                    self.band(
                        src,
                        h,
                        w,
                        y0..y1,
                        c0..c1,
                        ring,
                        &mut scratch[..pool_len + pre_len],
                        dst,
                    )
                };
                *cell.borrow_mut() = buf;
            });
        };
        let tasks = n_bands * groups;
        if tasks > 1 {
            (0..tasks).into_par_iter().for_each(run_task);
        } else {
            run_task(0);
        }
    }

    /// Output rows `ys` (pooled rows when pooling) of channels `cs` (`cs.start` a multiple of [`CO`]).
    /// `ring` holds `RING * cs.len() * (w + 2)` floats; `scratch` `2 * w` when pooling, then the first
    /// conv's patches and output row (`(k + cin) * w`) when there is one.
    ///
    /// # Safety
    /// `dst` must point at `cout * oh * ow` floats, and no other thread may touch those rows of those
    /// channels meanwhile.
    #[allow(clippy::too_many_arguments)]
    unsafe fn band(
        &self,
        src: Source,
        h: usize,
        w: usize,
        ys: Range<usize>,
        cs: Range<usize>,
        ring: &mut [f32],
        scratch: &mut [f32],
        dst: OutPtr,
    ) {
        let (y0, y1) = (ys.start, ys.end);
        debug_assert_eq!(cs.start % CO, 0);
        let n_ch = cs.len();
        let pw = &self.pw[cs.start * self.cin..];
        let stride = w + 2;
        let slot_len = n_ch * stride;
        let (oh, ow) = self.out_size(h, w);
        let (scratch, pre_buf) = scratch.split_at_mut(if self.pool { 2 * w } else { 0 });
        let out_plane = oh * ow;
        // Ring slot r % RING holds pointwise row r: per channel w values between a zero on each side.
        for slot in ring.chunks_exact_mut(stride) {
            slot[0] = 0.0;
            slot[w + 1] = 0.0;
        }
        let dw_rows = if self.pool { 2 } else { 1 };
        let mut next = (y0 * dw_rows).saturating_sub(1); // next pointwise row to compute
        for oy in y0..y1 {
            // Depthwise rows dy0..dy0 + dw_rows, which read pointwise rows up to dy0 + dw_rows.
            let dy0 = oy * dw_rows;
            let need = (dy0 + dw_rows + 1).min(h);
            while next < need {
                let slot = &mut ring[(next % RING) * slot_len..][..slot_len];
                // The pointwise input row `next`: a row of the input map, or the first conv's row.
                let (x, plane, row0) = match src {
                    Source::Map(x) => (x, h * w, next * w),
                    Source::Conv(x, g) => {
                        let pre = self.pre.as_ref().expect("a first conv with its geometry");
                        let (col, row) = pre_buf.split_at_mut(g.k() * w);
                        im2col_tile(x, g, next * w, w, col);
                        let epi = pre.epi.active.then_some(RowEpi {
                            bias: &pre.epi.bias,
                            slope: &pre.epi.slope,
                        });
                        rows_product(&pre.packed, g.k(), g.cout, col, w, w, row, w, epi);
                        (&*row, w, 0)
                    }
                    Source::UpAdd(lateral, small) => {
                        let row = &mut pre_buf[..self.cin * w];
                        upsample2_add_row(lateral, small, h, w, next, row);
                        (&*row, w, 0)
                    }
                };
                pointwise_row(
                    pw,
                    &self.pw_epi,
                    cs.start,
                    x,
                    plane,
                    row0,
                    w,
                    self.cin,
                    n_ch,
                    slot,
                );
                next += 1;
            }
            let ring = &*ring;
            let rows_of = |dy: usize| -> [Option<&[f32]>; 3] {
                std::array::from_fn(|k| {
                    let r = dy as isize + k as isize - 1;
                    (r >= 0 && (r as usize) < h)
                        .then(|| &ring[(r as usize % RING) * slot_len..][..slot_len])
                })
            };
            let rows = rows_of(dy0);
            let rows2 = rows_of(dy0 + 1);
            for (i, co) in cs.clone().enumerate() {
                // SAFETY: row oy of channel co is inside `dst` and belongs to this task (caller's contract).
                let orow = unsafe {
                    std::slice::from_raw_parts_mut(dst.get().add(co * out_plane + oy * ow), ow)
                };
                let (k, bias, slope) = (
                    &self.dw[co * 9..co * 9 + 9],
                    self.dw_epi.bias[co],
                    self.dw_epi.slope[co],
                );
                let act = self.dw_epi.active;
                if self.pool {
                    let (s0, s1) = scratch.split_at_mut(w);
                    depthwise_row(&channel_taps(&rows, i, stride), k, bias, slope, act, s0);
                    depthwise_row(&channel_taps(&rows2, i, stride), k, bias, slope, act, s1);
                    max_pool_rows(s0, s1, orow);
                } else {
                    depthwise_row(&channel_taps(&rows, i, stride), k, bias, slope, act, orow);
                }
            }
        }
    }
}

/// Where a band's pointwise input rows come from.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// The layer's input map itself (`[cin, h, w]`).
    Map(&'a [f32]),
    /// A first conv of this geometry applied to the layer's input.
    Conv(&'a [f32], &'a Geom),
    /// The input map plus a half-size map upsampled 2x (nearest): an FPN's top-down merge.
    UpAdd(&'a [f32], &'a [f32]),
}

/// Row `r` of every channel of `lateral + nearest_upsample_2x(small)` (`lateral` `[c, h, w]`, `small`
/// `[c, h / 2, w / 2]`) into `out` (`[c, w]`).
fn upsample2_add_row(
    lateral: &[f32],
    small: &[f32],
    h: usize,
    w: usize,
    r: usize,
    out: &mut [f32],
) {
    let (sh, sw) = (h / 2, w / 2);
    for (c, o) in out.chunks_exact_mut(w).enumerate() {
        let a = &lateral[c * h * w + r * w..][..w];
        let b = &small[c * sh * sw + (r / 2) * sw..][..sw];
        for ((o, a), b) in o.chunks_exact_mut(2).zip(a.chunks_exact(2)).zip(b) {
            o[0] = a[0] + b;
            o[1] = a[1] + b;
        }
    }
}

/// Channel `co`'s three zero-bordered rows (each `stride` long; empty outside the image).
fn channel_taps<'a>(rows: &[Option<&'a [f32]>; 3], co: usize, stride: usize) -> [&'a [f32]; 3] {
    std::array::from_fn(|k| match rows[k] {
        Some(r) => &r[co * stride..(co + 1) * stride],
        None => &[],
    })
}

/// `out[i] = max of a[2i], a[2i+1], b[2i], b[2i+1]` (one output row of a 2x2 / stride 2 max-pool); `a` is
/// overwritten.
fn max_pool_rows(a: &mut [f32], b: &[f32], out: &mut [f32]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x = x.max(*y);
    }
    for (o, p) in out.iter_mut().zip(a.chunks_exact(2)) {
        *o = p[0].max(p[1]);
    }
}

/// Pointwise row: `slot[co][1 + j] = epi(sum_ci w[co][ci] * x[ci][row0 + j])` for `j < w`.
#[allow(clippy::too_many_arguments)]
fn pointwise_row(
    pw: &[f32],
    epi: &Epilogue,
    c0: usize,
    x: &[f32],
    plane: usize,
    row0: usize,
    w: usize,
    cin: usize,
    cout: usize,
    slot: &mut [f32],
) {
    let epi = epi.active.then(|| RowEpi {
        bias: &epi.bias[c0..],
        slope: &epi.slope[c0..],
    });
    let stride = w + 2;
    rows_product(
        pw,
        cin,
        cout,
        &x[row0..],
        plane,
        w,
        &mut slot[1..],
        stride,
        epi,
    );
}
