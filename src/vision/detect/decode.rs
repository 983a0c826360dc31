//! YuNet's head maps -> face candidates, and non-maximum suppression: pure box maths, no tensors.
//!
//! Every grid cell of every level is an anchor-free prior at (col, row) * stride. A cell's score is
//! `sqrt(cls * obj)`; its box centre is `(col + b0, row + b1) * stride`, its size `exp(b2, b3) * stride`;
//! keypoint k is `(col + k_x, row + k_y) * stride` (the same decoding as OpenCV's `FaceDetectorYN`).

use crate::vision::{BBox, Detection};

/// One level's head maps as flat channel-major (C, rows, cols) arrays.
pub struct LevelMaps<'a> {
    pub stride: f32,
    pub rows: usize,
    pub cols: usize,
    pub cls: &'a [f32],
    pub obj: &'a [f32],
    pub bbox: &'a [f32],
    pub kps: &'a [f32],
}

/// All cells with a score >= `score_threshold`, in network-input pixels, unsorted.
pub fn decode(level: &LevelMaps, score_threshold: f32) -> Vec<Detection> {
    let n = level.rows * level.cols;
    let s = level.stride;
    let mut out = Vec::new();
    for i in 0..n {
        // The graph's sigmoid keeps both in [0, 1]; the clamp only guards against rounding.
        let score = (level.cls[i].clamp(0.0, 1.0) * level.obj[i].clamp(0.0, 1.0)).sqrt();
        if score < score_threshold {
            continue;
        }
        let col = (i % level.cols) as f32;
        let row = (i / level.cols) as f32;
        let b = |c: usize| level.bbox[c * n + i];
        let (cx, cy) = ((col + b(0)) * s, (row + b(1)) * s);
        let (w, h) = (b(2).exp() * s, b(3).exp() * s);
        let mut keypoints = [[0f32; 2]; 5];
        for (k, p) in keypoints.iter_mut().enumerate() {
            *p = [
                (col + level.kps[2 * k * n + i]) * s,
                (row + level.kps[(2 * k + 1) * n + i]) * s,
            ];
        }
        out.push(Detection {
            bbox: BBox {
                x: cx - w / 2.0,
                y: cy - h / 2.0,
                w,
                h,
            },
            score,
            keypoints,
        });
    }
    out
}

/// Greedy non-maximum suppression: keeps the best-scoring box, drops every box overlapping a kept one by
/// IoU > `iou_threshold`, repeats. Returns the kept boxes sorted by score, best first.
pub fn nms(mut dets: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in dets {
        if kept.iter().all(|k| k.bbox.iou(&d.bbox) <= iou_threshold) {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, y: f32, w: f32, h: f32, score: f32) -> Detection {
        Detection {
            bbox: BBox { x, y, w, h },
            score,
            keypoints: [[0.0; 2]; 5],
        }
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes_and_sorts() {
        let dets = vec![
            det(0.0, 0.0, 10.0, 10.0, 0.8),
            det(1.0, 1.0, 10.0, 10.0, 0.9), // IoU with the first: 81 / 119 = 0.68
            det(50.0, 50.0, 10.0, 10.0, 0.95),
            det(6.0, 0.0, 10.0, 10.0, 0.7), // IoU with the second: 36 / 164 = 0.22, kept
        ];
        let kept = nms(dets, 0.3);
        let scores: Vec<f32> = kept.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.95, 0.9, 0.7]);
    }

    #[test]
    fn nms_of_nothing_is_nothing() {
        assert!(nms(Vec::new(), 0.3).is_empty());
    }

    #[test]
    fn decode_places_a_cell_at_its_grid_position() {
        // 2 x 3 grid, stride 8; only cell (row 1, col 2) scores.
        let n = 6;
        let i = 5;
        let mut cls = vec![0.0; n];
        let mut obj = vec![0.0; n];
        cls[i] = 0.81;
        obj[i] = 1.0;
        let mut bbox = vec![0.0; 4 * n];
        bbox[i] = 0.5; // b0
        bbox[n + i] = -0.25; // b1
        bbox[2 * n + i] = 1f32.ln(); // w = 8
        bbox[3 * n + i] = 2f32.ln(); // h = 16
        let mut kps = vec![0.0; 10 * n];
        kps[2 * 4 * n + i] = 1.0; // keypoint 4 x
        kps[(2 * 4 + 1) * n + i] = -1.0; // keypoint 4 y
        let level = LevelMaps {
            stride: 8.0,
            rows: 2,
            cols: 3,
            cls: &cls,
            obj: &obj,
            bbox: &bbox,
            kps: &kps,
        };
        let out = decode(&level, 0.5);
        assert_eq!(out.len(), 1);
        let d = &out[0];
        assert!((d.score - 0.9).abs() < 1e-6);
        // centre ((2 + 0.5) * 8, (1 - 0.25) * 8) = (20, 6); size 8 x 16.
        let expect = BBox {
            x: 16.0,
            y: -2.0,
            w: 8.0,
            h: 16.0,
        };
        for (a, b) in [
            (d.bbox.x, expect.x),
            (d.bbox.y, expect.y),
            (d.bbox.w, expect.w),
            (d.bbox.h, expect.h),
        ] {
            assert!((a - b).abs() < 1e-5, "{:?}", d.bbox);
        }
        assert_eq!(d.keypoints[0], [16.0, 8.0]);
        assert_eq!(d.keypoints[4], [24.0, 0.0]);
        assert!(decode(&level, 0.95).is_empty());
    }
}
