//! Face tracking: the same face across frames, and the evidence gathered about it.
//!
//! Faces are associated greedily, best pair first: by box overlap (IoU), or, for a face that moved more than
//! its overlap allows (a fast step, a dropped frame), by the distance between keypoints relative to the eye
//! distance. A track ends when its face has not been seen for [`TrackParams::max_gap`] of media time, so a
//! missed detection or two does not split one visit into two decisions.
//!
//! Each [`Track`] carries its evidence: identity votes ([`Votes`], weighted by face size, sharpness, pose and
//! detector score, so a sharp frontal frame counts more than a blurred profile), and its [`Liveness`].

use std::time::Duration;

use crate::liveness::{BlinkParams, Liveness};
use crate::vision::{BBox, Detection};

/// Association and lifetime parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrackParams {
    /// Smallest IoU that associates a face with a track.
    pub min_iou: f32,
    /// Largest mean keypoint distance, in eye distances, that associates a face without enough overlap.
    pub max_keypoint_dist: f32,
    /// A track ends after its face has been gone this long.
    pub max_gap: Duration,
}

impl Default for TrackParams {
    fn default() -> Self {
        Self {
            min_iou: 0.3,
            max_keypoint_dist: 0.6,
            max_gap: Duration::from_millis(800),
        }
    }
}

/// The identity votes of a track.
#[derive(Clone, Debug, Default)]
pub struct Votes {
    /// (person or unknown, weight, weighted distance sum, distance weight).
    tally: Vec<(Option<String>, f32, f32, f32)>,
    total: f32,
    frames: u32,
}

/// A track's current identity.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// The person, or `None` for unknown.
    pub person: Option<String>,
    /// The winner's share of the vote weight, in [0, 1].
    pub confidence: f32,
    /// Weighted mean distance of the winner's votes (nearest person's distance for unknown).
    pub distance: Option<f32>,
}

/// Share of the vote a person needs; below it the track is unknown.
pub const MIN_VOTE_SHARE: f32 = 0.6;

impl Votes {
    /// One frame's match: `person` (None = unknown) at `distance` (to the nearest person), weighted.
    pub fn add(&mut self, person: Option<String>, distance: Option<f32>, weight: f32) {
        let w = if weight.is_finite() {
            weight.max(1e-3)
        } else {
            1e-3
        };
        self.total += w;
        self.frames += 1;
        let (dw, ds) = distance.map_or((0.0, 0.0), |d| (w, d * w));
        match self.tally.iter_mut().find(|t| t.0 == person) {
            Some(t) => {
                t.1 += w;
                t.2 += ds;
                t.3 += dw;
            }
            None => self.tally.push((person, w, ds, dw)),
        }
    }

    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// The identity the votes point to: the heaviest person if they hold at least [`MIN_VOTE_SHARE`] of
    /// the weight, otherwise unknown. `None` before any vote.
    pub fn identity(&self) -> Option<Identity> {
        let best = self
            .tally
            .iter()
            .filter(|t| t.0.is_some())
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let share = |t: &(Option<String>, f32, f32, f32)| t.1 / self.total;
        let dist = |t: &(Option<String>, f32, f32, f32)| (t.3 > 0.0).then(|| t.2 / t.3);
        match best {
            Some(t) if share(t) >= MIN_VOTE_SHARE => Some(Identity {
                person: t.0.clone(),
                confidence: share(t),
                distance: dist(t),
            }),
            _ if self.frames == 0 => None,
            _ => {
                let unknown = self.tally.iter().find(|t| t.0.is_none());
                Some(Identity {
                    person: None,
                    confidence: unknown.map_or(0.0, share),
                    distance: unknown.and_then(dist),
                })
            }
        }
    }
}

/// One face followed over frames.
#[derive(Clone, Debug)]
pub struct Track {
    pub id: u64,
    pub first_frame: u64,
    pub first_pts: Duration,
    pub last_frame: u64,
    pub last_pts: Duration,
    pub detection: Detection,
    /// Frames the face was seen in.
    pub frames: u32,
    pub votes: Votes,
    pub liveness: Liveness,
    /// The pipeline took (or skipped) this track's decision.
    pub decided: bool,
    /// Last identity announced in a recognition event.
    pub announced_identity: Option<Option<String>>,
    /// Last liveness announced.
    pub announced_live: Option<bool>,
}

/// What one frame did to the tracks.
#[derive(Debug, Default)]
pub struct TrackUpdate {
    /// For each detection (in order), the index of its track in [`Tracker::tracks`].
    pub assigned: Vec<usize>,
    /// Indices of the tracks that started on this frame.
    pub started: Vec<usize>,
    /// Tracks that ended (face gone longer than `max_gap`), removed from the tracker.
    pub ended: Vec<Track>,
}

/// The tracks of one camera.
#[derive(Debug, Default)]
pub struct Tracker {
    params: TrackParams,
    blink: BlinkParams,
    tracks: Vec<Track>,
    next_id: u64,
}

impl Tracker {
    pub fn new(params: TrackParams, blink: BlinkParams) -> Self {
        Self {
            params,
            blink,
            tracks: Vec::new(),
            next_id: 1,
        }
    }

    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    pub fn track_mut(&mut self, i: usize) -> &mut Track {
        &mut self.tracks[i]
    }

    /// Ends every track at once (privacy pause, end of a source); returns them.
    pub fn clear(&mut self) -> Vec<Track> {
        std::mem::take(&mut self.tracks)
    }

    /// Ends tracks gone too long, then associates this frame's detections with the remaining tracks,
    /// starting new tracks for the rest.
    pub fn update(&mut self, frame: u64, pts: Duration, dets: &[Detection]) -> TrackUpdate {
        let gap = self.params.max_gap;
        let (ended, kept): (Vec<Track>, Vec<Track>) = std::mem::take(&mut self.tracks)
            .into_iter()
            .partition(|t| pts.saturating_sub(t.last_pts) > gap || pts < t.last_pts);
        self.tracks = kept;
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (d, det) in dets.iter().enumerate() {
            for (t, track) in self.tracks.iter().enumerate() {
                if let Some(score) = self.affinity(&track.detection, det) {
                    pairs.push((score, d, t));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut assigned = vec![usize::MAX; dets.len()];
        let mut taken = vec![false; self.tracks.len()];
        for (_, d, t) in pairs {
            if assigned[d] == usize::MAX && !taken[t] {
                assigned[d] = t;
                taken[t] = true;
            }
        }
        let mut started = Vec::new();
        for (d, det) in dets.iter().enumerate() {
            if assigned[d] == usize::MAX {
                self.tracks.push(Track {
                    id: self.next_id,
                    first_frame: frame,
                    first_pts: pts,
                    last_frame: frame,
                    last_pts: pts,
                    detection: det.clone(),
                    frames: 0,
                    votes: Votes::default(),
                    liveness: Liveness::new(self.blink),
                    decided: false,
                    announced_identity: None,
                    announced_live: None,
                });
                self.next_id += 1;
                assigned[d] = self.tracks.len() - 1;
                started.push(assigned[d]);
            }
            let t = &mut self.tracks[assigned[d]];
            t.last_frame = frame;
            t.last_pts = pts;
            t.detection = det.clone();
            t.frames += 1;
        }
        TrackUpdate {
            assigned,
            started,
            ended,
        }
    }

    /// How well `det` continues a track last seen at `prev`: IoU in (min_iou, 1], or a keypoint match scored
    /// below any overlap match; `None` when they are not the same face.
    fn affinity(&self, prev: &Detection, det: &Detection) -> Option<f32> {
        let iou = prev.bbox.iou(&det.bbox);
        if iou >= self.params.min_iou {
            return Some(iou);
        }
        let eye = eye_distance(prev).max(1.0);
        let mean = prev
            .keypoints
            .iter()
            .zip(&det.keypoints)
            .map(|(a, b)| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt())
            .sum::<f32>()
            / 5.0;
        let rel = mean / eye;
        let similar_size = size_ratio(&prev.bbox, &det.bbox) > 0.6;
        (rel <= self.params.max_keypoint_dist && similar_size)
            .then(|| self.params.min_iou * (1.0 - rel / self.params.max_keypoint_dist))
    }
}

fn eye_distance(d: &Detection) -> f32 {
    let [r, l] = [d.keypoints[0], d.keypoints[1]];
    ((r[0] - l[0]).powi(2) + (r[1] - l[1]).powi(2)).sqrt()
}

fn size_ratio(a: &BBox, b: &BBox) -> f32 {
    let (sa, sb) = ((a.w * a.h).sqrt(), (b.w * b.h).sqrt());
    if sa <= 0.0 || sb <= 0.0 {
        0.0
    } else {
        sa.min(sb) / sa.max(sb)
    }
}

#[cfg(test)]
#[path = "track_tests.rs"]
mod tests;
