//! The geometry of one convolution call: input size, kernel, stride, padding and the output size they give.

/// Sizes of one (per-group) convolution on one NCHW image.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geom {
    /// Input channels (of this group).
    pub cin: usize,
    /// Input height and width.
    pub h: usize,
    pub w: usize,
    /// Output channels (of this group).
    pub cout: usize,
    /// Kernel height and width.
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    /// Zero padding [top, left, bottom, right].
    pub pad: [usize; 4],
    /// Output height and width.
    pub oh: usize,
    pub ow: usize,
}

impl Geom {
    /// Output size from the rest; `None` when the kernel does not fit the padded input or stride is 0.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cin: usize,
        h: usize,
        w: usize,
        cout: usize,
        kh: usize,
        kw: usize,
        stride: usize,
        pad: [usize; 4],
    ) -> Option<Self> {
        let hp = h + pad[0] + pad[2];
        let wp = w + pad[1] + pad[3];
        if stride == 0 || kh == 0 || kw == 0 || hp < kh || wp < kw {
            return None;
        }
        Some(Self {
            cin,
            h,
            w,
            cout,
            kh,
            kw,
            stride,
            pad,
            oh: (hp - kh) / stride + 1,
            ow: (wp - kw) / stride + 1,
        })
    }

    /// Output pixels per channel.
    pub fn out_pixels(&self) -> usize {
        self.oh * self.ow
    }

    /// Length of one im2col column: input channels times kernel taps.
    pub fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }

    /// A 1x1 stride-1 unpadded conv reads its input as the right-hand matrix directly.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == [0; 4]
    }

    /// The output columns `ox` whose input column `ox*stride + kx - pad_left` lies inside the image, as a
    /// half-open range (possibly empty).
    pub fn valid_ox(&self, kx: usize) -> (usize, usize) {
        valid_range(self.ow, self.w, self.stride, self.pad[1], kx)
    }

    /// Same as [`Self::valid_ox`] for rows.
    pub fn valid_oy(&self, ky: usize) -> (usize, usize) {
        valid_range(self.oh, self.h, self.stride, self.pad[0], ky)
    }
}

/// Outputs `o` in `0..n_out` with `0 <= o*s + k - pad < n_in`.
fn valid_range(n_out: usize, n_in: usize, s: usize, pad: usize, k: usize) -> (usize, usize) {
    // o*s >= pad - k
    let lo = if pad > k { (pad - k).div_ceil(s) } else { 0 };
    // o*s + k - pad <= n_in - 1  <=>  o <= (n_in - 1 + pad - k) / s
    let hi = if n_in + pad > k {
        ((n_in - 1 + pad - k) / s + 1).min(n_out)
    } else {
        0
    };
    (lo.min(hi), hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ranges_match_brute_force() {
        for n_in in 1..9 {
            for s in 1..4 {
                for pad in 0..4 {
                    for k in 0..6 {
                        if n_in + 2 * pad < k + 1 {
                            continue;
                        }
                        let n_out = (n_in + 2 * pad - (k + 1)) / s + 1;
                        let inside: Vec<usize> = (0..n_out)
                            .filter(|&o| {
                                let i = (o * s + k) as isize - pad as isize;
                                i >= 0 && i < n_in as isize
                            })
                            .collect();
                        let (lo, hi) = valid_range(n_out, n_in, s, pad, k);
                        assert_eq!(inside, (lo..hi).collect::<Vec<_>>(), "{n_in} {s} {pad} {k}");
                    }
                }
            }
        }
    }
}
