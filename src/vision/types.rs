//! The values the vision stage hands to the rest of facegate.

use serde::Serialize;

/// Length of a face embedding (dlib ResNet).
pub const EMBEDDING_DIM: usize = 128;

/// An axis-aligned box in image pixels: top-left corner, width and height.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl BBox {
    /// Intersection over union with another box (0 when they do not overlap).
    pub fn iou(&self, other: &BBox) -> f32 {
        let x0 = self.x.max(other.x);
        let y0 = self.y.max(other.y);
        let x1 = (self.x + self.w).min(other.x + other.w);
        let y1 = (self.y + self.h).min(other.y + other.h);
        let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
        let union = self.w * self.h + other.w * other.h - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }

    /// Centre point.
    pub fn center(&self) -> [f32; 2] {
        [self.x + self.w / 2.0, self.y + self.h / 2.0]
    }
}

/// One face found by the detector.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Detection {
    /// Face box in image pixels.
    pub bbox: BBox,
    /// Detector confidence in [0, 1].
    pub score: f32,
    /// YuNet's keypoints in image pixels, in YuNet's order: right eye, left eye, nose tip, right mouth
    /// corner, left mouth corner ("right" is the person's right, i.e. the left side of the image).
    pub keypoints: [[f32; 2]; 5],
}

/// FaceMesh output for one face.
#[derive(Clone, Debug, PartialEq)]
pub struct Landmarks {
    /// 468 points (x, y in image pixels, z relative depth in the same scale).
    pub points: Vec<[f32; 3]>,
    /// Probability that the crop really holds a face, from FaceMesh's own head.
    pub face_score: f32,
}

/// A 128-d face embedding; faces of one person are close in Euclidean distance (dlib: < 0.6).
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding(pub Vec<f32>);

impl Embedding {
    /// Euclidean distance to another embedding.
    pub fn distance(&self, other: &Embedding) -> f32 {
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            .sqrt()
    }
}

/// Everything the vision stage knows about one face in one image.
#[derive(Clone, Debug)]
pub struct FaceObservation {
    pub detection: Detection,
    /// FaceMesh landmarks (used for blinks and pose).
    pub landmarks: Option<Landmarks>,
    pub embedding: Embedding,
    /// Probability that this is a live face, not a photo or a screen (MiniFASNet V2 + V1SE fused).
    pub antispoof: f32,
}
