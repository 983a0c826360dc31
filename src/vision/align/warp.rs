//! Cutting a square chip out of an image along a similarity transform, sampled the way dlib's
//! `extract_image_chip` samples, so our chips match dlib's pixel for pixel (the ResNet was trained on those).
//!
//! dlib's rules, reproduced here and checked against `dlib.get_face_chip` (identical up to a rare ±1):
//! - The fitted transform becomes a rectangle centred on the chip centre's image position whose corners are
//!   `±(size * s - 1) / 2` away (dlib rectangles count pixels inclusively); chip pixels 0 and size-1 map onto
//!   those corners. So chip pixel `q` samples template coordinate `size/2 + (q - (size-1)/2) * k` with
//!   `k = (size * s - 1) / ((size - 1) * s)`: half a pixel and up to ~0.7% of scale away from plain `q`.
//! - A face much larger than the chip is not sampled directly (bilinear sampling would alias): dlib halves
//!   the image with its `pyramid_down<2>` ([`pyramid_down`]) while the rectangle still covers more pixels
//!   than the chip has, then samples the last such level. Skipping this moved embeddings by up to ~0.09 on
//!   faces 2x the chip size.
//! - Bilinear interpolation in f64, truncated to u8 (dlib's `assign_pixel`); a pixel whose 2x2 neighbourhood
//!   is not fully inside the (level) image is 0.

use image::{Rgb, RgbImage};

use super::similarity::Similarity;

/// The chip of `size` x `size` pixels whose template coordinates map into `img` through `chip_to_image`.
pub fn extract(img: &RgbImage, chip_to_image: &Similarity, size: u32) -> RgbImage {
    let mut out = RgbImage::new(size, size);
    let t = chip_to_image;
    let (s, angle) = (t.scale(), t.angle());
    let n = size as f64;
    if size < 2 || !(s.is_finite() && s > 0.0 && t.tx.is_finite() && t.ty.is_finite()) {
        return out;
    }
    let centre = t.apply([n / 2.0, n / 2.0]);
    let half = (n * s - 1.0) / 2.0;
    let mut rect = Rect {
        tl: [centre[0] - half, centre[1] - half],
        br: [centre[0] + half, centre[1] + half],
    };
    // Pyramid depth: how many halvings still leave more pixels than the chip has.
    let (mut depth, mut grow, mut r) = (0, 2.0, rect.down());
    while r.area() > n * n {
        r = r.down();
        depth += 1;
        grow = grow * 2.0 + 2.0;
    }
    let mut source = None;
    if depth > 0 {
        // dlib builds the pyramid from the rectangle's surroundings only (its rotated corners plus a margin
        // that covers the filter), an integer window of the image; coordinates follow that window.
        let corners = rect.corners(angle);
        let lo = |i: usize| corners.iter().map(|c| c[i]).fold(f64::INFINITY, f64::min) - grow;
        let hi = |i: usize| {
            corners
                .iter()
                .map(|c| c[i])
                .fold(f64::NEG_INFINITY, f64::max)
                + grow
        };
        let round = |v: f64| (v + 0.5).floor();
        let x0 = round(lo(0)).max(0.0);
        let y0 = round(lo(1)).max(0.0);
        let x1 = round(hi(0)).min(img.width() as f64 - 1.0);
        let y1 = round(hi(1)).min(img.height() as f64 - 1.0);
        if x1 < x0 || y1 < y0 {
            return out;
        }
        let (x0, y0) = (x0 as u32, y0 as u32);
        let window = image::imageops::crop_imm(img, x0, y0, x1 as u32 - x0 + 1, y1 as u32 - y0 + 1)
            .to_image();
        let mut level = window;
        rect = rect.translate(-(x0 as f64), -(y0 as f64));
        for _ in 0..depth {
            if level.width() < 5 || level.height() < 5 {
                return out;
            }
            level = pyramid_down(&level);
            rect = rect.down();
        }
        source = Some(level);
    }
    let src = source.as_ref().unwrap_or(img);
    let [p0, p1, _, p2] = rect.corners(angle);
    let step = n - 1.0;
    let ux = [(p1[0] - p0[0]) / step, (p1[1] - p0[1]) / step];
    let uy = [(p2[0] - p0[0]) / step, (p2[1] - p0[1]) / step];
    for row in 0..size {
        for col in 0..size {
            let (c, r) = (col as f64, row as f64);
            let x = p0[0] + ux[0] * c + uy[0] * r;
            let y = p0[1] + ux[1] * c + uy[1] * r;
            out.put_pixel(col, row, bilinear(src, x, y));
        }
    }
    out
}

/// An axis-aligned rectangle in dlib's convention (inclusive: width = right - left + 1).
#[derive(Clone, Copy, Debug)]
struct Rect {
    tl: [f64; 2],
    br: [f64; 2],
}

impl Rect {
    fn area(&self) -> f64 {
        (self.br[0] - self.tl[0] + 1.0) * (self.br[1] - self.tl[1] + 1.0)
    }

    /// The rectangle in the next pyramid level: dlib's `pyramid_down<2>::point_down`, `p / 2 - (1.25, 0.75)`.
    fn down(&self) -> Rect {
        let d = |p: [f64; 2]| [p[0] / 2.0 - 1.25, p[1] / 2.0 - 0.75];
        Rect {
            tl: d(self.tl),
            br: d(self.br),
        }
    }

    fn translate(&self, dx: f64, dy: f64) -> Rect {
        Rect {
            tl: [self.tl[0] + dx, self.tl[1] + dy],
            br: [self.br[0] + dx, self.br[1] + dy],
        }
    }

    /// Top-left, top-right, bottom-right, bottom-left, rotated by `angle` about the centre.
    fn corners(&self, angle: f64) -> [[f64; 2]; 4] {
        let c = [
            (self.tl[0] + self.br[0]) / 2.0,
            (self.tl[1] + self.br[1]) / 2.0,
        ];
        let (sin, cos) = angle.sin_cos();
        let rot = |p: [f64; 2]| {
            let (dx, dy) = (p[0] - c[0], p[1] - c[1]);
            [c[0] + cos * dx - sin * dy, c[1] + sin * dx + cos * dy]
        };
        [
            rot(self.tl),
            rot([self.br[0], self.tl[1]]),
            rot(self.br),
            rot([self.tl[0], self.br[1]]),
        ]
    }
}

/// dlib's `pyramid_down<2>` on RGB: separable [1 4 6 4 1] filter, every second pixel, integer sums divided by
/// 256 with truncation. Output pixel `o` is centred on input `2o + 2`; the output is `(n - 3) / 2` pixels
/// wide (needs n >= 5).
pub fn pyramid_down(img: &RgbImage) -> RgbImage {
    const W: [u32; 5] = [1, 4, 6, 4, 1];
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (ow, oh) = (w.saturating_sub(3) / 2, h.saturating_sub(3) / 2);
    let src = img.as_raw();
    // Horizontal pass: every input row, every output column.
    let mut horiz = vec![0u32; h * ow * 3];
    for y in 0..h {
        let row = &src[y * w * 3..(y + 1) * w * 3];
        for o in 0..ow {
            for c in 0..3 {
                horiz[(y * ow + o) * 3 + c] =
                    (0..5).map(|k| W[k] * row[(2 * o + k) * 3 + c] as u32).sum();
            }
        }
    }
    let mut out = RgbImage::new(ow as u32, oh as u32);
    let dst: &mut [u8] = &mut out;
    for o in 0..oh {
        for x in 0..ow * 3 {
            let sum: u32 = (0..5).map(|k| W[k] * horiz[(2 * o + k) * ow * 3 + x]).sum();
            dst[o * ow * 3 + x] = (sum >> 8) as u8;
        }
    }
    out
}

/// Bilinear sample at (x, y) (pixel centres at integers); 0 unless all four neighbours are in the image.
fn bilinear(img: &RgbImage, x: f64, y: f64) -> Rgb<u8> {
    let (w, h) = (img.width() as f64, img.height() as f64);
    let (x0, y0) = (x.floor(), y.floor());
    // Also rejects NaN: every comparison with NaN is false.
    if !(x0 >= 0.0 && y0 >= 0.0 && x0 + 1.0 < w && y0 + 1.0 < h) {
        return Rgb([0, 0, 0]);
    }
    let (fx, fy) = (x - x0, y - y0);
    let (xi, yi) = (x0 as u32, y0 as u32);
    let tl = img.get_pixel(xi, yi).0;
    let tr = img.get_pixel(xi + 1, yi).0;
    let bl = img.get_pixel(xi, yi + 1).0;
    let br = img.get_pixel(xi + 1, yi + 1).0;
    let mut px = [0u8; 3];
    for c in 0..3 {
        let top = tl[c] as f64 * (1.0 - fx) + tr[c] as f64 * fx;
        let bottom = bl[c] as f64 * (1.0 - fx) + br[c] as f64 * fx;
        // Truncation, like dlib: keeps our chips identical to its chips.
        px[c] = (top * (1.0 - fy) + bottom * fy).clamp(0.0, 255.0) as u8;
    }
    Rgb(px)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| Rgb([x as u8, y as u8, (x + y) as u8]))
    }

    #[test]
    fn unit_scale_maps_chip_pixel_q_to_q_plus_half_then_offset() {
        // With s = 1, k = 1 and chip pixel q samples template q + 0.5, i.e. image q + 0.5 + t.
        let img = gradient(200, 200);
        let t = Similarity {
            a: 1.0,
            b: 0.0,
            tx: 10.0,
            ty: 20.0,
        };
        let chip = extract(&img, &t, 50);
        // x = q + 10.5 -> interpolates x0 = q+10 and q+11 half and half, truncated: q + 10.
        assert_eq!(chip.get_pixel(0, 0).0, [10, 20, 31]);
        assert_eq!(chip.get_pixel(49, 3).0, [59, 23, 83]);
    }

    #[test]
    fn outside_the_image_is_black() {
        let img = gradient(40, 40);
        let t = Similarity {
            a: 1.0,
            b: 0.0,
            tx: 30.0,
            ty: 0.0,
        };
        let chip = extract(&img, &t, 20);
        // Column 8 samples x = 38.5 (inside), column 9 x = 39.5 (right neighbour off the image).
        assert_ne!(chip.get_pixel(8, 5).0, [0, 0, 0]);
        assert_eq!(chip.get_pixel(9, 5).0, [0, 0, 0]);
        for bad in [f64::NAN, f64::INFINITY, 0.0] {
            let t = Similarity { a: bad, ..t };
            assert!(extract(&img, &t, 20).pixels().all(|p| p.0 == [0, 0, 0]));
        }
        // Far outside, large enough to take the pyramid path: black, no panic.
        let far = Similarity {
            a: 8.0,
            b: 0.0,
            tx: 1e5,
            ty: -1e5,
        };
        assert!(extract(&img, &far, 20).pixels().all(|p| p.0 == [0, 0, 0]));
    }

    #[test]
    fn pyramid_down_is_dlibs_filter() {
        // An impulse of 255 spreads as (1 4 6 4 1)^2 / 256, truncated; output o is centred on input 2o + 2.
        let mut img = RgbImage::new(40, 41);
        img.put_pixel(20, 20, Rgb([255, 255, 255]));
        let out = pyramid_down(&img);
        assert_eq!(out.dimensions(), (18, 19));
        assert_eq!(out.get_pixel(9, 9).0[0], 35); // 255 * 36 / 256
        assert_eq!(out.get_pixel(8, 9).0[0], 5); // 255 * 6 / 256
        assert_eq!(out.get_pixel(8, 8).0[0], 0); // 255 * 1 / 256
        let flat = pyramid_down(&RgbImage::from_pixel(9, 9, Rgb([200, 100, 7])));
        assert!(flat.pixels().all(|p| p.0 == [200, 100, 7]));
    }

    #[test]
    fn large_faces_go_through_the_pyramid() {
        // A face 4x the chip: sampling a flat image gives the flat colour either way, but the chip must not
        // be black (the pyramid window and level coordinates line up).
        let img = RgbImage::from_pixel(1000, 1000, Rgb([50, 60, 70]));
        let t = Similarity {
            a: 4.0 * 0.2f64.cos(),
            b: 4.0 * 0.2f64.sin(),
            tx: 200.0,
            ty: 100.0,
        };
        let chip = extract(&img, &t, 150);
        assert_eq!(chip.get_pixel(75, 75).0, [50, 60, 70]);
        assert_eq!(chip.get_pixel(3, 146).0, [50, 60, 70]);
    }
}
