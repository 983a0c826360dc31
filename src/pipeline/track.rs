//! Face tracking: the same face across frames, and the evidence gathered about it.
//!
//! Faces are associated greedily, best pair first: by box overlap (IoU), or, for a face that moved more than
//! its overlap allows (a fast step, a dropped frame), by the distance between keypoints relative to the eye
//! distance. A track ends when its face has not been seen for [`TrackParams::max_gap`] of media time, so a
//! missed detection or two does not split one visit into two decisions.
//!
//! Each [`Track`] carries its evidence: identity votes ([`Votes`], weighted by face size, sharpness, pose and
//! detector score, so a sharp frontal frame counts more than a blurred profile), and its [`Liveness`]. The
//! [`crate::decide`] rule judges that evidence; nothing here decides.

use std::time::Duration;

use super::liveness::{BlinkParams, Liveness};
use crate::decide::Identity;
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

/// The votes of one candidate (a person, or unknown) in a track.
#[derive(Clone, Debug)]
struct Tally {
    /// The person, or `None` for unknown.
    person: Option<String>,
    /// Sum of the vote weights.
    weight: f32,
    /// Sum of weight x distance over the votes that had a distance.
    distance_sum: f32,
    /// Sum of the weights of those votes.
    distance_weight: f32,
}

impl Tally {
    /// Weighted mean distance, when any vote had one.
    fn distance(&self) -> Option<f32> {
        (self.distance_weight > 0.0).then(|| self.distance_sum / self.distance_weight)
    }
}

/// The identity votes of a track.
#[derive(Clone, Debug, Default)]
pub struct Votes {
    tally: Vec<Tally>,
    total: f32,
    frames: u32,
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
        match self.tally.iter_mut().find(|t| t.person == person) {
            Some(t) => {
                t.weight += w;
                t.distance_sum += ds;
                t.distance_weight += dw;
            }
            None => self.tally.push(Tally {
                person,
                weight: w,
                distance_sum: ds,
                distance_weight: dw,
            }),
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
            .filter(|t| t.person.is_some())
            .max_by(|a, b| a.weight.total_cmp(&b.weight));
        let share = |t: &Tally| t.weight / self.total;
        match best {
            Some(t) if share(t) >= MIN_VOTE_SHARE => Some(Identity {
                person: t.person.clone(),
                confidence: share(t),
                distance: t.distance(),
            }),
            _ if self.frames == 0 => None,
            _ => {
                let unknown = self.tally.iter().find(|t| t.person.is_none());
                Some(Identity {
                    person: None,
                    confidence: unknown.map_or(0.0, share),
                    distance: unknown.and_then(Tally::distance),
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
mod tests {
    use super::*;

    fn det(x: f32, y: f32, size: f32) -> Detection {
        let kp = |dx: f32, dy: f32| [x + dx * size, y + dy * size];
        Detection {
            bbox: BBox {
                x,
                y,
                w: size,
                h: size,
            },
            score: 0.9,
            keypoints: [
                kp(0.3, 0.4),
                kp(0.7, 0.4),
                kp(0.5, 0.6),
                kp(0.35, 0.8),
                kp(0.65, 0.8),
            ],
        }
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn faces_keep_their_tracks_and_tracks_end_after_the_gap() {
        let mut t = Tracker::new(TrackParams::default(), BlinkParams::default());
        let u = t.update(0, ms(0), &[det(10.0, 10.0, 100.0), det(300.0, 10.0, 100.0)]);
        assert_eq!(u.started, vec![0, 1]);
        let ids: Vec<u64> = t.tracks().iter().map(|t| t.id).collect();
        assert_eq!(ids, vec![1, 2]);
        // Listed in the other order and moved a little: same tracks.
        let u = t.update(
            1,
            ms(100),
            &[det(305.0, 12.0, 100.0), det(14.0, 10.0, 100.0)],
        );
        assert!(u.started.is_empty() && u.ended.is_empty());
        assert_eq!(t.tracks()[u.assigned[0]].id, 2);
        assert_eq!(t.tracks()[u.assigned[1]].id, 1);
        // A fast step with little overlap still follows by keypoints; a different size does not.
        let u = t.update(2, ms(200), &[det(60.0, 10.0, 100.0)]);
        assert_eq!(t.tracks()[u.assigned[0]].id, 1);
        assert_eq!(t.tracks()[u.assigned[0]].frames, 3);
        // Track 2 missing for less than the gap survives, then ends.
        let u = t.update(3, ms(800), &[det(62.0, 10.0, 100.0)]);
        assert!(u.ended.is_empty());
        let u = t.update(4, ms(1000), &[det(64.0, 10.0, 100.0)]);
        assert_eq!(u.ended.iter().map(|t| t.id).collect::<Vec<_>>(), vec![2]);
        let u = t.update(5, ms(1100), &[det(64.0, 10.0, 40.0)]);
        assert_eq!(u.started.len(), 1);
        assert_eq!(t.tracks()[u.assigned[0]].id, 3);
    }

    #[test]
    fn votes_weigh_frames_and_need_a_clear_share() {
        let mut v = Votes::default();
        assert_eq!(v.identity(), None);
        v.add(Some("ann".into()), Some(0.40), 1.0);
        v.add(None, Some(0.60), 0.2);
        v.add(Some("ann".into()), Some(0.44), 1.0);
        let id = v.identity().unwrap();
        assert_eq!(id.person.as_deref(), Some("ann"));
        assert!((id.confidence - 2.0 / 2.2).abs() < 1e-6);
        assert!((id.distance.unwrap() - 0.42).abs() < 1e-6);
        // Heavy unknown frames push the share below the bar: unknown.
        v.add(None, Some(0.7), 1.0);
        v.add(Some("bob".into()), Some(0.5), 0.5);
        let id = v.identity().unwrap();
        assert_eq!(id.person, None);
        assert!((id.confidence - 1.2 / 3.7).abs() < 1e-6);
    }
}
