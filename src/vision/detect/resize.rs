//! Triangle-filter (bilinear) resizing of RGB frames: the arithmetic of `image::imageops::resize` with
//! `FilterType::Triangle`, to the bit, but several times faster.
//!
//! The detector scales every frame larger than its input limit down (a 1280x720 camera frame to 640x360).
//! `imageops::resize` took ~8 ms of a ~21 ms detect call for that: it goes through generic per-pixel
//! accessors, a full-size float intermediate image and one thread. Here each output row is made on its own
//! (rows over rayon's pool): the vertical pass sums the source rows into one float row, the horizontal pass
//! adds tap after tap over all output samples of the row (a gather); both are plain loops the compiler
//! vectorises (AVX-512/AVX2 where the CPU has them). Weights, summation order and rounding are those of
//! `imageops` (same f32 formulas, multiply then add, never fused), so the output is identical: the tests
//! compare every byte.

use image::{imageops, RgbImage};
use rayon::prelude::*;

use crate::vision::nn::simd::multiversion;

/// The source span and normalised weights of one output coordinate.
struct Taps {
    first: usize,
    weights: Vec<f32>,
}

/// `imageops`' triangle filter, support 1 (widened by the scale factor when shrinking).
fn triangle(x: f32) -> f32 {
    if x.abs() < 1.0 {
        1.0 - x.abs()
    } else {
        0.0
    }
}

/// Taps of every output coordinate for `src` -> `dst` samples, computed exactly as `imageops` does.
fn taps(src: u32, dst: u32) -> Vec<Taps> {
    let ratio = src as f32 / dst as f32;
    let sratio = if ratio < 1.0 { 1.0 } else { ratio };
    let support = sratio; // the triangle's support (1) times sratio
    (0..dst)
        .map(|o| {
            let centre = (o as f32 + 0.5) * ratio;
            let left = ((centre - support).floor() as i64).clamp(0, i64::from(src) - 1);
            let right = ((centre + support).ceil() as i64).clamp(left + 1, i64::from(src));
            let centre = centre - 0.5;
            let mut weights: Vec<f32> = (left..right)
                .map(|i| triangle((i as f32 - centre) / sratio))
                .collect();
            let mut sum = 0.0;
            for w in &weights {
                sum += w;
            }
            for w in &mut weights {
                *w /= sum;
            }
            Taps {
                first: left as usize,
                weights,
            }
        })
        .collect()
}

/// `img` resized to `nw` x `nh` with a triangle filter, identical to
/// `imageops::resize(img, nw, nh, FilterType::Triangle)`.
pub fn resize_triangle(img: &RgbImage, nw: u32, nh: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 || nw == 0 || nh == 0 || (w, h) == (nw, nh) {
        return imageops::resize(img, nw, nh, imageops::FilterType::Triangle);
    }
    let (xt, yt) = (taps(w, nw), taps(h, nh));
    let (src, row_len, out_len) = (img.as_raw(), 3 * w as usize, 3 * nw as usize);
    // The horizontal taps tap-major, for every output sample (pixel x channel): tap i of all outputs is one
    // gather and multiply-add over the row. Outputs with fewer taps get zero weights after their own taps
    // (adding 0.0 to a sum of non-negative terms changes no bit), pointing at a valid sample.
    let n_taps = xt.iter().map(|t| t.weights.len()).max().unwrap_or(0);
    let mut idx = vec![0u32; n_taps * out_len];
    let mut wts = vec![0f32; n_taps * out_len];
    for (o, t) in xt.iter().enumerate() {
        for i in 0..n_taps {
            let (src_x, wt) = match t.weights.get(i) {
                Some(&wt) => (t.first + i, wt),
                None => (t.first, 0.0),
            };
            for c in 0..3 {
                idx[i * out_len + 3 * o + c] = (3 * src_x + c) as u32;
                wts[i * out_len + 3 * o + c] = wt;
            }
        }
    }
    let mut out = vec![0u8; out_len * nh as usize];
    out.par_chunks_mut(out_len)
        .zip(yt.par_iter())
        .with_min_len(8)
        .for_each_init(
            || (vec![0f32; row_len], vec![0f32; out_len]),
            |(col, acc), (orow, ty)| {
                // Vertical: this output row's weighted sum of source rows, every channel of every column.
                col.fill(0.0);
                for (i, &wy) in ty.weights.iter().enumerate() {
                    vertical_tap(&src[(ty.first + i) * row_len..][..row_len], wy, col);
                }
                // Horizontal: each output sample's weighted sum of that row's samples, rounded to a byte.
                acc.fill(0.0);
                for i in 0..n_taps {
                    let span = i * out_len..(i + 1) * out_len;
                    horizontal_tap(col, &idx[span.clone()], &wts[span], acc);
                }
                to_bytes(acc, orow);
            },
        );
    RgbImage::from_raw(nw, nh, out).expect("buffer sized for nw x nh")
}

#[inline(always)]
fn vertical_tap_body<const FMA: bool>(row: &[u8], wy: f32, col: &mut [f32]) {
    for (c, &v) in col.iter_mut().zip(row) {
        *c += f32::from(v) * wy;
    }
}

#[inline(always)]
fn horizontal_tap_body<const FMA: bool>(col: &[f32], idx: &[u32], wts: &[f32], acc: &mut [f32]) {
    let last = col.len().saturating_sub(1);
    for ((a, &i), &wt) in acc.iter_mut().zip(idx).zip(wts) {
        // Indices are in range by construction; the `min` only lets the compiler drop the bounds check
        // and vectorise the loop into gathers.
        *a += col[(i as usize).min(last)] * wt;
    }
}

#[inline(always)]
fn to_bytes_body<const FMA: bool>(acc: &[f32], out: &mut [u8]) {
    for (o, &t) in out.iter_mut().zip(acc) {
        // `round` (half away from zero) has no vector instruction; for t >= 0 it is the integer part plus
        // one when the (exactly computed) fraction is at least a half. NaN (never produced) becomes 0.
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 255.0) };
        let i = t.trunc();
        let r = i + if t - i >= 0.5 { 1.0 } else { 0.0 };
        // SAFETY: r is finite and in 0..=255 (NaN replaced, clamped above), so the conversion is exact. (The checked
        // `as` casts are not vectorised: they cost more than the whole horizontal pass.)
        *o = unsafe { r.to_int_unchecked::<u8>() };
    }
}

// Multiply then add, never fused (`FMA` is unused): `imageops` rounds the product before the sum.
multiversion!(fn vertical_tap => vertical_tap_body(row: &[u8], wy: f32, col: &mut [f32]));
multiversion!(fn horizontal_tap => horizontal_tap_body(
    col: &[f32],
    idx: &[u32],
    wts: &[f32],
    acc: &mut [f32],
));
multiversion!(fn to_bytes => to_bytes_body(acc: &[f32], out: &mut [u8]));

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte as `imageops::resize` gives it: halving (the 720p camera case), odd factors, growing, one
    /// axis only, down to a single pixel.
    #[test]
    fn identical_to_imageops_triangle() {
        let (w, h) = (97, 61);
        let mut s = 12345u32;
        let img = RgbImage::from_fn(w, h, |x, y| {
            s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let noise = (s >> 16) as u8;
            image::Rgb([
                noise,
                (x * 2 + y) as u8,
                if (x / 7 + y / 5) % 2 == 0 { 250 } else { 3 },
            ])
        });
        for (nw, nh) in [
            (48, 30),
            (33, 17),
            (97, 20),
            (40, 61),
            (150, 90),
            (1, 1),
            (5, 61),
        ] {
            let want = imageops::resize(&img, nw, nh, imageops::FilterType::Triangle);
            let got = resize_triangle(&img, nw, nh);
            assert_eq!(got.dimensions(), (nw, nh));
            assert!(got == want, "{w}x{h} -> {nw}x{nh} differs");
        }
        // Exact halving (weights 1/8, 3/8): sums of integers in eighths, so many exact halves to round.
        let even = imageops::crop_imm(&img, 0, 0, 96, 60).to_image();
        let want = imageops::resize(&even, 48, 30, imageops::FilterType::Triangle);
        assert!(
            resize_triangle(&even, 48, 30) == want,
            "96x60 -> 48x30 differs"
        );
    }
}
