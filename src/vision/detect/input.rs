//! Getting an image into the shape YuNet wants, and padding tight face crops so the detector sees a face.

use candle_core::{Device, Tensor};
use image::{imageops, Rgb, RgbImage};
use rayon::prelude::*;

use crate::vision::Detection;

/// The network's input: BGR, 0..255 (no normalisation), NCHW, H and W rounded up to multiples of 32 with zeros
/// at the bottom/right (the padding only adds empty border; no coordinate shifts).
pub fn to_input_tensor(img: &RgbImage) -> candle_core::Result<Tensor> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (pw, ph) = (w.div_ceil(32) * 32, h.div_ceil(32) * 32);
    let plane = pw * ph;
    let mut data = vec![0f32; 3 * plane];
    if w > 0 {
        let raw = img.as_raw();
        // One task per output plane (B, G, R): each reads the interleaved RGB rows once, writes contiguously.
        data.par_chunks_mut(plane).enumerate().for_each(|(c, out)| {
            let src = 2 - c;
            for (y, row) in raw.chunks_exact(w * 3).take(h).enumerate() {
                for (o, px) in out[y * pw..y * pw + w].iter_mut().zip(row.chunks_exact(3)) {
                    *o = px[src] as f32;
                }
            }
        });
    }
    Tensor::from_vec(data, (1, 3, ph, pw), &Device::Cpu)
}

/// Resizes `img` to fit within `max_w` x `max_h` (keeping its aspect ratio, bilinear) when it is larger.
/// Returns the image to run on and the factors that map its pixels back to the original's.
pub fn fit_within(img: &RgbImage, max_w: u32, max_h: u32) -> (Option<RgbImage>, [f32; 2]) {
    let (w, h) = img.dimensions();
    if w <= max_w && h <= max_h {
        return (None, [1.0, 1.0]);
    }
    let scale = (max_w as f64 / w as f64).min(max_h as f64 / h as f64);
    let nw = ((w as f64 * scale).round() as u32).clamp(1, max_w);
    let nh = ((h as f64 * scale).round() as u32).clamp(1, max_h);
    let small = super::resize::resize_triangle(img, nw, nh);
    (Some(small), [w as f32 / nw as f32, h as f32 / nh as f32])
}

/// Maps a detection from a scaled image back to the original by per-axis factors and an offset.
pub fn map_back(d: &mut Detection, scale: [f32; 2], offset: [f32; 2]) {
    d.bbox.x = d.bbox.x * scale[0] - offset[0];
    d.bbox.y = d.bbox.y * scale[1] - offset[1];
    d.bbox.w *= scale[0];
    d.bbox.h *= scale[1];
    for p in &mut d.keypoints {
        p[0] = p[0] * scale[0] - offset[0];
        p[1] = p[1] * scale[1] - offset[1];
    }
}

/// Border added on each side of a tight face crop, as a fraction of the crop's width/height.
pub const CROP_BORDER: f32 = 0.5;
/// Colour of that border: black, like the zero padding the network already sees at the bottom/right. On the
/// 133 identity crops black gave the highest worst-case score (0.866) of black / grey / white / mean colour /
/// edge replication at borders of 25-100%; edge replication was the worst (0.674).
pub const CROP_BORDER_COLOUR: Rgb<u8> = Rgb([0, 0, 0]);

/// A tight face crop placed in the middle of a plain border, and where the crop sits in it.
pub struct PaddedCrop {
    pub image: RgbImage,
    /// Top-left corner of the original crop inside `image`.
    pub offset: [u32; 2],
}

impl PaddedCrop {
    /// Moves a detection found in the padded image back into the original crop's pixels.
    pub fn to_crop(&self, mut d: Detection) -> Detection {
        map_back(
            &mut d,
            [1.0, 1.0],
            [self.offset[0] as f32, self.offset[1] as f32],
        );
        d
    }
}

/// Pads a tight face crop (a face filling the image, like an ID photo or a 150 px dataset crop) with a border
/// of [`CROP_BORDER`] of its size on every side in [`CROP_BORDER_COLOUR`]. YuNet was trained on scenes: a face
/// touching all four edges is often missed, the same face with some background around it is not.
pub fn pad_for_detection(img: &RgbImage) -> PaddedCrop {
    let (w, h) = img.dimensions();
    let bx = (w as f32 * CROP_BORDER).round() as u32;
    let by = (h as f32 * CROP_BORDER).round() as u32;
    let mut image = RgbImage::from_pixel(w + 2 * bx, h + 2 * by, CROP_BORDER_COLOUR);
    imageops::replace(&mut image, img, bx as i64, by as i64);
    PaddedCrop {
        image,
        offset: [bx, by],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_bgr_nchw_padded_to_32() {
        let mut img = RgbImage::new(33, 2);
        img.put_pixel(32, 1, Rgb([10, 20, 30]));
        let t = to_input_tensor(&img).unwrap();
        assert_eq!(t.dims(), &[1, 3, 32, 64]);
        let v: Vec<Vec<Vec<f32>>> = t.squeeze(0).unwrap().to_vec3().unwrap();
        assert_eq!([v[0][1][32], v[1][1][32], v[2][1][32]], [30.0, 20.0, 10.0]);
        assert_eq!(v[0][1][33], 0.0);
    }

    #[test]
    fn fit_within_keeps_aspect_and_maps_back() {
        let img = RgbImage::new(1280, 720);
        let (small, scale) = fit_within(&img, 640, 640);
        let small = small.unwrap();
        assert_eq!(small.dimensions(), (640, 360));
        assert_eq!(scale, [2.0, 2.0]);
        assert!(fit_within(&RgbImage::new(640, 480), 640, 640).0.is_none());
    }

    #[test]
    fn padded_crop_maps_back() {
        let img = RgbImage::from_pixel(150, 100, Rgb([1, 2, 3]));
        assert_ne!(CROP_BORDER_COLOUR, Rgb([1, 2, 3]));
        let p = pad_for_detection(&img);
        assert_eq!(p.image.dimensions(), (300, 200));
        assert_eq!(p.offset, [75, 50]);
        assert_eq!(p.image.get_pixel(75, 50), &Rgb([1, 2, 3]));
        assert_eq!(p.image.get_pixel(74, 50), &CROP_BORDER_COLOUR);
        let d = Detection {
            bbox: crate::vision::BBox {
                x: 80.0,
                y: 60.0,
                w: 10.0,
                h: 10.0,
            },
            score: 1.0,
            keypoints: [[75.0, 50.0]; 5],
        };
        let d = p.to_crop(d);
        assert_eq!((d.bbox.x, d.bbox.y, d.bbox.w), (5.0, 10.0, 10.0));
        assert_eq!(d.keypoints[0], [0.0, 0.0]);
    }
}
