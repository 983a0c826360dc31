//! Blinks: an eye closure then reopening, found in one track's eye aspect ratio (EAR, from FaceMesh).
//!
//! The EAR must drop well below the track's own open-eye baseline, fast (well below the level of the moment
//! before), and come back within a blink's duration. The baseline is the median EAR of the last seconds with
//! the eyes open, so people with narrow eyes, glasses or a slight head tilt are compared with themselves, not
//! with a fixed threshold; looking down or squinting lowers the EAR slowly and is not a blink.

use std::collections::VecDeque;
use std::time::Duration;

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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// An EAR series at 25 fps: open at 0.30 with a little noise, closures as (start frame, frames, depth).
    pub(crate) fn series(frames: u64, closures: &[(u64, u64, f32)]) -> Vec<f32> {
        (0..frames)
            .map(|i| {
                let noise = 0.004 * ((i * 7 % 5) as f32 - 2.0);
                match closures.iter().find(|(s, n, _)| (*s..s + n).contains(&i)) {
                    Some((_, _, depth)) => 0.30 * depth,
                    None => 0.30 + noise,
                }
            })
            .collect()
    }

    fn blinks(ears: &[f32]) -> Vec<u64> {
        let mut d = BlinkDetector::new(BlinkParams::default());
        ears.iter()
            .enumerate()
            .filter_map(|(i, e)| d.push(i as u64, ms(40 * i as u64), *e).map(|b| b.frame))
            .collect()
    }

    #[test]
    fn blinks_are_closures_then_reopening_against_the_own_baseline() {
        // Two blinks (3 and 2 frames), one long closure (1.2 s: not a blink), a shallow dip (not a blink).
        let ears = series(
            150,
            &[(20, 3, 0.5), (50, 2, 0.6), (80, 30, 0.4), (120, 3, 0.9)],
        );
        assert_eq!(blinks(&ears), vec![20, 50]);
        // The same relative closures on narrow eyes (baseline 0.15) are found the same way.
        let narrow: Vec<f32> = ears.iter().map(|e| e / 2.0).collect();
        assert_eq!(blinks(&narrow), vec![20, 50]);
        // A closure that never reopens is not a blink; neither is NaN or the first frames before a baseline.
        let mut ears = series(40, &[(30, 10, 0.4), (1, 1, 0.3)]);
        ears[10] = f32::NAN;
        assert_eq!(blinks(&ears), Vec::<u64>::new());
    }
}
