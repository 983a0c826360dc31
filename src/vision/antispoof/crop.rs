//! The face crops MiniFASNet was trained on: Silent-Face's `CropImage`, reproduced exactly.
//!
//! The face box is enlarged `scale` times around its centre (the scale shrinks if the image is too small),
//! shifted (not clipped) to lie inside the image, and the pixels it covers are resized to 80x80 with
//! bilinear interpolation (pixel centres at +0.5, no antialiasing: what `cv2.resize` does and what the
//! models saw in training). All arithmetic is f64 in a fixed order so that
//! `tests/fixtures/antispoof/make_reference.py` produces bit-identical crops.

use image::RgbImage;

use crate::vision::{BBox, Result, VisionError};

/// Side of the square network input.
pub const INPUT_SIZE: u32 = 80;

/// The inclusive pixel rectangle `[left, top, right, bottom]` the crop is taken from: Silent-Face's
/// `_get_new_box`, including its quirk of truncating (not rounding) the corners.
pub fn crop_rect(width: u32, height: u32, bbox: &BBox, scale: f64) -> Result<[u32; 4]> {
    let (x, y, w, h) = (
        f64::from(bbox.x),
        f64::from(bbox.y),
        f64::from(bbox.w),
        f64::from(bbox.h),
    );
    if width == 0 || height == 0 {
        return Err(VisionError::BadInput("empty image".into()));
    }
    if ![x, y, w, h].iter().all(|v| v.is_finite()) || w <= 0.0 || h <= 0.0 {
        return Err(VisionError::BadInput(format!(
            "face box {bbox:?} is not a proper box"
        )));
    }
    let (sw, sh) = (f64::from(width), f64::from(height));
    let scale = ((sh - 1.0) / h).min(((sw - 1.0) / w).min(scale));
    let (nw, nh) = (w * scale, h * scale);
    let (cx, cy) = (w / 2.0 + x, h / 2.0 + y);
    let (mut l, mut t, mut r, mut b) = (cx - nw / 2.0, cy - nh / 2.0, cx + nw / 2.0, cy + nh / 2.0);
    if l < 0.0 {
        r -= l;
        l = 0.0;
    }
    if t < 0.0 {
        b -= t;
        t = 0.0;
    }
    if r > sw - 1.0 {
        l -= r - sw + 1.0;
        r = sw - 1.0;
    }
    if b > sh - 1.0 {
        t -= b - sh + 1.0;
        b = sh - 1.0;
    }
    // `as` truncates toward zero like Python's int(); the clamps only guard against rounding noise.
    let clamp = |v: f64, max: u32| (v.max(0.0) as u32).min(max);
    let (l, t) = (clamp(l, width - 1), clamp(t, height - 1));
    let (r, b) = (clamp(r, width - 1).max(l), clamp(b, height - 1).max(t));
    Ok([l, t, r, b])
}

/// Source index pair and weight of the second one for each output position along one axis.
fn axis(n_src: u32) -> Vec<(usize, usize, f64)> {
    let n = f64::from(n_src);
    (0..INPUT_SIZE)
        .map(|o| {
            let s = ((f64::from(o) + 0.5) * n) / f64::from(INPUT_SIZE) - 0.5;
            let s = s.clamp(0.0, n - 1.0);
            let i0 = s.floor();
            let f = s - i0;
            let i0 = i0 as usize;
            (i0, (i0 + 1).min(n_src as usize - 1), f)
        })
        .collect()
}

/// The 80x80 crop around a face for a model trained with `scale` (2.7 for V2, 4.0 for V1SE).
pub fn crop_face(img: &RgbImage, bbox: &BBox, scale: f64) -> Result<RgbImage> {
    let [l, t, r, b] = crop_rect(img.width(), img.height(), bbox, scale)?;
    let xs = axis(r - l + 1);
    let ys = axis(b - t + 1);
    let px = |x: usize, y: usize, c: usize| f64::from(img.get_pixel(l + x as u32, t + y as u32)[c]);
    let mut out = RgbImage::new(INPUT_SIZE, INPUT_SIZE);
    for (oy, &(y0, y1, fy)) in ys.iter().enumerate() {
        for (ox, &(x0, x1, fx)) in xs.iter().enumerate() {
            let mut rgb = [0u8; 3];
            for (c, v) in rgb.iter_mut().enumerate() {
                let top = (1.0 - fx) * px(x0, y0, c) + fx * px(x1, y0, c);
                let bottom = (1.0 - fx) * px(x0, y1, c) + fx * px(x1, y1, c);
                let val = (1.0 - fy) * top + fy * bottom;
                *v = (val + 0.5).floor().clamp(0.0, 255.0) as u8;
            }
            out.put_pixel(ox as u32, oy as u32, image::Rgb(rgb));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bbox(x: f32, y: f32, w: f32, h: f32) -> BBox {
        BBox { x, y, w, h }
    }

    #[test]
    fn box_is_enlarged_around_its_centre() {
        // 20x20 box centred at (100, 100), 2.7x -> 54x54 from 73 to 127.
        assert_eq!(
            crop_rect(640, 480, &bbox(90.0, 90.0, 20.0, 20.0), 2.7).unwrap(),
            [73, 73, 127, 127]
        );
    }

    #[test]
    fn box_is_shifted_into_the_image_and_shrunk_when_too_big() {
        // Near the top-left corner: shifted right/down, size kept.
        assert_eq!(
            crop_rect(640, 480, &bbox(0.0, 0.0, 20.0, 20.0), 4.0).unwrap(),
            [0, 0, 80, 80]
        );
        // Larger than the image: scale limited to (479 / 200), the whole height used.
        let [_, t, _, b] = crop_rect(640, 480, &bbox(200.0, 100.0, 200.0, 200.0), 4.0).unwrap();
        assert_eq!((t, b), (0, 479));
    }

    #[test]
    fn bad_boxes_are_errors_not_panics() {
        for b in [
            bbox(0.0, 0.0, 0.0, 10.0),
            bbox(f32::NAN, 0.0, 10.0, 10.0),
            bbox(0.0, 0.0, -5.0, 10.0),
        ] {
            assert!(crop_rect(100, 100, &b, 2.7).is_err());
        }
        assert!(crop_rect(0, 0, &bbox(0.0, 0.0, 5.0, 5.0), 2.7).is_err());
        // Far outside the image still gives a valid rectangle inside it.
        let [l, t, r, b] = crop_rect(100, 80, &bbox(5000.0, -900.0, 10.0, 10.0), 2.7).unwrap();
        assert!(l <= r && r < 100 && t <= b && b < 80);
    }

    #[test]
    fn one_pixel_image_gives_a_flat_crop() {
        let img = RgbImage::from_pixel(1, 1, image::Rgb([10, 20, 30]));
        let c = crop_face(&img, &bbox(0.0, 0.0, 1.0, 1.0), 2.7).unwrap();
        assert_eq!(c.dimensions(), (80, 80));
        assert!(c.pixels().all(|p| p.0 == [10, 20, 30]));
    }
}
