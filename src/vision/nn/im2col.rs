//! im2col: lay out the input patches of a run of output pixels as the columns of a matrix, so a dense conv
//! becomes one matrix product `weights [Cout, K] x col [K, pixels]` whose result is already NCHW.

use super::geom::Geom;
use super::simd::multiversion;

/// Fills `col` (row-major `[K, t]`, K = cin*kh*kw in weight order) with the patches of output pixels
/// `p0 .. p0 + t` (row-major over the output image). Padding reads as zero.
#[inline(always)]
fn im2col_tile_body<const FMA: bool>(x: &[f32], g: &Geom, p0: usize, t: usize, col: &mut [f32]) {
    let plane = g.h * g.w;
    let (s, pt, pl) = (g.stride, g.pad[0], g.pad[1]);
    let mut k = 0;
    for ci in 0..g.cin {
        let xc = &x[ci * plane..(ci + 1) * plane];
        for ky in 0..g.kh {
            let (oy_lo, oy_hi) = g.valid_oy(ky);
            for kx in 0..g.kw {
                let (ox_lo, ox_hi) = g.valid_ox(kx);
                let dst = &mut col[k * t..(k + 1) * t];
                k += 1;
                // Walk the output rows the tile covers, one segment per row.
                let mut p = p0;
                while p < p0 + t {
                    let (oy, ox0) = (p / g.ow, p % g.ow);
                    let ox1 = g.ow.min(ox0 + (p0 + t - p));
                    let seg = &mut dst[p - p0..p - p0 + (ox1 - ox0)];
                    p += ox1 - ox0;
                    if oy < oy_lo || oy >= oy_hi {
                        seg.fill(0.0);
                        continue;
                    }
                    let row = &xc[(oy * s + ky - pt) * g.w..][..g.w];
                    let (a, b) = (ox_lo.clamp(ox0, ox1), ox_hi.clamp(ox0, ox1));
                    seg[..a - ox0].fill(0.0);
                    seg[b - ox0..].fill(0.0);
                    if a < b {
                        let ix0 = a * s + kx - pl;
                        let inner = &mut seg[a - ox0..b - ox0];
                        if s == 1 {
                            inner.copy_from_slice(&row[ix0..ix0 + (b - a)]);
                        } else if s == 2 {
                            // A constant stride the compiler turns into vector shuffles.
                            let n = b - a;
                            let src = &row[ix0..ix0 + 2 * n - 1];
                            for (d, pair) in inner.iter_mut().zip(src.chunks_exact(2)) {
                                *d = pair[0];
                            }
                            inner[n - 1] = src[2 * n - 2];
                        } else {
                            for (d, v) in inner.iter_mut().zip(row[ix0..].iter().step_by(s)) {
                                *d = *v;
                            }
                        }
                    }
                }
            }
        }
    }
}

multiversion!(pub(crate) fn im2col_tile => im2col_tile_body(
    x: &[f32],
    g: &Geom,
    p0: usize,
    t: usize,
    col: &mut [f32],
));

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct definition of one col entry.
    fn patch_value(x: &[f32], g: &Geom, k: usize, p: usize) -> f32 {
        let (ci, r) = (k / (g.kh * g.kw), k % (g.kh * g.kw));
        let (ky, kx) = (r / g.kw, r % g.kw);
        let (oy, ox) = (p / g.ow, p % g.ow);
        let iy = (oy * g.stride + ky) as isize - g.pad[0] as isize;
        let ix = (ox * g.stride + kx) as isize - g.pad[1] as isize;
        if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
            0.0
        } else {
            x[ci * g.h * g.w + iy as usize * g.w + ix as usize]
        }
    }

    #[test]
    fn tiles_match_definition() {
        for (s, pad, k) in [
            (1, [1, 1, 1, 1], 3),
            (2, [0, 0, 1, 1], 3),
            (2, [0; 4], 7),
            (3, [2, 0, 1, 2], 5),
        ] {
            let g = Geom::new(2, 9, 11, 1, k, k, s, pad).unwrap();
            let x: Vec<f32> = (0..2 * 9 * 11).map(|i| i as f32 + 1.0).collect();
            let p = g.out_pixels();
            let tiles = [(0, p), (3, 5), (p - 4, 4), (1, g.ow + 3)];
            for (p0, t) in tiles.into_iter().filter(|&(p0, t)| p0 + t <= p) {
                let mut col = vec![f32::NAN; g.k() * t];
                im2col_tile(&x, &g, p0, t, &mut col);
                for kk in 0..g.k() {
                    for j in 0..t {
                        assert_eq!(
                            col[kk * t + j],
                            patch_value(&x, &g, kk, p0 + j),
                            "{g:?} k{kk} p{}",
                            p0 + j
                        );
                    }
                }
            }
        }
    }
}
