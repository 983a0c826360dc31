//! Register-blocked row kernels: a small matrix product over rows of pixels (`[rows, k] x [k, n]`, the heart
//! of 1x1 convolutions and of convolutions with few taps), and one output row of a 3x3 depthwise
//! convolution. Each has an AVX-512 form ([`avx512`], chosen at run time, row ends masked so any width
//! works) and a portable form the compiler vectorises; the tests check the two agree exactly.

use super::simd::{madd, multiversion};

#[cfg(target_arch = "x86_64")]
mod avx512;

/// Rows (output channels) per register block.
pub(crate) const CO: usize = 8;

/// Packs a row-major `[rows, k]` matrix into blocks of [`CO`] rows, `[block][k][CO]`, zero past `rows`.
pub(crate) fn pack_rows(a: &[f32], rows: usize, k: usize) -> Vec<f32> {
    debug_assert_eq!(a.len(), rows * k);
    let mut packed = vec![0f32; rows.div_ceil(CO) * k * CO];
    for r in 0..rows {
        for kk in 0..k {
            packed[((r / CO) * k + kk) * CO + r % CO] = a[r * k + kk];
        }
    }
    packed
}

/// Per-row bias and activation applied to a product on its way out of the registers:
/// `y = max(v, 0) + slope[r] * min(v, 0)` with `v = bias[r] + sum` (slope 1: none, 0: ReLU).
#[derive(Clone, Copy)]
pub(crate) struct RowEpi<'a> {
    pub bias: &'a [f32],
    pub slope: &'a [f32],
}

/// `out[r * ldo + j] = epi(sum_kk A[r][kk] * x[kk * ldx + j])` for `r < rows`, `j < n`, with `A` packed by
/// [`pack_rows`] (`k` columns); no epilogue when `epi` is `None`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rows_product(
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
    if rows == 0 || n == 0 {
        return;
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
    if let Some(e) = &epi {
        assert!(
            e.bias.len() >= rows && e.slope.len() >= rows,
            "epilogue too short"
        );
    }
    #[cfg(target_arch = "x86_64")]
    if avx512::rows_product(a, k, rows, x, ldx, n, out, ldo, epi) {
        return;
    }
    rows_product_portable(a, k, rows, x, ldx, n, out, ldo, epi);
}

/// Portable form: per output row, a multiply-add of each input row (vectorised over pixels).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn rows_product_body<const FMA: bool>(
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
    for r in 0..rows {
        let (b, rr) = (r / CO, r % CO);
        let orow = &mut out[r * ldo..r * ldo + n];
        orow.fill(epi.map_or(0.0, |e| e.bias[r]));
        for kk in 0..k {
            let wv = a[(b * k + kk) * CO + rr];
            for (o, v) in orow.iter_mut().zip(&x[kk * ldx..kk * ldx + n]) {
                *o = madd::<FMA>(wv, *v, *o);
            }
        }
        if let Some(e) = epi {
            let slope = e.slope[r];
            for o in orow.iter_mut() {
                let v = *o;
                *o = madd::<FMA>(slope, v.min(0.0), v.max(0.0));
            }
        }
    }
}

multiversion!(fn rows_product_portable => rows_product_body(
    a: &[f32],
    k: usize,
    rows: usize,
    x: &[f32],
    ldx: usize,
    n: usize,
    out: &mut [f32],
    ldo: usize,
    epi: Option<RowEpi>,
));

/// One output row of the 3x3 depthwise conv from three zero-bordered pointwise rows (empty = outside the
/// image, else `out.len() + 2` long), plus bias and activation.
pub(crate) fn depthwise_row(
    taps: &[&[f32]; 3],
    k: &[f32],
    bias: f32,
    slope: f32,
    act: bool,
    out: &mut [f32],
) {
    debug_assert!(taps
        .iter()
        .all(|r| r.is_empty() || r.len() >= out.len() + 2));
    debug_assert!(k.len() >= 9);
    #[cfg(target_arch = "x86_64")]
    if avx512::depthwise_row(taps, k, bias, slope, act, out) {
        return;
    }
    depthwise_row_portable(taps, k, bias, slope, act, out);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The portable product against the plain definition, and the AVX-512 one (where the CPU has it)
    /// against the portable one, around the 8-row and 16/32-pixel block sizes.
    #[test]
    fn rows_product_forms_agree() {
        for (rows, k) in [(11, 5), (8, 27), (1, 64), (3, 1)] {
            for n in [1, 7, 16, 17, 31, 32, 33, 70] {
                let (ldx, ldo) = (n + 3, n + 2);
                let x: Vec<f32> = (0..k * ldx)
                    .map(|i| ((i * 37) % 23) as f32 - 11.0)
                    .collect();
                let a: Vec<f32> = (0..rows * k)
                    .map(|i| ((i * 13) % 7) as f32 * 0.25 - 0.75)
                    .collect();
                let packed = pack_rows(&a, rows, k);
                let bias: Vec<f32> = (0..rows).map(|r| r as f32 * 0.5 - 2.0).collect();
                let slope: Vec<f32> = (0..rows).map(|r| [1.0, 0.0, 0.25][r % 3]).collect();
                for with_epi in [false, true] {
                    let epi = with_epi.then_some(RowEpi {
                        bias: &bias,
                        slope: &slope,
                    });
                    let mut portable = vec![f32::NAN; rows * ldo];
                    rows_product_portable(&packed, k, rows, &x, ldx, n, &mut portable, ldo, epi);
                    for r in 0..rows {
                        for j in 0..n {
                            let mut want: f32 =
                                (0..k).map(|kk| a[r * k + kk] * x[kk * ldx + j]).sum();
                            if with_epi {
                                want += bias[r];
                                if want < 0.0 {
                                    want *= slope[r];
                                }
                            }
                            let got = portable[r * ldo + j];
                            assert!((got - want).abs() < 1e-3, "{rows}x{k} n {n} r {r} j {j}");
                        }
                    }
                    let mut fast = vec![f32::NAN; rows * ldo];
                    #[cfg(target_arch = "x86_64")]
                    if avx512::rows_product(&packed, k, rows, &x, ldx, n, &mut fast, ldo, epi) {
                        for r in 0..rows {
                            let span = r * ldo..r * ldo + n;
                            assert_eq!(
                                fast[span.clone()],
                                portable[span],
                                "{rows}x{k} n {n} r {r}"
                            );
                            // Nothing written between rows.
                            assert!(fast[r * ldo + n..(r + 1) * ldo].iter().all(|v| v.is_nan()));
                        }
                    }
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
                let mut fast = vec![f32::NAN; w];
                #[cfg(target_arch = "x86_64")]
                if avx512::depthwise_row(&taps, &k, 0.5, 0.1, act, &mut fast) {
                    assert_eq!(fast, want, "w {w} skip {skip:?}");
                }
            }
        }
    }
}
