//! A 1x1 (pointwise) convolution followed by a 3x3 depthwise convolution (stride 1, padding 1), fused.
//!
//! This pair is nearly all of YuNet (and of most mobile detectors). Run as two layers, the pointwise result
//! (up to 64 channels of a 320x240 map, megabytes) goes out to memory and comes back; fused, it lives in a
//! ring of three rows per channel that stays in cache: output row `y` needs pointwise rows `y-1..=y+1`, and
//! each pointwise row is computed once. Output rows are split into bands over rayon's pool (each band
//! recomputes the two pointwise rows at its edges).
//!
//! The pointwise row is a small matrix product `[cout, cin] x [cin, w]` computed by the register-blocked
//! kernel in [`super::rows`], which at these sizes beats calling a general GEMM per row. Both layers' bias and
//! activation are fused.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Layout, Module, Result, Shape, Tensor};
use rayon::prelude::*;

use super::conv::{Conv2d, ConvCfg};
use super::gemm::Epilogue;
use super::rows::{depthwise_row, pack_rows, rows_product, RowEpi, CO};

/// Fewest multiply-adds per rayon band.
const BAND_MACS: usize = 256 * 1024;

thread_local! {
    /// Per-thread ring of pointwise rows (and two depthwise rows when pooling), reused across calls.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Pointwise rows kept per band: output row `y` reads rows `y-1..=y+1`, and a pooled output row reads the
/// depthwise rows `2y` and `2y+1`, so rows `2y-1..=2y+2`.
const RING: usize = 4;

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
    pool: bool,
}

/// A raw output pointer shared by the bands: each band writes its own rows of every channel plane.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: bands write disjoint rows (see `PwDwPacked::run`) of a buffer that outlives the parallel loop.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
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
        }
    }

    /// Output (height, width) for an `h` x `w` input.
    pub fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        if self.pool {
            (h / 2, w / 2)
        } else {
            (h, w)
        }
    }

    /// One image: `x` is `[cin, h, w]`, `out` is `[cout, oh, ow]` ([`Self::out_size`]).
    pub fn run(&self, x: &[f32], h: usize, w: usize, out: &mut [f32]) {
        let (oh, ow) = self.out_size(h, w);
        debug_assert_eq!(x.len(), self.cin * h * w);
        debug_assert_eq!(out.len(), self.cout * oh * ow);
        if oh == 0 || ow == 0 {
            return;
        }
        let dw_rows = if self.pool { 2 } else { 1 };
        let threads = rayon::current_num_threads();
        // With several threads, work is split by output channels (two groups of whole 8-channel blocks,
        // which costs nothing extra) and by bands of rows (each band recomputes the pointwise rows at its
        // edges, which costs a lot on small maps): tasks = groups x bands, about two per thread.
        let groups = if threads > 1 && self.cout >= 2 * CO {
            2
        } else {
            1
        };
        let group_len = self.cout.div_ceil(groups).div_ceil(CO) * CO;
        let macs_per_row = dw_rows * group_len * w * (self.cin + 9);
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
            let scratch_len = if self.pool { 2 * w } else { 0 };
            SCRATCH.with(|cell| {
                let mut buf = std::mem::take(&mut *cell.borrow_mut());
                if buf.len() < ring_len + scratch_len {
                    buf.resize(ring_len + scratch_len, 0.0);
                }
                let (ring, scratch) = buf.split_at_mut(ring_len);
                // SAFETY: this task alone writes output rows y0..y1 of channels c0..c1 of `out`.
                unsafe {
                    self.band(
                        x,
                        h,
                        w,
                        y0..y1,
                        c0..c1,
                        ring,
                        &mut scratch[..scratch_len],
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
    /// `ring` holds `RING * cs.len() * (w + 2)` floats, `scratch` `2 * w` when pooling.
    ///
    /// # Safety
    /// `dst` must point at `cout * oh * ow` floats, and no other thread may touch those rows of those
    /// channels meanwhile.
    #[allow(clippy::too_many_arguments)]
    unsafe fn band(
        &self,
        x: &[f32],
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
        let plane = h * w;
        let (oh, ow) = self.out_size(h, w);
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
                pointwise_row(
                    pw,
                    &self.pw_epi,
                    cs.start,
                    x,
                    plane,
                    next * w,
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

/// A 1x1 convolution (stride 1, no padding, one group) followed by a 3x3 depthwise convolution (stride 1,
/// padding 1), run as one fused layer. Built from the two [`Conv2d`] layers, which stay available as the
/// reference definition.
#[derive(Clone, Debug)]
pub struct PointwiseDepthwise {
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

    /// Whether a 2x2 max-pool is fused in ([`Self::with_max_pool2`]).
    pub fn pools(&self) -> bool {
        self.packed.pool
    }

    /// (input channels, output channels).
    pub fn channels(&self) -> (usize, usize) {
        (self.packed.cin, self.packed.cout)
    }

    /// The two layers through candle's own ops (the definition the fused kernel must match).
    pub fn forward_reference(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.dw.forward_reference(&self.pw.forward_reference(x)?)?;
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
        let (n, cin, h, w) = layout.shape().dims4()?;
        if cin != self.cin {
            candle_core::bail!(
                "pointwise+depthwise expects {} input channels, got {cin}",
                self.cin
            );
        }
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("conv input must be contiguous");
        };
        let x = &storage.as_slice::<f32>()?[start..end];
        let (oh, ow) = self.out_size(h, w);
        let (img_in, img_out) = (cin * h * w, self.cout * oh * ow);
        // Every element is written: each output row of each channel by exactly one band (nothing when the
        // output is empty).
        let out = super::planes::written_buffer(n * img_out, |out| {
            if img_out > 0 {
                for (xi, oi) in x.chunks_exact(img_in).zip(out.chunks_exact_mut(img_out)) {
                    self.run(xi, h, w, oi);
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((n, self.cout, oh, ow))))
    }
}
