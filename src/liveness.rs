//! Liveness: is the tracked face a live person in front of the camera, not a photo or a screen?
//!
//! Three kinds of evidence accumulate per track:
//! - **blinks** ([`BlinkDetector`]): the eye aspect ratio (EAR, from FaceMesh) drops well below the track's own
//!   open-eye baseline, fast (well below the level of the moment before), and comes back within a blink's
//!   duration. The baseline is the median EAR of the last seconds with the eyes open, so people with narrow
//!   eyes, glasses or a slight head tilt are compared with themselves, not with a fixed threshold;
//! - **passive anti-spoof**: MiniFASNet's live probability, averaged over the last frames (one frame is noisy);
//! - **motion**: a real camera never delivers two identical frames of a real face; a face whose box and
//!   keypoints do not move by even a hundredth of a pixel over several frames is a still image fed to us.
//!
//! [`Liveness::verdict`] fuses them under the configured policy: passive only, or a blink required within
//! `blink_window_s` of the track's start. Until enough frames are in, the verdict is pending.

use std::collections::VecDeque;
use std::time::Duration;

use crate::config::LivenessConfig;
use crate::vision::Detection;

/// Tuning of the blink detector (defaults measured on `../shared/faces/blink`, see docs/PIPELINE.md).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlinkParams {
    /// Eyes count as closing when the EAR falls below `baseline * close_ratio`...
    pub close_ratio: f32,
    /// ...and below `local_ratio` times the highest EAR of the last `local_window`: a blink is a fast drop,
    /// while looking down or squinting lowers the EAR slowly (and is not a blink).
    pub local_ratio: f32,
    pub local_window: Duration,
    /// And as open again above `baseline * open_ratio`.
    pub open_ratio: f32,
    /// Longest closure that is still a blink (longer ones are eyes shut or looking down).
    pub max_closure: Duration,
    /// Open-eye history the baseline is the median of.
    pub baseline_window: Duration,
    /// Open-eye samples needed before closures are looked for.
    pub min_baseline_samples: usize,
}

impl Default for BlinkParams {
    fn default() -> Self {
        Self {
            close_ratio: 0.75,
            local_ratio: 0.72,
            local_window: Duration::from_millis(300),
            open_ratio: 0.9,
            max_closure: Duration::from_millis(700),
            baseline_window: Duration::from_secs(6),
            min_baseline_samples: 4,
        }
    }
}

/// A completed blink.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Blink {
    /// Frame of the deepest closure.
    pub frame: u64,
    pub pts: Duration,
    /// Deepest EAR / baseline.
    pub depth: f32,
}

/// Finds blinks in one track's EAR series.
#[derive(Clone, Debug, Default)]
pub struct BlinkDetector {
    params: BlinkParams,
    /// Recent open-eye EARs with their times.
    open: VecDeque<(Duration, f32)>,
    /// The EARs of the last `local_window` before now (or before the closure in progress).
    recent: VecDeque<(Duration, f32)>,
    /// The closure in progress: start time, deepest EAR, its frame and time.
    closing: Option<(Duration, f32, u64, Duration)>,
}

impl BlinkDetector {
    pub fn new(params: BlinkParams) -> Self {
        Self {
            params,
            ..Self::default()
        }
    }

    /// The open-eye baseline, once there are enough samples.
    pub fn baseline(&self) -> Option<f32> {
        if self.open.len() < self.params.min_baseline_samples {
            return None;
        }
        let mut v: Vec<f32> = self.open.iter().map(|(_, e)| *e).collect();
        v.sort_by(f32::total_cmp);
        Some(v[v.len() / 2])
    }

    /// Feeds one frame's EAR (mean of both eyes); returns a blink when this frame completes one.
    pub fn push(&mut self, frame: u64, pts: Duration, ear: f32) -> Option<Blink> {
        if !ear.is_finite() || ear <= 0.0 {
            return None;
        }
        let p = self.params;
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| pts.saturating_sub(*t) > p.local_window)
        {
            self.recent.pop_front();
        }
        let Some(base) = self.baseline() else {
            self.remember_open(pts, ear);
            return None;
        };
        let local = if self.recent.is_empty() {
            base
        } else {
            self.recent
                .iter()
                .map(|(_, e)| *e)
                .fold(f32::NEG_INFINITY, f32::max)
        };
        match self.closing {
            None if ear < base * p.close_ratio && ear < local * p.local_ratio => {
                self.closing = Some((pts, ear, frame, pts));
                None
            }
            None => {
                self.remember_open(pts, ear);
                None
            }
            Some((start, deepest, dframe, dpts)) => {
                if ear > base * p.open_ratio {
                    self.closing = None;
                    self.remember_open(pts, ear);
                    (pts.saturating_sub(start) <= p.max_closure).then_some(Blink {
                        frame: dframe,
                        pts: dpts,
                        depth: deepest / base,
                    })
                } else {
                    if ear < deepest {
                        self.closing = Some((start, ear, frame, pts));
                    }
                    None
                }
            }
        }
    }

    fn remember_open(&mut self, pts: Duration, ear: f32) {
        self.recent.push_back((pts, ear));
        self.open.push_back((pts, ear));
        let window = self.params.baseline_window;
        while self
            .open
            .front()
            .is_some_and(|(t, _)| pts.saturating_sub(*t) > window)
            && self.open.len() > self.params.min_baseline_samples
        {
            self.open.pop_front();
        }
    }
}

/// Frames of anti-spoof scores averaged for the passive verdict (and needed before a face is called a spoof
/// on that score alone).
pub const PASSIVE_WINDOW: usize = 15;
/// Largest box/keypoint movement (pixels) between frames that still counts as "identical".
const FROZEN_EPS: f32 = 0.01;

/// The liveness evidence of one track.
#[derive(Clone, Debug, Default)]
pub struct Liveness {
    blinks: BlinkDetector,
    blink_times: Vec<Duration>,
    scores: VecDeque<f32>,
    last_points: Option<Vec<f32>>,
    /// Consecutive frames identical to their predecessor.
    frozen_run: u32,
}

/// Where a track's liveness stands.
#[derive(Clone, Debug, PartialEq)]
pub enum LiveVerdict {
    /// Not enough evidence yet.
    Pending,
    Live {
        score: f32,
        reason: String,
    },
    NotLive {
        score: f32,
        reason: String,
    },
}

impl Liveness {
    pub fn new(params: BlinkParams) -> Self {
        Self {
            blinks: BlinkDetector::new(params),
            ..Self::default()
        }
    }

    /// Adds one frame of evidence; returns a blink completed on this frame.
    pub fn push(
        &mut self,
        frame: u64,
        pts: Duration,
        det: &Detection,
        ear: Option<f32>,
        antispoof: f32,
    ) -> Option<Blink> {
        self.scores.push_back(antispoof);
        if self.scores.len() > PASSIVE_WINDOW {
            self.scores.pop_front();
        }
        let b = det.bbox;
        let mut points = vec![b.x, b.y, b.w, b.h];
        points.extend(det.keypoints.iter().flatten());
        let same = self.last_points.as_ref().is_some_and(|last| {
            last.iter()
                .zip(&points)
                .all(|(a, b)| (a - b).abs() <= FROZEN_EPS)
        });
        self.frozen_run = if same { self.frozen_run + 1 } else { 0 };
        self.last_points = Some(points);
        let blink = ear.and_then(|e| self.blinks.push(frame, pts, e));
        if let Some(b) = blink {
            self.blink_times.push(b.pts);
        }
        blink
    }

    pub fn blink_count(&self) -> u32 {
        self.blink_times.len() as u32
    }

    /// Mean anti-spoof probability over the recent frames.
    pub fn passive_score(&self) -> f32 {
        if self.scores.is_empty() {
            return 0.0;
        }
        self.scores.iter().sum::<f32>() / self.scores.len() as f32
    }

    /// The verdict for a track that started at `start` and was last seen at `now` (media time).
    pub fn verdict(
        &self,
        cfg: &LivenessConfig,
        require_blink: bool,
        antispoof_threshold: f32,
        start: Duration,
        now: Duration,
    ) -> LiveVerdict {
        let n = self.scores.len();
        let min_frames = cfg.min_frames.max(1) as usize;
        let score = self.passive_score();
        if n < min_frames {
            return LiveVerdict::Pending;
        }
        if self.frozen_run + 1 >= min_frames as u32 {
            return LiveVerdict::NotLive {
                score,
                reason: format!("still image: {} identical frames", self.frozen_run + 1),
            };
        }
        let passive = format!("passive anti-spoof {score:.2} over {n} frames");
        if score < antispoof_threshold {
            // A grant needs `min_frames` of good evidence, a spoof verdict a full window of bad evidence: a
            // real face with a poor first moment (motion blur, turning to the camera) gets its chance.
            if n < PASSIVE_WINDOW {
                return LiveVerdict::Pending;
            }
            return LiveVerdict::NotLive {
                score,
                reason: format!("{passive}, below {antispoof_threshold:.2}"),
            };
        }
        if !require_blink {
            return LiveVerdict::Live {
                score,
                reason: passive,
            };
        }
        let window = Duration::from_secs_f32(cfg.blink_window_s.max(0.0));
        let blinks = self
            .blink_times
            .iter()
            .filter(|t| t.saturating_sub(start) <= window)
            .count();
        if blinks > 0 {
            LiveVerdict::Live {
                score,
                reason: format!("{passive}, {blinks} blink(s)"),
            }
        } else if now.saturating_sub(start) > window {
            LiveVerdict::NotLive {
                score,
                reason: format!("no blink within {} s", cfg.blink_window_s),
            }
        } else {
            LiveVerdict::Pending
        }
    }
}

#[cfg(test)]
#[path = "liveness_tests.rs"]
mod tests;
