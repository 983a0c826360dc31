//! Matrix products on row-major f32 buffers through the `gemm` crate (the one candle uses; it picks
//! AVX2/AVX-512/NEON micro-kernels at run time), plus the fused bias + activation pass that follows them.

use super::simd::{madd, multiversion};

/// `C[m, n] = A[m, k] · B[k, n]`, all row-major with the given row strides, on the calling thread.
///
/// # Safety
/// `a`, `b` and `c` must be valid for the rows and strides given (`a`: m rows of lda, `b`: k rows of ldb,
/// `c`: m rows of ldc, each row at least k / n / n long), and no other thread may touch `c`'s rows
/// `[0, n)` columns meanwhile.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn matmul(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY: forwarded from the caller; gemm computes c = 0*c + 1*a*b without reading c.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            1,
            ldc as isize,
            false,
            a,
            1,
            lda as isize,
            b,
            1,
            ldb as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// Per-output-channel bias and activation, in the one form `y = max(v, 0) + slope * min(v, 0)` with
/// `v = y + bias`: slope 1 is no activation, 0 is ReLU, anything else PReLU.
#[derive(Clone, Debug)]
pub(crate) struct Epilogue {
    /// Bias per output channel (zeros when the layer has none).
    pub bias: Vec<f32>,
    /// Negative-side slope per output channel.
    pub slope: Vec<f32>,
    /// False when the pass would not change anything (no bias, no activation): it is skipped.
    pub active: bool,
}

impl Epilogue {
    /// Applies channel `c`'s bias and activation to `row`.
    #[inline]
    pub fn apply(&self, c: usize, row: &mut [f32]) {
        if self.active {
            finish_row(row, self.bias[c], self.slope[c]);
        }
    }

    /// The part of this epilogue for channels `c0..c0 + n`.
    pub fn slice(&self, c0: usize, n: usize) -> Epilogue {
        Epilogue {
            bias: self.bias[c0..c0 + n].to_vec(),
            slope: self.slope[c0..c0 + n].to_vec(),
            active: self.active,
        }
    }
}

#[inline(always)]
fn finish_row_body<const FMA: bool>(row: &mut [f32], bias: f32, slope: f32) {
    for y in row.iter_mut() {
        let v = *y + bias;
        *y = madd::<FMA>(slope, v.min(0.0), v.max(0.0));
    }
}

multiversion!(pub(crate) fn finish_row => finish_row_body(row: &mut [f32], bias: f32, slope: f32));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_matches_naive_with_strides() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f32> = (0..m * 4).map(|i| (i % 7) as f32 - 3.0).collect(); // lda 4
        let b: Vec<f32> = (0..k * 9).map(|i| (i % 5) as f32 * 0.5).collect(); // ldb 9
        let mut c = vec![f32::NAN; m * 8]; // ldc 8
                                           // SAFETY: sizes match the strides above.
        unsafe { matmul(m, n, k, a.as_ptr(), 4, b.as_ptr(), 9, c.as_mut_ptr(), 8) };
        for i in 0..m {
            for j in 0..n {
                let want: f32 = (0..k).map(|l| a[i * 4 + l] * b[l * 9 + j]).sum();
                assert!((c[i * 8 + j] - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn epilogue_forms() {
        let mut row = vec![-2.0, 0.5, 3.0];
        finish_row(&mut row, 1.0, 0.25);
        assert_eq!(row, vec![-0.25, 1.5, 4.0]);
        let mut row = vec![-2.0, 0.5];
        finish_row(&mut row, 0.0, 0.0);
        assert_eq!(row, vec![0.0, 0.5]);
        let mut row = vec![-2.0, 0.5];
        finish_row(&mut row, -1.0, 1.0);
        assert_eq!(row, vec![-3.0, -0.5]);
    }
}
