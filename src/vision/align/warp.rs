//! Cutting a square chip out of an image along a similarity transform, sampled the way dlib's
//! `extract_image_chip` samples, so our chips match dlib's pixel for pixel where dlib does not downsample.
//!
//! dlib turns the fitted transform into a rectangle centred on the chip centre's image position, `size * s`
//! wide but with corners at `±(size * s - 1) / 2` (its `centered_drect`), and maps chip pixels 0 and size-1
//! onto those corners. So chip pixel `q` samples template coordinate `size/2 + (q - (size-1)/2) * k`,
//! `k = (size * s - 1) / ((size - 1) * s)`, not plainly `q`: half a pixel and up to ~0.7% of scale apart.
//! Pixels are interpolated bilinearly in f64 and truncated to u8 (as dlib's `assign_pixel` does); a pixel
//! whose 2x2 neighbourhood is not fully inside the image is 0.

use image::{Rgb, RgbImage};

use super::similarity::Similarity;

/// The chip of `size` x `size` pixels whose template coordinates map into `img` through `chip_to_image`.
pub fn extract(img: &RgbImage, chip_to_image: &Similarity, size: u32) -> RgbImage {
    let mut out = RgbImage::new(size, size);
    let s = chip_to_image.scale();
    let n = size as f64;
    if size < 2 || !s.is_finite() || s <= 0.0 {
        return out;
    }
    let k = (n * s - 1.0) / ((n - 1.0) * s);
    let coord = |q: u32| n / 2.0 + (q as f64 - (n - 1.0) / 2.0) * k;
    for row in 0..size {
        let v = coord(row);
        for col in 0..size {
            let p = chip_to_image.apply([coord(col), v]);
            out.put_pixel(col, row, bilinear(img, p[0], p[1]));
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
        let nan = Similarity { a: f64::NAN, ..t };
        assert!(extract(&img, &nan, 20).pixels().all(|p| p.0 == [0, 0, 0]));
    }
}
