//! The AVX-512 forms of the row kernels (x86-64 only).
//!
//! AVX-512 intrinsics and `#[target_feature(enable = "avx512f")]` are stable since Rust 1.89, newer than the
//! crate's MSRV (1.85). So every item using them exists only when the compiler is 1.89 or newer
//! (`rustversion::since`); older compilers get stubs that report "not available" and the callers use the
//! portable forms. That gate is why `clippy::incompatible_msrv` is allowed here.
#![allow(clippy::incompatible_msrv)]

use super::{RowEpi, CO};

/// [`super::rows_product`] with AVX-512 when the CPU has it; false (nothing written) otherwise.
#[rustversion::since(1.89)]
#[allow(clippy::too_many_arguments)]
pub(super) fn rows_product(
    a: &[f32],
    k: usize,
    rows: usize,
    x: &[f32],
    ldx: usize,
    n: usize,
    out: &mut [f32],
    ldo: usize,
    epi: Option<RowEpi>,
) -> bool {
    if !std::arch::is_x86_feature_detected!("avx512f") {
        return false;
    }
    if rows == 0 || n == 0 {
        return true;
    }
    if let Some(e) = &epi {
        assert!(
            e.bias.len() >= rows && e.slope.len() >= rows,
            "epilogue too short"
        );
    }
    assert!(
        a.len() >= rows.div_ceil(CO) * k * CO,
        "packed matrix too short"
    );
    assert!(
        k == 0 || x.len() >= (k - 1) * ldx + n,
        "input rows too short"
    );
    assert!(out.len() >= (rows - 1) * ldo + n, "output rows too short");
    // SAFETY: the CPU has AVX-512F; the asserts bound every unmasked load and store.
    unsafe { rows_product_kernel(a, k, rows, x, ldx, n, out, ldo, epi) };
    true
}

/// Stub for compilers without AVX-512 support in `std::arch`.
#[rustversion::before(1.89)]
#[allow(clippy::too_many_arguments)]
pub(super) fn rows_product(
    _a: &[f32],
    _k: usize,
    _rows: usize,
    _x: &[f32],
    _ldx: usize,
    _n: usize,
    _out: &mut [f32],
    _ldo: usize,
    _epi: Option<RowEpi>,
) -> bool {
    false
}

/// [`super::depthwise_row`] with AVX-512 when the CPU has it; false (nothing written) otherwise.
#[rustversion::since(1.89)]
pub(super) fn depthwise_row(
    taps: &[&[f32]; 3],
    k: &[f32],
    bias: f32,
    slope: f32,
    act: bool,
    out: &mut [f32],
) -> bool {
    if !std::arch::is_x86_feature_detected!("avx512f") {
        return false;
    }
    assert!(
        taps.iter()
            .all(|r| r.is_empty() || r.len() >= out.len() + 2),
        "depthwise rows too short"
    );
    assert!(k.len() >= 9, "depthwise kernel too short");
    // SAFETY: the CPU has AVX-512F; the asserts bound every unmasked load.
    unsafe { depthwise_row_kernel(taps, k, bias, slope, act, out) };
    true
}

/// Stub for compilers without AVX-512 support in `std::arch`.
#[rustversion::before(1.89)]
pub(super) fn depthwise_row(
    _taps: &[&[f32]; 3],
    _k: &[f32],
    _bias: f32,
    _slope: f32,
    _act: bool,
    _out: &mut [f32],
) -> bool {
    false
}

/// 8 rows x 32 pixels of accumulators (16 zmm registers): per `kk`, two pixel loads and eight broadcasts.
///
/// # Safety
/// AVX-512F must be available, and the slices as long as [`rows_product`] checks.
#[rustversion::since(1.89)]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn rows_product_kernel(
    a: &[f32],
    k: usize,
    rows: usize,
    x: &[f32],
    ldx: usize,
    n: usize,
    out: &mut [f32],
    ldo: usize,
    epi: Option<RowEpi>,
) {
    use std::arch::x86_64::*;
    let mask = |m: usize| -> __mmask16 {
        if m >= 16 {
            0xffff
        } else {
            (1u16 << m) - 1
        }
    };
    for b in 0..rows.div_ceil(CO) {
        let wb = a.as_ptr().add(b * k * CO);
        let live = (rows - b * CO).min(CO);
        // Start values (the bias) and negative-side slopes of this block's rows.
        let per_row = |v: Option<&[f32]>| -> [__m512; CO] {
            std::array::from_fn(|r| match v {
                Some(v) if r < live => _mm512_set1_ps(v[b * CO + r]),
                _ => _mm512_setzero_ps(),
            })
        };
        let init = per_row(epi.map(|e| e.bias));
        let slopes = per_row(epi.map(|e| e.slope));
        let zero = _mm512_setzero_ps();
        let mut j0 = 0;
        while j0 < n {
            let left = n - j0;
            let (m0, m1) = (mask(left), mask(left.saturating_sub(16)));
            let mut acc: [__m512; 2 * CO] = std::array::from_fn(|i| init[i / 2]);
            let mut wp = wb;
            let mut xr = x.as_ptr().wrapping_add(j0);
            for _ in 0..k {
                let x0 = _mm512_maskz_loadu_ps(m0, xr);
                let x1 = _mm512_maskz_loadu_ps(m1, xr.wrapping_add(16));
                for r in 0..CO {
                    let wv = _mm512_set1_ps(*wp.add(r));
                    acc[2 * r] = _mm512_fmadd_ps(wv, x0, acc[2 * r]);
                    acc[2 * r + 1] = _mm512_fmadd_ps(wv, x1, acc[2 * r + 1]);
                }
                wp = wp.add(CO);
                xr = xr.wrapping_add(ldx);
            }
            if epi.is_some() {
                for (i, a) in acc.iter_mut().enumerate() {
                    let s = slopes[i / 2];
                    *a = _mm512_fmadd_ps(s, _mm512_min_ps(*a, zero), _mm512_max_ps(*a, zero));
                }
            }
            for r in 0..live {
                let o = out.as_mut_ptr().wrapping_add((b * CO + r) * ldo + j0);
                _mm512_mask_storeu_ps(o, m0, acc[2 * r]);
                _mm512_mask_storeu_ps(o.wrapping_add(16), m1, acc[2 * r + 1]);
            }
            j0 += 32;
        }
    }
}

/// The depthwise row in registers: four independent 16-pixel accumulators per step (the nine taps of one
/// pixel block are a dependent chain), each tap a load and a fused multiply-add, one store per block; row
/// ends are masked.
///
/// # Safety
/// AVX-512F must be available; each non-empty row holds at least `out.len() + 2` floats and `k` 9.
#[rustversion::since(1.89)]
#[target_feature(enable = "avx512f")]
unsafe fn depthwise_row_kernel(
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
