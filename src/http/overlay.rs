//! The live-view overlay: a box per face with its name, blink count, liveness and the camera's last decision,
//! drawn onto a copy of the frame and encoded as JPEG.
//!
//! Colours say the state at a glance: green = live and recognised, red = failed liveness, amber = unknown,
//! white = still deciding. Text uses the built-in [`super::font`], scaled with the frame so it stays legible
//! from 320 px to 1920 px wide. Everything is clipped to the frame: a box half outside never panics.

use image::{Rgb, RgbImage};

use super::font::{self, GLYPH_H, GLYPH_W};
use crate::decide::{Decision, Verdict};
use crate::pipeline::FaceInView;

/// JPEG quality of the live view: small enough for several viewers, sharp enough to read the labels.
pub const JPEG_QUALITY: u8 = 80;

const GREEN: Rgb<u8> = Rgb([40, 210, 90]);
const RED: Rgb<u8> = Rgb([235, 50, 45]);
const AMBER: Rgb<u8> = Rgb([255, 185, 0]);
const WHITE: Rgb<u8> = Rgb([245, 245, 245]);

/// What the overlay shows besides the frame itself.
pub struct OverlayInfo<'a> {
    pub camera: &'a str,
    pub frame: u64,
    pub faces: &'a [FaceInView],
    /// The camera's most recent decision and how many seconds ago it was taken.
    pub last_decision: Option<(&'a Decision, f64)>,
}

/// Draw the overlay onto `img` in place.
pub fn draw(img: &mut RgbImage, info: &OverlayInfo) {
    let scale = (img.width() / 320).clamp(1, 4);
    let thick = scale + 1;
    for face in info.faces {
        let colour = face_colour(face);
        let [x, y, w, h] = face.bbox.map(|v| v.round() as i64);
        draw_rect(img, x, y, w, h, thick as i64, colour);
        let mut lines = vec![
            face.person.clone().unwrap_or_else(|| "unknown".into()),
            format!(
                "blinks {}  live {}",
                face.blinks,
                match face.live {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "?",
                },
            ),
        ];
        if let Some((d, _)) = info.last_decision.filter(|(d, _)| d.track_id == face.track) {
            lines.push(verdict_text(&d.verdict).to_string());
        }
        let line_h = line_height(scale) as i64;
        let top = y - line_h * lines.len() as i64 - thick as i64;
        // Above the box when there is room, else inside its top edge.
        let top = if top >= 0 { top } else { y + thick as i64 };
        for (i, line) in lines.iter().enumerate() {
            draw_label(img, x, top + line_h * i as i64, line, scale, colour);
        }
    }
    let header = format!("{}  #{}", info.camera, info.frame);
    draw_label(img, 0, 0, &header, scale, WHITE);
    if let Some((d, ago)) = info.last_decision {
        let who = d.person.as_deref().unwrap_or("unknown");
        let text = format!(
            "last: {} {} ({:.0}s ago)",
            verdict_text(&d.verdict),
            who,
            ago
        );
        let y = img.height() as i64 - line_height(scale) as i64;
        draw_label(img, 0, y, &text, scale, verdict_colour(&d.verdict));
    }
}

/// Copy `frame`, draw the overlay and encode it as JPEG.
pub fn render_jpeg(frame: &RgbImage, info: &OverlayInfo) -> Result<Vec<u8>, String> {
    let mut img = frame.clone();
    draw(&mut img, info);
    let (w, h) = img.dimensions();
    let too_big = || format!("a {w}x{h} frame is larger than JPEG allows (65535 px a side)");
    let (w16, h16) = (
        u16::try_from(w).map_err(|_| too_big())?,
        u16::try_from(h).map_err(|_| too_big())?,
    );
    let mut out = Vec::with_capacity(64 << 10);
    jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY)
        .encode(img.as_raw(), w16, h16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn face_colour(face: &FaceInView) -> Rgb<u8> {
    match (face.live, &face.person) {
        (Some(false), _) => RED,
        (_, None) if face.live.is_some() => AMBER,
        (Some(true), Some(_)) => GREEN,
        _ => WHITE,
    }
}

fn verdict_text(v: &Verdict) -> &'static str {
    v.kind().as_str()
}

fn verdict_colour(v: &Verdict) -> Rgb<u8> {
    match v {
        Verdict::Granted { .. } | Verdict::NotifyOnly => GREEN,
        Verdict::Denied { .. } | Verdict::Spoof => RED,
        Verdict::Unknown => AMBER,
    }
}

/// Height of one text line: the glyph plus one pixel of padding above and below, scaled.
fn line_height(scale: u32) -> u32 {
    (GLYPH_H + 2) * scale
}

/// Width of `text` as [`draw_label`] draws it.
pub fn text_width(text: &str, scale: u32) -> u32 {
    (text.chars().count() as u32 * (GLYPH_W + 1) + 1) * scale
}

/// Text in `colour` on a darkened strip, top-left corner at (x, y).
pub fn draw_label(img: &mut RgbImage, x: i64, y: i64, text: &str, scale: u32, colour: Rgb<u8>) {
    let (w, h) = (text_width(text, scale) as i64, line_height(scale) as i64);
    for py in y.max(0)..(y + h).min(img.height() as i64) {
        for px in x.max(0)..(x + w).min(img.width() as i64) {
            let p = img.get_pixel_mut(px as u32, py as u32);
            p.0 = p.0.map(|c| c / 3);
        }
    }
    let s = scale as i64;
    for (i, c) in text.chars().enumerate() {
        let gx = x + (1 + i as i64 * (GLYPH_W as i64 + 1)) * s;
        for (row, bits) in font::glyph(c).iter().enumerate() {
            for col in 0..GLYPH_W as i64 {
                if bits & (1 << (GLYPH_W as i64 - 1 - col)) != 0 {
                    fill(img, gx + col * s, y + (1 + row as i64) * s, s, s, colour);
                }
            }
        }
    }
}

/// Outline of the box (x, y, w, h), `thick` pixels inside its edge.
fn draw_rect(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, thick: i64, c: Rgb<u8>) {
    let t = thick.min(w.max(1)).min(h.max(1));
    fill(img, x, y, w, t, c);
    fill(img, x, y + h - t, w, t, c);
    fill(img, x, y, t, h, c);
    fill(img, x + w - t, y, t, h, c);
}

/// A filled rectangle, clipped to the image.
fn fill(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, c: Rgb<u8>) {
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    for py in y.max(0)..(y + h).min(ih) {
        for px in x.max(0)..(x + w).min(iw) {
            img.put_pixel(px as u32, py as u32, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(bbox: [f32; 4], person: Option<&str>, live: Option<bool>) -> FaceInView {
        FaceInView {
            track: 1,
            bbox,
            person: person.map(String::from),
            blinks: 2,
            live,
        }
    }

    #[test]
    fn box_is_drawn_in_the_state_colour_on_its_edge() {
        let mut img = RgbImage::from_pixel(640, 480, Rgb([0, 0, 0]));
        let faces = [face([100.0, 200.0, 120.0, 150.0], Some("Ada"), Some(true))];
        let info = OverlayInfo {
            camera: "door",
            frame: 7,
            faces: &faces,
            last_decision: None,
        };
        draw(&mut img, &info);
        // Scale 2 at 640 px: a 3 px border.
        assert_eq!(*img.get_pixel(100, 260), GREEN);
        assert_eq!(*img.get_pixel(102, 260), GREEN);
        assert_eq!(
            *img.get_pixel(103, 260),
            Rgb([0, 0, 0]),
            "inside the box is untouched"
        );
        assert_eq!(*img.get_pixel(219, 349), GREEN);
        // Two label lines above the box: some pixels in the label strip are the text colour.
        let label = (100..300).flat_map(|x| (164..200).map(move |y| (x, y)));
        assert!(label
            .into_iter()
            .any(|(x, y)| *img.get_pixel(x, y) == GREEN));
    }

    #[test]
    fn faces_partly_outside_the_frame_are_clipped_not_a_panic() {
        let mut img = RgbImage::new(64, 48);
        let faces = [
            face([-30.0, -20.0, 50.0, 50.0], None, Some(false)),
            face(
                [50.0, 40.0, 500.0, 500.0],
                Some("a very long name indeed"),
                None,
            ),
            face([1e9, -1e9, 0.0, 0.0], None, None),
        ];
        let info = OverlayInfo {
            camera: "é",
            frame: 0,
            faces: &faces,
            last_decision: None,
        };
        draw(&mut img, &info);
        assert_eq!(*img.get_pixel(19, 10), RED, "right edge of the first box");
    }

    #[test]
    fn jpeg_keeps_the_frame_size() {
        let img = RgbImage::from_pixel(320, 240, Rgb([90, 120, 150]));
        let info = OverlayInfo {
            camera: "c",
            frame: 1,
            faces: &[],
            last_decision: None,
        };
        let jpeg = render_jpeg(&img, &info).unwrap();
        let back = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (320, 240));
    }
}
