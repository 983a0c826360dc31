//! The demo's pictures: the two bundled public-domain portraits (compiled in, see `demo/NOTICE`) and the
//! camera frames synthesised from them while the demo runs.
//!
//! A still photo pasted on a flat background looks like a print held up to the camera (a hard rectangular
//! edge), and the anti-spoof network says so. So a person "in the room" is the portrait with its own edge
//! colours stretched out to fill the frame and blurred (a soft, out-of-focus room around them) and its border
//! feathered into it. The phone spoof is the same portrait small, on a bright screen with a dark bezel and a
//! faint moire, the way a phone held up to a door camera looks. Every scene is drawn once on a canvas a little
//! larger than the frame; frames are windows of it at a slowly wandering offset: a hand-held camera, so the
//! tracker sees motion and no two frames are identical.

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

use super::DemoError;

/// Frame size of the simulated camera.
pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 480;
/// How far the camera wanders from the centre, pixels.
const MARGIN: u32 = 8;

const ASTRONAUT_JPG: &[u8] = include_bytes!("../../demo/media/astronaut.jpg");
const HOPPER_PNG: &[u8] = include_bytes!("../../demo/media/hopper.png");

/// The people in the bundled media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// Eileen Collins (NASA portrait): enrolled as a resident.
    Collins,
    /// Grace Hopper (US Navy portrait): never enrolled, a visitor.
    Hopper,
}

impl Who {
    pub fn name(self) -> &'static str {
        match self {
            Who::Collins => "Eileen Collins",
            Who::Hopper => "Grace Hopper",
        }
    }
}

/// What the camera looks at during a step of the scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shot {
    /// The hallway with nobody in it.
    Empty,
    /// The person stands in front of the camera.
    Live(Who),
    /// Someone holds up a phone showing the person's photo.
    Phone(Who),
}

/// The decoded portraits.
pub struct Media {
    collins: RgbImage,
    hopper: RgbImage,
}

impl Media {
    pub fn load() -> Result<Media, DemoError> {
        let decode = |bytes: &[u8], name: &str| {
            image::load_from_memory(bytes)
                .map(|i| i.to_rgb8())
                .map_err(|e| DemoError::Media(format!("bundled {name}: {e}")))
        };
        Ok(Media {
            collins: decode(ASTRONAUT_JPG, "astronaut.jpg")?,
            hopper: decode(HOPPER_PNG, "hopper.png")?,
        })
    }

    pub fn portrait(&self, who: Who) -> &RgbImage {
        match who {
            Who::Collins => &self.collins,
            Who::Hopper => &self.hopper,
        }
    }

    /// The enrollment photos: the portrait itself and a few variants (exposure, framing), as a person would
    /// upload a handful of pictures.
    pub fn enrollment_variants(&self, who: Who) -> Vec<(String, RgbImage)> {
        let p = self.portrait(who);
        let (w, h) = p.dimensions();
        let crop = imageops::crop_imm(p, w / 20, h / 40, w - w / 10, h - h / 10).to_image();
        vec![
            ("portrait".into(), p.clone()),
            ("portrait, darker".into(), exposure(p, 0.85, -5.0)),
            ("portrait, brighter".into(), exposure(p, 1.1, 10.0)),
            ("portrait, closer".into(), crop),
            ("portrait in the hallway".into(), room(p, 440)),
        ]
    }

    /// The whole canvas for a shot; [`frame`] cuts camera frames out of it.
    pub fn canvas(&self, shot: Shot) -> RgbImage {
        match shot {
            Shot::Empty => hallway(),
            // Sizes where each portrait's face is large and passes as live (measured with the anti-spoof
            // network: Collins at 440 px scores 0.79-0.96, Hopper's 128 px original at 320 px 0.72-0.84).
            Shot::Live(Who::Collins) => room(&self.collins, 440),
            Shot::Live(Who::Hopper) => room(&self.hopper, 320),
            Shot::Phone(who) => phone(self.portrait(who)),
        }
    }
}

/// Frame `i` of a shot: a window of the canvas at the camera's current offset (a slow, smooth wander).
pub fn frame(canvas: &RgbImage, i: u64) -> RgbImage {
    let t = i as f32;
    let m = MARGIN as f32;
    let dx = m + (m - 2.0) * (0.7 * t).sin();
    let dy = m + (m / 2.0) * (0.45 * t + 1.0).sin();
    imageops::crop_imm(canvas, dx.round() as u32, dy.round() as u32, WIDTH, HEIGHT).to_image()
}

fn canvas_size() -> (u32, u32) {
    (WIDTH + 2 * MARGIN, HEIGHT + 2 * MARGIN)
}

fn exposure(img: &RgbImage, gain: f32, offset: f32) -> RgbImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        for c in p.0.iter_mut() {
            *c = (*c as f32 * gain + offset).clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// A plain hallway: a wall in a vertical gradient and a darker door frame, no face anywhere.
fn hallway() -> RgbImage {
    let (w, h) = canvas_size();
    RgbImage::from_fn(w, h, |x, y| {
        let g = 150.0 + 40.0 * (y as f32 / h as f32);
        let door = (200..440).contains(&x) && y > 60;
        let frame_edge = door && ((200..214).contains(&x) || (426..440).contains(&x) || y < 74);
        let v = if frame_edge {
            g * 0.45
        } else if door {
            g * 0.8
        } else {
            g
        };
        Rgb([v as u8, (v * 0.96) as u8, (v * 0.9) as u8])
    })
}

/// The portrait scaled to `size` px, centred, its edge colours stretched to the canvas and blurred, its
/// border feathered over 30 px into that background.
fn room(portrait: &RgbImage, size: u32) -> RgbImage {
    let p = imageops::resize(portrait, size, size, FilterType::CatmullRom);
    let (w, h) = canvas_size();
    let (x0, y0) = ((w as i64 - size as i64) / 2, (h as i64 - size as i64) / 2);
    let last = size as i64 - 1;
    let stretched = RgbImage::from_fn(w, h, |x, y| {
        let px = (x as i64 - x0).clamp(0, last) as u32;
        let py = (y as i64 - y0).clamp(0, last) as u32;
        *p.get_pixel(px, py)
    });
    let mut out = imageops::fast_blur(&stretched, 8.0);
    const FEATHER: f32 = 30.0;
    for (x, y, px) in p.enumerate_pixels() {
        let edge = x.min(y).min(size - 1 - x).min(size - 1 - y) as f32;
        let a = (edge / FEATHER).min(1.0);
        let (cx, cy) = (x as i64 + x0, y as i64 + y0);
        if cx < 0 || cy < 0 || cx >= w as i64 || cy >= h as i64 {
            continue;
        }
        let o = out.get_pixel_mut(cx as u32, cy as u32);
        for c in 0..3 {
            o.0[c] = (px.0[c] as f32 * a + o.0[c] as f32 * (1.0 - a)).round() as u8;
        }
    }
    out
}

/// A phone held up to the camera: bright surroundings, a dark bezel, the portrait on the screen slightly
/// washed out with a faint moire (the screen's pixel grid beating against the camera's).
fn phone(portrait: &RgbImage) -> RgbImage {
    let (w, h) = canvas_size();
    let mut out = RgbImage::from_pixel(w, h, Rgb([200, 200, 200]));
    let (bx, by) = (170 + MARGIN, 90 + MARGIN);
    for y in by..by + 300 {
        for x in bx..bx + 300 {
            out.put_pixel(x, y, Rgb([15, 15, 15]));
        }
    }
    let screen = imageops::resize(portrait, 260, 260, FilterType::Triangle);
    for (x, y, px) in screen.enumerate_pixels() {
        let moire = 10.0 * (x as f32 * 1.3).sin();
        let v =
            px.0.map(|c| (c as f32 * 0.8 + 30.0 + moire).clamp(0.0, 255.0) as u8);
        out.put_pixel(bx + 20 + x, by + 20 + y, Rgb(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shot_gives_camera_frames_that_move() {
        let media = Media::load().unwrap();
        for shot in [
            Shot::Empty,
            Shot::Live(Who::Collins),
            Shot::Live(Who::Hopper),
            Shot::Phone(Who::Collins),
        ] {
            let canvas = media.canvas(shot);
            let frames: Vec<RgbImage> = (0..40).map(|i| frame(&canvas, i)).collect();
            for f in &frames {
                assert_eq!(f.dimensions(), (WIDTH, HEIGHT));
            }
            // Never three identical frames in a row: the pipeline would call that a frozen (still) image.
            for w in frames.windows(3) {
                assert!(w[0] != w[1] || w[1] != w[2], "{shot:?}: camera stood still");
            }
        }
    }

    #[test]
    fn enrollment_variants_are_distinct_pictures_of_the_person() {
        let media = Media::load().unwrap();
        let v = media.enrollment_variants(Who::Collins);
        assert_eq!(v.len(), 5);
        assert_eq!(v[0].1.dimensions(), (512, 512));
        assert!(v.windows(2).all(|w| w[0].1 != w[1].1));
    }
}
