//! Pixel formats cameras deliver, converted to RGB.

use image::RgbImage;

/// Converts packed YUYV (YUV 4:2:2, bytes `Y0 U Y1 V` per two pixels, `stride` bytes per row) to RGB with
/// the BT.601 limited-range matrix webcams use (Y 16..235, U/V 16..240).
///
/// Fixed-point with 8 fractional bits: exact to within 1 of the floating-point formula, and fast enough for
/// 640x480 at camera rates on one core.
pub fn yuyv_to_rgb(data: &[u8], width: u32, height: u32, stride: u32) -> Result<RgbImage, String> {
    if width == 0 || height == 0 || width % 2 != 0 {
        return Err(format!(
            "YUYV frame of {width}x{height}: the width must be even and nothing may be 0"
        ));
    }
    let (w, h, stride) = (width as usize, height as usize, stride as usize);
    if stride < 2 * w {
        return Err(format!(
            "YUYV stride of {stride} bytes is less than 2 x width {w}"
        ));
    }
    let need = stride * (h - 1) + 2 * w;
    if data.len() < need {
        return Err(format!(
            "YUYV frame of {} bytes is too short for {width}x{height} (stride {stride}): {need} bytes needed",
            data.len()
        ));
    }
    let mut out = vec![0u8; w * h * 3];
    for (row, dst) in out.chunks_exact_mut(w * 3).enumerate() {
        let src = &data[row * stride..row * stride + 2 * w];
        for (quad, px) in src.chunks_exact(4).zip(dst.chunks_exact_mut(6)) {
            let (u, v) = (i32::from(quad[1]) - 128, i32::from(quad[3]) - 128);
            // 1.596, 0.392, 0.813, 2.017 scaled by 256.
            let (rv, gu, gv, bu) = (409 * v, -100 * u, -208 * v, 516 * u);
            for (y, rgb) in [quad[0], quad[2]].into_iter().zip(px.chunks_exact_mut(3)) {
                // 1.164 * (Y - 16) scaled by 256, plus 128 to round.
                let c = 298 * (i32::from(y) - 16) + 128;
                rgb[0] = ((c + rv) >> 8).clamp(0, 255) as u8;
                rgb[1] = ((c + gu + gv) >> 8).clamp(0, 255) as u8;
                rgb[2] = ((c + bu) >> 8).clamp(0, 255) as u8;
            }
        }
    }
    RgbImage::from_raw(width, height, out)
        .ok_or_else(|| "YUYV conversion size mismatch".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The floating-point BT.601 limited-range formula, the reference.
    fn reference(y: u8, u: u8, v: u8) -> [f64; 3] {
        let (c, d, e) = (
            f64::from(y) - 16.0,
            f64::from(u) - 128.0,
            f64::from(v) - 128.0,
        );
        [
            1.164 * c + 1.596 * e,
            1.164 * c - 0.392 * d - 0.813 * e,
            1.164 * c + 2.017 * d,
        ]
        .map(|x| x.clamp(0.0, 255.0))
    }

    #[test]
    fn matches_the_bt601_formula_within_one_level() {
        let mut worst: f64 = 0.0;
        for y in (0..=255u8).step_by(5) {
            for u in (0..=255u8).step_by(15) {
                for v in (0..=255u8).step_by(15) {
                    let rgb = yuyv_to_rgb(&[y, u, y, v], 2, 1, 4).unwrap();
                    for px in rgb.pixels() {
                        for (got, want) in px.0.iter().zip(reference(y, u, v)) {
                            worst = worst.max((f64::from(*got) - want).abs());
                        }
                    }
                }
            }
        }
        assert!(worst <= 1.0, "worst difference {worst}");
        // Studio black and white, and the stride padding is skipped.
        let img =
            yuyv_to_rgb(&[16, 128, 235, 128, 9, 9, 16, 128, 235, 128, 9, 9], 2, 2, 6).unwrap();
        assert_eq!(
            img.as_raw(),
            &[0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255]
        );
    }

    #[test]
    fn wrong_sizes_are_errors() {
        assert_eq!(
            yuyv_to_rgb(&[0; 7], 2, 2, 4).unwrap_err(),
            "YUYV frame of 7 bytes is too short for 2x2 (stride 4): 8 bytes needed"
        );
        assert_eq!(
            yuyv_to_rgb(&[0; 8], 3, 1, 8).unwrap_err(),
            "YUYV frame of 3x1: the width must be even and nothing may be 0"
        );
        assert_eq!(
            yuyv_to_rgb(&[0; 8], 2, 1, 2).unwrap_err(),
            "YUYV stride of 2 bytes is less than 2 x width 2"
        );
    }
}
