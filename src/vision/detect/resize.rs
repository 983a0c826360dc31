//! Triangle-filter (bilinear) resizing of RGB frames: the arithmetic of `image::imageops::resize` with
//! `FilterType::Triangle`, to the bit, but several times faster.
//!
//! The detector scales every frame larger than its input limit down (a 1280x720 camera frame to 640x360).
//! `imageops::resize` took ~8 ms of a ~21 ms detect call for that: it goes through generic per-pixel
//! accessors, a full-size float intermediate image and one thread. Here each output row is made on its own
//! (rows over rayon's pool): the vertical pass sums the source rows into one float row (a plain loop the
//! compiler vectorises), the horizontal pass sums that row's taps per output pixel. Weights, summation
//! order and rounding are those of `imageops` (same f32 formulas, multiply then add, never fused), so the
//! output is identical: the tests compare every byte.

use image::{imageops, RgbImage};
use rayon::prelude::*;

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
    let mut out = vec![0u8; out_len * nh as usize];
    out.par_chunks_mut(out_len)
        .zip(yt.par_iter())
        .with_min_len(8)
        .for_each_init(
            || vec![0f32; row_len],
            |col, (orow, ty)| {
                // Vertical: this output row's weighted sum of source rows, every channel of every column.
                col.fill(0.0);
                for (i, &wy) in ty.weights.iter().enumerate() {
                    let srow = &src[(ty.first + i) * row_len..][..row_len];
                    for (c, &v) in col.iter_mut().zip(srow) {
                        *c += f32::from(v) * wy;
                    }
                }
                // Horizontal: each output pixel's weighted sum of that row's columns, rounded to a byte.
                for (px, tx) in orow.chunks_exact_mut(3).zip(&xt) {
                    let mut t = [0f32; 3];
                    for (i, &wx) in tx.weights.iter().enumerate() {
                        let p = &col[3 * (tx.first + i)..][..3];
                        for (t, &v) in t.iter_mut().zip(p) {
                            *t += v * wx;
                        }
                    }
                    for (o, t) in px.iter_mut().zip(t) {
                        *o = t.clamp(0.0, 255.0).round() as u8;
                    }
                }
            },
        );
    RgbImage::from_raw(nw, nh, out).expect("buffer sized for nw x nh")
}

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
    }
}
