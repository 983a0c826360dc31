//! A 1x1 (pointwise) convolution followed by a 3x3 depthwise convolution (stride 1, padding 1), fused.
//!
//! This pair is nearly all of YuNet (and of most mobile detectors). Run as two layers, the pointwise result
//! (up to 64 channels of a 320x240 map, megabytes) goes out to memory and comes back; fused, it lives in a
//! ring of three rows per channel that stays in cache: output row `y` needs pointwise rows `y-1..=y+1`, and
//! each pointwise row is computed once. Output rows are split into bands over rayon's pool (each band
//! recomputes the two pointwise rows at its edges).
//!
//! The pointwise row is a small matrix product `[cout, cin] x [cin, w]` computed by a register-blocked kernel
//! (AVX-512: 8 output channels x 32 pixels of accumulators, weights packed per 8-channel block), which at these sizes
//! beats calling a general GEMM per row. Both layers' bias and activation are fused.

use std::cell::RefCell;
use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Layout, Module, Result, Shape, Tensor};
use rayon::prelude::*;

use super::conv::{Conv2d, ConvCfg};
use super::gemm::{finish_row, Epilogue};
use super::simd::{madd, multiversion};

/// Output channels per register block of the pointwise kernel.
const CO: usize = 8;
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
    /// Pointwise weights in blocks of [`CO`] output channels: `[block][cin][CO]`, zero past `cout`.
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
        let blocks = cout.div_ceil(CO);
        let mut packed = vec![0f32; blocks * cin * CO];
        for co in 0..cout {
            let (b, r) = (co / CO, co % CO);
            for ci in 0..cin {
                packed[(b * cin + ci) * CO + r] = pw[co * cin + ci];
            }
        }
        Self {
            cin,
            cout,
            pw: packed,
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
            let ring_len = 3 * self.cout.next_multiple_of(CO) * (w + 2);
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
        let slot_len = self.cout.next_multiple_of(CO) * stride;
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
    debug_assert!(x.len() >= (cin.max(1) - 1) * plane + row0 + w);
    debug_assert!(slot.len() >= cout.next_multiple_of(CO) * (w + 2));
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F; the asserts above bound every load and store (see the kernel).
        unsafe { pointwise_row_avx512(pw, x, plane, row0, w, cin, slot) };
        finish(epi, w, cout, slot);
        return;
    }
    pointwise_row_portable(pw, x, plane, row0, w, cin, cout, slot);
    finish(epi, w, cout, slot);
}

/// Bias and activation of the pointwise rows.
fn finish(epi: &Epilogue, w: usize, cout: usize, slot: &mut [f32]) {
    if epi.active {
        let stride = w + 2;
        for co in 0..cout {
            finish_row(
                &mut slot[co * stride + 1..co * stride + 1 + w],
                epi.bias[co],
                epi.slope[co],
            );
        }
    }
}

/// 8 output channels x 32 pixels of accumulators (16 zmm registers), one weight broadcast per channel and
/// two pixel loads per input channel; row ends are masked, so any width works.
///
/// # Safety
/// AVX-512F must be available; `x` holds `cin` planes of `plane` floats with `row0 + w <= plane`, `slot`
/// holds `ceil(cout / 8) * 8` rows of `w + 2`, `pw` is packed as [`PwDwPacked::new`] does.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pointwise_row_avx512(
    pw: &[f32],
    x: &[f32],
    plane: usize,
    row0: usize,
    w: usize,
    cin: usize,
    slot: &mut [f32],
) {
    use std::arch::x86_64::*;
    let stride = w + 2;
    let xp = x.as_ptr().add(row0);
    for (b, wb) in pw.chunks_exact(cin * CO).enumerate() {
        let out = slot.as_mut_ptr().add(b * CO * stride + 1);
        let mut j0 = 0;
        while j0 < w {
            let n = (w - j0).min(32);
            let m0: __mmask16 = if n >= 16 { 0xffff } else { (1u16 << n) - 1 };
            let m1: __mmask16 = if n >= 32 {
                0xffff
            } else if n > 16 {
                (1u16 << (n - 16)) - 1
            } else {
                0
            };
            let mut acc = [_mm512_setzero_ps(); 2 * CO];
            let mut wp = wb.as_ptr();
            let mut xr = xp.add(j0);
            for _ in 0..cin {
                let x0 = _mm512_maskz_loadu_ps(m0, xr);
                let x1 = _mm512_maskz_loadu_ps(m1, xr.wrapping_add(16));
                for r in 0..CO {
                    let wv = _mm512_set1_ps(*wp.add(r));
                    acc[2 * r] = _mm512_fmadd_ps(wv, x0, acc[2 * r]);
                    acc[2 * r + 1] = _mm512_fmadd_ps(wv, x1, acc[2 * r + 1]);
                }
                wp = wp.add(CO);
                xr = xr.wrapping_add(plane);
            }
            for r in 0..CO {
                let o = out.add(r * stride + j0);
                _mm512_mask_storeu_ps(o, m0, acc[2 * r]);
                _mm512_mask_storeu_ps(o.wrapping_add(16), m1, acc[2 * r + 1]);
            }
            j0 += n;
        }
    }
}

/// Portable form: per output channel, a multiply-add of each input row (vectorised over pixels).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn pointwise_row_portable_body<const FMA: bool>(
    pw: &[f32],
    x: &[f32],
    plane: usize,
    row0: usize,
    w: usize,
    cin: usize,
    cout: usize,
    slot: &mut [f32],
) {
    let stride = w + 2;
    for co in 0..cout {
        let (b, r) = (co / CO, co % CO);
        let orow = &mut slot[co * stride + 1..co * stride + 1 + w];
        orow.fill(0.0);
        for ci in 0..cin {
            let wv = pw[(b * cin + ci) * CO + r];
            let xrow = &x[ci * plane + row0..ci * plane + row0 + w];
            for (o, v) in orow.iter_mut().zip(xrow) {
                *o = madd::<FMA>(wv, *v, *o);
            }
        }
    }
}

multiversion!(fn pointwise_row_portable => pointwise_row_portable_body(
    pw: &[f32],
    x: &[f32],
    plane: usize,
    row0: usize,
    w: usize,
    cin: usize,
    cout: usize,
    slot: &mut [f32],
));

/// One output row of the 3x3 depthwise conv from three zero-bordered pointwise rows (empty = outside the
/// image, else `out.len() + 2` long), plus bias and activation.
fn depthwise_row(taps: &[&[f32]; 3], k: &[f32], bias: f32, slope: f32, act: bool, out: &mut [f32]) {
    debug_assert!(taps
        .iter()
        .all(|r| r.is_empty() || r.len() >= out.len() + 2));
    debug_assert!(k.len() >= 9);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F; rows and kernel are as long as the kernel reads (asserted above).
        unsafe { depthwise_row_avx512(taps, k, bias, slope, act, out) };
        return;
    }
    depthwise_row_portable(taps, k, bias, slope, act, out);
}

/// The depthwise row in registers: four independent 16-pixel accumulators per step (the nine taps of one
/// pixel block are a dependent chain), each tap a load and a fused multiply-add, one store per block; row
/// ends are masked.
///
/// # Safety
/// AVX-512F must be available; each non-empty row holds at least `out.len() + 2` floats and `k` 9.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn depthwise_row_avx512(
    taps: &[&[f32]; 3],
    k: &[f32],
    bias: f32,
    slope: f32,
    act: bool,
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    const U: usize = 4;
    let w = out.len();
    let kv: [__m512; 9] = std::array::from_fn(|i| _mm512_set1_ps(k[i]));
    let (vb, vs, zero) = (
        _mm512_set1_ps(bias),
        _mm512_set1_ps(slope),
        _mm512_setzero_ps(),
    );
    let mask = |j: usize| -> __mmask16 {
        let n = w.saturating_sub(j).min(16);
        if n == 16 {
            0xffff
        } else {
            (1u16 << n) - 1
        }
    };
    let mut j0 = 0;
    while j0 < w {
        let m: [__mmask16; U] = std::array::from_fn(|u| mask(j0 + 16 * u));
        let mut acc = [vb; U];
        for (ky, row) in taps.iter().enumerate() {
            if row.is_empty() {
                continue;
            }
            let p = row.as_ptr().add(j0);
            for kx in 0..3 {
                for u in 0..U {
                    let v = _mm512_maskz_loadu_ps(m[u], p.wrapping_add(16 * u + kx));
                    acc[u] = _mm512_fmadd_ps(kv[ky * 3 + kx], v, acc[u]);
                }
            }
        }
        for u in 0..U {
            let mut a = acc[u];
            if act {
                a = _mm512_fmadd_ps(vs, _mm512_min_ps(a, zero), _mm512_max_ps(a, zero));
            }
            _mm512_mask_storeu_ps(out.as_mut_ptr().wrapping_add(j0 + 16 * u), m[u], a);
        }
        j0 += 16 * U;
    }
}

#[inline(always)]
fn depthwise_row_body<const FMA: bool>(
    taps: &[&[f32]; 3],
    k: &[f32],
    bias: f32,
    slope: f32,
    act: bool,
    out: &mut [f32],
) {
    let w = out.len();
    out.fill(bias);
    for (ky, row) in taps.iter().enumerate() {
        if row.is_empty() {
            continue;
        }
        for kx in 0..3 {
            let wv = k[ky * 3 + kx];
            for (o, v) in out.iter_mut().zip(&row[kx..kx + w]) {
                *o = madd::<FMA>(wv, *v, *o);
            }
        }
    }
    if act {
        for o in out.iter_mut() {
            let v = *o;
            *o = madd::<FMA>(slope, v.min(0.0), v.max(0.0));
        }
    }
}

multiversion!(fn depthwise_row_portable => depthwise_row_body(
    taps: &[&[f32]; 3],
    k: &[f32],
    bias: f32,
    slope: f32,
    act: bool,
    out: &mut [f32],
));

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The portable pointwise row (used where AVX-512 is missing) against the plain definition, and the
    /// AVX-512 kernel against it where the CPU has it, for widths around the 16/32-pixel blocks.
    #[test]
    fn pointwise_row_forms_agree() {
        let (cin, cout, h) = (5, 11, 3);
        for w in [1, 7, 16, 17, 31, 32, 33, 70] {
            let plane = h * w;
            let x: Vec<f32> = (0..cin * plane)
                .map(|i| ((i * 37) % 23) as f32 - 11.0)
                .collect();
            let wt: Vec<f32> = (0..cout * cin)
                .map(|i| ((i * 13) % 7) as f32 * 0.25 - 0.75)
                .collect();
            let p = PwDwPacked::new(cin, cout, &wt, epi(cout), vec![0.0; cout * 9], epi(cout));
            let len = cout.next_multiple_of(CO) * (w + 2);
            let (row0, stride) = (w, w + 2);
            let mut portable = vec![0f32; len];
            pointwise_row_portable(&p.pw, &x, plane, row0, w, cin, cout, &mut portable);
            for co in 0..cout {
                for j in 0..w {
                    let want: f32 = (0..cin)
                        .map(|ci| wt[co * cin + ci] * x[ci * plane + row0 + j])
                        .sum();
                    assert!(
                        (portable[co * stride + 1 + j] - want).abs() < 1e-4,
                        "w {w} co {co} j {j}"
                    );
                }
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                let mut fast = vec![0f32; len];
                // SAFETY: AVX-512F is present; sizes as the kernel requires.
                unsafe { pointwise_row_avx512(&p.pw, &x, plane, row0, w, cin, &mut fast) };
                for co in 0..cout {
                    let r = co * stride..(co + 1) * stride;
                    assert_eq!(fast[r.clone()], portable[r], "w {w} co {co}");
                }
            }
        }
    }

    /// The AVX-512 depthwise row (where the CPU has it) against the portable one, around the block sizes,
    /// with missing rows, activation on and off.
    #[test]
    fn depthwise_row_forms_agree() {
        let k: Vec<f32> = (0..9).map(|i| i as f32 * 0.3 - 1.1).collect();
        for w in [1, 5, 16, 17, 63, 64, 65, 130] {
            let rows: Vec<Vec<f32>> = (0..3)
                .map(|r| {
                    let mut v: Vec<f32> = (0..w + 2)
                        .map(|i| ((i * 7 + r * 3) % 11) as f32 - 5.0)
                        .collect();
                    v[0] = 0.0;
                    v[w + 1] = 0.0;
                    v
                })
                .collect();
            for (skip, act) in [(None, true), (Some(0), false), (Some(2), true)] {
                let taps: [&[f32]; 3] = std::array::from_fn(|i| {
                    if Some(i) == skip {
                        &[][..]
                    } else {
                        &rows[i][..]
                    }
                });
                let mut want = vec![0f32; w];
                depthwise_row_portable(&taps, &k, 0.5, 0.1, act, &mut want);
                for j in 0..w {
                    let mut v = 0.5;
                    for (ky, r) in taps.iter().enumerate().filter(|(_, r)| !r.is_empty()) {
                        v += (0..3).map(|kx| k[ky * 3 + kx] * r[j + kx]).sum::<f32>();
                    }
                    if act && v < 0.0 {
                        v *= 0.1;
                    }
                    assert!((want[j] - v).abs() < 1e-4, "w {w} j {j}");
                }
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx512f") {
                    let mut fast = vec![f32::NAN; w];
                    // SAFETY: AVX-512F is present; rows are w + 2 long.
                    unsafe { depthwise_row_avx512(&taps, &k, 0.5, 0.1, act, &mut fast) };
                    assert_eq!(fast, want, "w {w} skip {skip:?}");
                }
            }
        }
    }

    fn epi(c: usize) -> Epilogue {
        Epilogue {
            bias: vec![0.0; c],
            slope: vec![1.0; c],
            active: false,
        }
    }
}
