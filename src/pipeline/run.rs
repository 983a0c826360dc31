//! Driving a [`Pipeline`] from a [`FrameSource`] until it ends: the loop behind `facegate replay`, the
//! tests and the measurements. A corrupt frame is counted and skipped (the next may be fine); a source that
//! disconnects ends the run with its error, after the open tracks were ended.

use std::time::{Duration, Instant};

use super::{Pipeline, PipelineError, PipelineEvent};
use crate::capture::{CaptureError, FrameSource};

/// What a run measured.
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    pub frames: u64,
    /// Frames the source could not decode (skipped).
    pub bad_frames: u64,
    /// Frames the source dropped because the pipeline was busy (real-time pacing only).
    pub dropped: u64,
    /// Per processed frame: arrival (the source's capture instant) to the end of processing, seconds.
    pub latencies: Vec<f64>,
    /// The same, once per decision, for the frame that produced it.
    pub decision_latencies: Vec<f64>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

impl RunStats {
    /// Frames processed per second of wall time.
    pub fn fps(&self) -> f64 {
        self.frames as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One line for people: counts, throughput, latency median and p95.
    pub fn summary(&self) -> String {
        let ms = |v: &[f64], q: f64| percentile(v, q) * 1e3;
        let mut s = format!(
            "{} frames ({} bad, {} dropped) in {:.1} s: {:.2} fps; frame latency median {:.1} ms, p95 {:.1} ms",
            self.frames,
            self.bad_frames,
            self.dropped,
            self.elapsed.as_secs_f64(),
            self.fps(),
            ms(&self.latencies, 0.5),
            ms(&self.latencies, 0.95),
        );
        if !self.decision_latencies.is_empty() {
            s += &format!(
                "; {} decisions, latency median {:.1} ms, p95 {:.1} ms",
                self.decision_latencies.len(),
                ms(&self.decision_latencies, 0.5),
                ms(&self.decision_latencies, 0.95)
            );
        }
        s
    }
}

pub use crate::stats::percentile;

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The event consumer failed (e.g. stdout closed).
    #[error("writing events: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs every frame of `source` through `pipeline`, handing each event to `on_event`, until the source ends
/// or `until` (media time) is reached. Open tracks are ended at the end.
pub fn run(
    pipeline: &mut Pipeline,
    source: &mut dyn FrameSource,
    until: Option<Duration>,
    mut on_event: impl FnMut(&PipelineEvent) -> std::io::Result<()>,
) -> Result<RunStats, RunError> {
    let start = Instant::now();
    let mut stats = RunStats::default();
    let outcome = loop {
        let frame = match source.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break Ok(()),
            Err(CaptureError::BadFrame {
                source_name,
                reason,
            }) => {
                tracing::warn!(source = %source_name, "skipping a bad frame: {reason}");
                stats.bad_frames += 1;
                continue;
            }
            Err(e) => break Err(RunError::from(e)),
        };
        if until.is_some_and(|u| frame.pts >= u) {
            break Ok(());
        }
        let report = match pipeline.process(&frame) {
            Ok(r) => r,
            Err(e) => break Err(e.into()),
        };
        stats.frames += 1;
        stats.latencies.push(report.latency_s);
        for e in &report.events {
            if matches!(e, PipelineEvent::Decision { .. }) {
                stats.decision_latencies.push(report.latency_s);
            }
        }
        if let Err(e) = report.events.iter().try_for_each(&mut on_event) {
            break Err(e.into());
        }
    };
    for e in pipeline.finish() {
        on_event(&e)?;
    }
    stats.dropped = source.dropped();
    stats.elapsed = start.elapsed();
    outcome.map(|()| stats)
}
