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
use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Layout, Module, Result, Shape, Tensor};
use rayon::prelude::*;

use super::conv::{Conv2d, ConvCfg};
use super::gemm::{finish_row, Epilogue};
use super::rows::{depthwise_row, pack_rows, rows_product};

/// Fewest multiply-adds per rayon band.
const BAND_MACS: usize = 256 * 1024;

thread_local! {
    /// Per-thread ring of pointwise rows, reused across calls.
    static RING: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The fused pair, packed for the kernel.
#[derive(Debug)]
pub(crate) struct PwDwPacked {
    pub cin: usize,
    pub cout: usize,
    /// Pointwise weights packed by [`pack_rows`].
    pw: Vec<f32>,
    pw_epi: Epilogue,
    /// Depthwise weights `[cout][9]`.
    dw: Vec<f32>,
    dw_epi: Epilogue,
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
        }
    }

    /// One image: `x` is `[cin, h, w]`, `out` is `[cout, h, w]`.
    pub fn run(&self, x: &[f32], h: usize, w: usize, out: &mut [f32]) {
        debug_assert_eq!(x.len(), self.cin * h * w);
        debug_assert_eq!(out.len(), self.cout * h * w);
        if h == 0 || w == 0 {
            return;
        }
        let macs_per_row = self.cout * w * (self.cin + 9);
        let threads = rayon::current_num_threads();
        let min_rows = BAND_MACS.div_ceil(macs_per_row).max(2);
        let band = if threads > 1 {
            h.div_ceil(2 * threads).max(min_rows)
        } else {
            h
        };
        let n_bands = h.div_ceil(band);
        let dst = OutPtr(out.as_mut_ptr());
        let run_band = |b: usize| {
            let (y0, y1) = (b * band, ((b + 1) * band).min(h));
            let ring_len = 3 * self.cout * (w + 2);
            RING.with(|cell| {
                let mut ring = std::mem::take(&mut *cell.borrow_mut());
                if ring.len() < ring_len {
                    ring.resize(ring_len, 0.0);
                }
                // SAFETY: this band alone writes rows y0..y1 of every channel plane of `out`.
                unsafe { self.band(x, h, w, y0, y1, &mut ring[..ring_len], dst) };
                *cell.borrow_mut() = ring;
            });
        };
        if n_bands > 1 {
            (0..n_bands).into_par_iter().for_each(run_band);
        } else {
            run_band(0);
        }
    }

    /// Output rows `y0..y1`.
    ///
    /// # Safety
    /// `dst` must point at `cout * h * w` floats, and no other thread may touch rows `y0..y1` meanwhile.
    #[allow(clippy::too_many_arguments)]
    unsafe fn band(
        &self,
        x: &[f32],
        h: usize,
        w: usize,
        y0: usize,
        y1: usize,
        ring: &mut [f32],
        dst: OutPtr,
    ) {
        let stride = w + 2;
        let slot_len = self.cout * stride;
        let plane = h * w;
        // Ring slot r % 3 holds pointwise row r: per channel w values between a zero on each side.
        for slot in ring.chunks_exact_mut(stride) {
            slot[0] = 0.0;
            slot[w + 1] = 0.0;
        }
        let first = y0.saturating_sub(1);
        let mut next = first; // next pointwise row to compute
        for oy in y0..y1 {
            let need = (oy + 2).min(h);
            while next < need {
                let slot = &mut ring[(next % 3) * slot_len..][..slot_len];
                pointwise_row(
                    &self.pw,
                    &self.pw_epi,
                    x,
                    plane,
                    next * w,
                    w,
                    self.cin,
                    self.cout,
                    slot,
                );
                next += 1;
            }
            let rows: [Option<&[f32]>; 3] = std::array::from_fn(|k| {
                let r = oy as isize + k as isize - 1;
                (r >= 0 && (r as usize) < h)
                    .then(|| &ring[(r as usize % 3) * slot_len..][..slot_len])
            });
            for co in 0..self.cout {
                // SAFETY: row oy of channel co is inside `dst` and belongs to this band (caller's contract).
                let orow = unsafe {
                    std::slice::from_raw_parts_mut(dst.get().add(co * plane + oy * w), w)
                };
                let taps: [&[f32]; 3] = std::array::from_fn(|k| match rows[k] {
                    Some(r) => &r[co * stride..(co + 1) * stride],
                    None => &[],
                });
                depthwise_row(
                    &taps,
                    &self.dw[co * 9..co * 9 + 9],
                    self.dw_epi.bias[co],
                    self.dw_epi.slope[co],
                    self.dw_epi.active,
                    orow,
                );
            }
        }
    }
}

/// Pointwise row: `slot[co][1 + j] = epi(sum_ci w[co][ci] * x[ci][row0 + j])` for `j < w`.
#[allow(clippy::too_many_arguments)]
fn pointwise_row(
    pw: &[f32],
    epi: &Epilogue,
    x: &[f32],
    plane: usize,
    row0: usize,
    w: usize,
    cin: usize,
    cout: usize,
    slot: &mut [f32],
) {
    let stride = w + 2;
    rows_product(pw, cin, cout, &x[row0..], plane, w, &mut slot[1..], stride);
    if epi.active {
        for co in 0..cout {
            let row = &mut slot[co * stride + 1..co * stride + 1 + w];
            finish_row(row, epi.bias[co], epi.slope[co]);
        }
    }
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

    /// The two layers through candle's own ops (the definition the fused kernel must match).
    pub fn forward_reference(&self, x: &Tensor) -> Result<Tensor> {
        self.dw.forward_reference(&self.pw.forward_reference(x)?)
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
        let (img_in, img_out) = (cin * h * w, self.cout * h * w);
        // Every element is written: each output row of each channel by exactly one band.
        let out = super::planes::written_buffer(n * img_out, |out| {
            for (xi, oi) in x.chunks_exact(img_in).zip(out.chunks_exact_mut(img_out)) {
                self.run(xi, h, w, oi);
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((n, self.cout, h, w))))
    }
}
