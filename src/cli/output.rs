//! The machine-readable output of `embed --json` and `identify --json`: one JSON object per image and line.
//!
//! ```text
//! {"image": PATH, "faces": [{"box": [x, y, w, h], "score": S, "keypoints": [[x, y], ...5],
//!                            "embedding": [128 floats], "antispoof": P_REAL}]}
//! ```
//! `identify` adds `"match": {"person": NAME or null, "distance": D}` per face and leaves out the embedding.
//! A file that fails is `{"image": PATH, "error": "..."}`.

use std::io::Write;

use serde::Serialize;

use crate::gallery::MatchResult;
use crate::vision::FaceObservation;

#[derive(Serialize)]
struct ImageLine<'a> {
    image: &'a str,
    faces: Vec<FaceJson>,
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    image: &'a str,
    error: &'a str,
}

#[derive(Serialize)]
struct FaceJson {
    #[serde(rename = "box")]
    bbox: [f32; 4],
    score: f32,
    keypoints: [[f32; 2]; 5],
    #[serde(skip_serializing_if = "Option::is_none")]
    embedding: Option<Vec<f32>>,
    antispoof: f32,
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    matched: Option<MatchJson>,
}

#[derive(Serialize)]
struct MatchJson {
    person: Option<String>,
    distance: Option<f32>,
}

/// One face for the JSON line: with its embedding (`embed`) or its match (`identify`).
pub struct FaceOut<'a> {
    pub face: &'a FaceObservation,
    pub with_embedding: bool,
    pub matched: Option<&'a MatchResult>,
}

impl FaceOut<'_> {
    fn json(&self) -> FaceJson {
        let d = &self.face.detection;
        FaceJson {
            bbox: [d.bbox.x, d.bbox.y, d.bbox.w, d.bbox.h],
            score: d.score,
            keypoints: d.keypoints,
            embedding: self.with_embedding.then(|| self.face.embedding.0.clone()),
            antispoof: self.face.antispoof,
            matched: self.matched.map(|m| MatchJson {
                person: m.person.clone(),
                distance: m.distance,
            }),
        }
    }
}

/// Write one image's line.
pub fn image_line(out: &mut dyn Write, image: &str, faces: &[FaceOut<'_>]) -> std::io::Result<()> {
    let line = ImageLine {
        image,
        faces: faces.iter().map(FaceOut::json).collect(),
    };
    serde_json::to_writer(&mut *out, &line)?;
    writeln!(out)
}

/// Write one failed image's line.
pub fn error_line(out: &mut dyn Write, image: &str, error: &str) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, &ErrorLine { image, error })?;
    writeln!(out)
}

/// `[x, y, w, h]` rounded to whole pixels, for people to read.
pub fn box_text(face: &FaceObservation) -> String {
    let b = &face.detection.bbox;
    format!("[{:.0}, {:.0}, {:.0}, {:.0}]", b.x, b.y, b.w, b.h)
}

/// An error and its causes on one line ("cannot load: file x: not found").
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let c_text = c.to_string();
        if !s.contains(&c_text) {
            s.push_str(": ");
            s.push_str(&c_text);
        }
        cur = c.source();
    }
    s
}
