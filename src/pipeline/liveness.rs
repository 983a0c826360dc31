//! Liveness: is the tracked face a live person in front of the camera, not a photo or a screen?
//!
//! Three kinds of evidence accumulate per track:
//! - **blinks** ([`BlinkDetector`], in `blink.rs`): an eye closure then reopening against the face's own
//!   open-eye baseline;
//! - **passive anti-spoof**: MiniFASNet's live probability, averaged over the last frames (one frame is noisy);
//! - **motion**: a real camera never delivers two identical frames of a real face; a face whose box and
//!   keypoints do not move by even a hundredth of a pixel over several frames is a still image fed to us.
//!
//! [`Liveness::verdict`] fuses them under the configured policy: passive only, or a blink required within
//! `blink_window_s` of the track's start. Until enough frames are in, the verdict is pending. The verdict is
//! evidence for the [`crate::decide`] rule, which decides.

use std::collections::VecDeque;
use std::time::Duration;

pub use super::blink::{Blink, BlinkDetector, BlinkParams};
use crate::config::LivenessConfig;
pub use crate::decide::LiveVerdict;
use crate::vision::Detection;

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
mod tests {
    use super::*;
    use crate::pipeline::blink::tests::{ms, series};
    use crate::vision::BBox;

    fn det(x: f32) -> Detection {
        Detection {
            bbox: BBox {
                x,
                y: 10.0,
                w: 100.0,
                h: 120.0,
            },
            score: 0.9,
            keypoints: [
                [x + 30.0, 50.0],
                [x + 70.0, 50.0],
                [x + 50.0, 70.0],
                [x + 35.0, 90.0],
                [x + 65.0, 90.0],
            ],
        }
    }

    fn cfg() -> LivenessConfig {
        LivenessConfig {
            require_blink: true,
            blink_window_s: 2.0,
            min_frames: 3,
            cooldown_s: 10.0,
        }
    }

    #[test]
    fn verdict_policy_passive_blink_and_still_images() {
        let c = cfg();
        let moving = |i: u64| det(i as f32 * 0.5);
        // Passive only: pending until min_frames, then by the mean score.
        let mut l = Liveness::new(BlinkParams::default());
        l.push(0, ms(0), &moving(0), Some(0.3), 0.9);
        l.push(1, ms(40), &moving(1), Some(0.3), 0.8);
        assert_eq!(
            l.verdict(&c, false, 0.5, ms(0), ms(40)),
            LiveVerdict::Pending
        );
        l.push(2, ms(80), &moving(2), Some(0.3), 0.7);
        assert!(
            matches!(l.verdict(&c, false, 0.5, ms(0), ms(80)), LiveVerdict::Live { score, .. } if (score - 0.8).abs() < 1e-6)
        );
        // A low score is only a spoof once a full window of frames agrees.
        assert_eq!(
            l.verdict(&c, false, 0.85, ms(0), ms(80)),
            LiveVerdict::Pending
        );
        for i in 3..PASSIVE_WINDOW as u64 {
            l.push(i, ms(40 * i), &moving(i), Some(0.3), 0.8);
        }
        assert!(matches!(
            l.verdict(&c, false, 0.85, ms(0), ms(600)),
            LiveVerdict::NotLive { .. }
        ));
        // Blink required: pending inside the window, not live after it, live once a blink is seen in it.
        assert_eq!(
            l.verdict(&c, true, 0.5, ms(0), ms(80)),
            LiveVerdict::Pending
        );
        match l.verdict(&c, true, 0.5, ms(0), ms(2100)) {
            LiveVerdict::NotLive { reason, .. } => assert_eq!(reason, "no blink within 2 s"),
            other => panic!("{other:?}"),
        }
        let ears = series(40, &[(20, 3, 0.5)]);
        let mut l = Liveness::new(BlinkParams::default());
        for (i, e) in ears.iter().enumerate() {
            l.push(
                i as u64,
                ms(40 * i as u64),
                &moving(i as u64),
                Some(*e),
                0.9,
            );
        }
        assert_eq!(l.blink_count(), 1);
        assert!(matches!(
            l.verdict(&c, true, 0.5, ms(0), ms(1600)),
            LiveVerdict::Live { .. }
        ));
        // The same frames with a perfectly still face: a still image, whatever the scores say.
        let mut l = Liveness::new(BlinkParams::default());
        for (i, e) in ears.iter().enumerate() {
            l.push(i as u64, ms(40 * i as u64), &det(0.0), Some(*e), 0.99);
        }
        match l.verdict(&c, false, 0.5, ms(0), ms(1600)) {
            LiveVerdict::NotLive { reason, .. } => {
                assert!(reason.starts_with("still image"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
}
