//! [`Pipeline`]: one camera's frames through tracking, liveness and matching, into evidence for the decision.
//!
//! Per frame: every face is analysed (box, FaceMesh, embedding, anti-spoof), associated with a track, and
//! adds its evidence there: a weighted identity vote, its eye aspect ratio, its anti-spoof score. Events are
//! emitted when something changes (a track starts or ends, a blink completes, the identity or the liveness
//! verdict settles or changes). Each undecided track's [`Evidence`] then goes to the gate's [`Decider`], which
//! applies the one access rule of [`crate::decide::rule`] (and the policy and cooldown); the pipeline only
//! publishes what it answers. Every duration is media time (`Frame::pts`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::enroll::Enrollment;
use super::liveness::BlinkParams;
use super::track::{Track, TrackParams, Tracker};
use super::{FaceInView, FrameReport, PipelineEvent};
use crate::capture::Frame;
use crate::config::LivenessConfig;
use crate::decide::{Decider, Evidence, LiveVerdict, LocalTime, Outcome, Policy, Rule};
use crate::gallery::{GalleryError, MatchParams, Matcher, Quality, SharedGallery};
use crate::settings::{LiveSettings, SettingsHandle};
use crate::vision::{AnalyzeOptions, AnalyzedFace, CropPadding, FaceAnalyzer, VisionError};

/// Why a frame could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("vision: {0}")]
    Vision(#[from] VisionError),
    #[error("gallery: {0}")]
    Gallery(#[from] GalleryError),
}

/// The live pipeline of one camera / gate.
pub struct Pipeline {
    analyzer: Arc<FaceAnalyzer>,
    gallery: SharedGallery,
    settings: SettingsHandle,
    liveness: LivenessConfig,
    tracker: Tracker,
    /// The gate's decision: the rule, the policy and the cooldowns.
    decider: Decider,
    enrollment: Option<Enrollment>,
    /// Local time used by the policy; replaced in tests.
    clock: fn(SystemTime) -> LocalTime,
}

impl Pipeline {
    pub fn new(
        gate: String,
        analyzer: Arc<FaceAnalyzer>,
        gallery: SharedGallery,
        policy: Policy,
        settings: SettingsHandle,
        liveness: LivenessConfig,
    ) -> Self {
        let cooldown = Duration::from_secs_f32(liveness.cooldown_s.max(0.0));
        let decider = Decider::new(gate, Rule::new(liveness.min_frames), policy, cooldown);
        Self {
            analyzer,
            gallery,
            settings,
            liveness,
            tracker: Tracker::new(TrackParams::default(), BlinkParams::default()),
            decider,
            enrollment: None,
            clock: LocalTime::from_system,
        }
    }

    /// Evaluates schedules with `clock` instead of the machine's local time (tests, replays of old footage).
    pub fn with_clock(mut self, clock: fn(SystemTime) -> LocalTime) -> Self {
        self.clock = clock;
        self
    }

    /// The gate this pipeline decides for.
    pub fn gate(&self) -> &str {
        self.decider.gate()
    }

    /// Starts collecting samples of the single face in view for `name`; the outcome arrives as a
    /// [`PipelineEvent::Enrollment`] in a later report. A new request replaces one in progress.
    pub fn request_enrollment(&mut self, name: String) {
        self.enrollment = Some(Enrollment::new(name));
    }

    /// Runs one frame through the pipeline.
    pub fn process(&mut self, frame: &Frame) -> Result<FrameReport, PipelineError> {
        let settings = self.settings.get();
        let mut report = FrameReport {
            frame: frame.seq,
            ..FrameReport::default()
        };
        if !settings.recognition_enabled {
            // Privacy pause: nothing is analysed and nothing about earlier faces is kept.
            self.tracker.clear();
            if let Some(e) = self.enrollment.take() {
                report.events.push(e.failed("recognition is paused".into()));
            }
            report.latency_s = frame.captured.elapsed().as_secs_f64();
            return Ok(report);
        }
        let faces = self.analyzer.analyze_detailed(
            &frame.image,
            AnalyzeOptions {
                padding: CropPadding::Never,
                landmarks: true,
            },
        )?;
        let t = frame.pts.as_secs_f64();
        let dets: Vec<_> = faces
            .iter()
            .map(|f| f.observation.detection.clone())
            .collect();
        let update = self.tracker.update(frame.seq, frame.pts, &dets);
        for track in update.ended {
            Self::end_track(track, &mut report.events);
        }
        for &i in &update.started {
            let tr = &self.tracker.tracks()[i];
            let b = tr.detection.bbox;
            report.events.push(PipelineEvent::TrackStart {
                track: tr.id,
                frame: frame.seq,
                t,
                bbox: [b.x, b.y, b.w, b.h],
            });
        }
        let matcher = self.gallery.matcher();
        let params = MatchParams {
            threshold: settings.match_threshold,
            ..matcher.params
        };
        let enrolling = self.enrollment.is_some();
        for (face, &i) in faces.iter().zip(&update.assigned) {
            let m = matcher.identify_with(&face.observation.embedding, &params);
            let tr = self.tracker.track_mut(i);
            tr.votes.add(m.person, m.distance, vote_weight(face));
            let ear = face.observation.landmarks.as_ref().map(|l| {
                let (r, l) = l.eye_aspect_ratio();
                (r + l) / 2.0
            });
            let blink = tr.liveness.push(
                frame.seq,
                frame.pts,
                &face.observation.detection,
                ear,
                face.observation.antispoof,
            );
            if let Some(b) = blink {
                report.events.push(PipelineEvent::Blink {
                    track: tr.id,
                    frame: b.frame,
                    t: b.pts.as_secs_f64(),
                });
            }
        }
        for &i in &update.assigned {
            self.evaluate(i, frame, &settings, &matcher, enrolling, &mut report.events);
        }
        if let Some(e) = self.enrollment.as_mut() {
            if let Some(ev) = e.step(frame, &faces, &self.gallery) {
                report.events.push(ev);
                self.enrollment = None;
            }
        }
        report.faces = self
            .tracker
            .tracks()
            .iter()
            .filter(|tr| tr.last_frame == frame.seq)
            .map(|tr| {
                let b = tr.detection.bbox;
                FaceInView {
                    track: tr.id,
                    bbox: [b.x, b.y, b.w, b.h],
                    person: tr.announced_identity.clone().flatten(),
                    blinks: tr.liveness.blink_count(),
                    live: tr.announced_live,
                }
            })
            .collect();
        report.latency_s = frame.captured.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Ends every track (the source ended); their events go into the returned list.
    pub fn finish(&mut self) -> Vec<PipelineEvent> {
        let mut events = Vec::new();
        for track in self.tracker.clear() {
            Self::end_track(track, &mut events);
        }
        events
    }

    /// Announces changes of identity and liveness of track `i`, and asks the decider while it is undecided.
    fn evaluate(
        &mut self,
        i: usize,
        frame: &Frame,
        settings: &LiveSettings,
        matcher: &Matcher,
        enrolling: bool,
        events: &mut Vec<PipelineEvent>,
    ) {
        let t = frame.pts.as_secs_f64();
        let local_time = (self.clock)(frame.wall);
        let tr = self.tracker.track_mut(i);
        let ev = evidence(
            tr,
            frame,
            settings,
            &self.liveness,
            matcher,
            local_time,
            enrolling,
        );
        if let Some(id) = self.decider.rule().settled(&ev) {
            if tr.announced_identity.as_ref() != Some(&id.person) {
                tr.announced_identity = Some(id.person.clone());
                events.push(PipelineEvent::Recognition {
                    track: tr.id,
                    frame: frame.seq,
                    t,
                    person: id.person.clone(),
                    distance: id.distance,
                    confidence: id.confidence,
                });
            }
        }
        let (live, score, reason) = match &ev.liveness {
            LiveVerdict::Pending => (None, 0.0, String::new()),
            LiveVerdict::Live { score, reason } => (Some(true), *score, reason.clone()),
            LiveVerdict::NotLive { score, reason } => (Some(false), *score, reason.clone()),
        };
        if let Some(live) = live {
            if tr.announced_live != Some(live) {
                tr.announced_live = Some(live);
                events.push(PipelineEvent::Liveness {
                    track: tr.id,
                    frame: frame.seq,
                    t,
                    live,
                    antispoof: score,
                    blinks: tr.liveness.blink_count(),
                    reason,
                });
            }
        }
        if tr.decided {
            return;
        }
        let outcome = self.decider.decide(tr.id, &ev, frame.pts, frame.wall);
        tr.decided = outcome.is_final();
        match outcome {
            Outcome::Decided(decision) => events.push(PipelineEvent::Decision {
                frame: frame.seq,
                t,
                decision,
            }),
            Outcome::CooledDown { verdict, .. } => {
                tracing::debug!(track = tr.id, verdict = %verdict.kind(), "decision skipped: cooldown");
            }
            Outcome::Wait(_) | Outcome::Never { .. } => {}
        }
    }

    /// A track ended (the face left).
    fn end_track(track: Track, events: &mut Vec<PipelineEvent>) {
        events.push(PipelineEvent::TrackEnd {
            track: track.id,
            frame: track.last_frame,
            t: track.last_pts.as_secs_f64(),
            frames: track.frames,
        });
    }
}

/// What track `tr` shows now, for the decision: its votes, liveness (under the configured policy, and passive
/// only), frames, age, the recognised person's access level, the local time.
fn evidence(
    tr: &Track,
    frame: &Frame,
    settings: &LiveSettings,
    cfg: &LivenessConfig,
    matcher: &Matcher,
    local_time: LocalTime,
    enrolling: bool,
) -> Evidence {
    let identity = tr.votes.identity();
    let access_level = identity
        .as_ref()
        .and_then(|id| id.person.as_deref())
        .and_then(|p| matcher.access_level(p))
        .map(str::to_string);
    let verdict = |require_blink: bool| {
        tr.liveness.verdict(
            cfg,
            require_blink,
            settings.antispoof_threshold,
            tr.first_pts,
            frame.pts,
        )
    };
    Evidence {
        identity,
        frames: tr.frames,
        seen_for: frame.pts.saturating_sub(tr.first_pts),
        liveness: verdict(settings.require_blink),
        passive: verdict(false),
        liveness_score: tr.liveness.passive_score(),
        access_level,
        local_time,
        enrolling,
    }
}

/// How much one frame's identity vote counts: sharp, large, frontal, confidently detected faces count most.
fn vote_weight(face: &AnalyzedFace) -> f32 {
    let q = Quality::measure(&face.observation.detection, &face.chip);
    (q.score.max(0.02)) * face.observation.detection.score
}

#[cfg(test)]
mod tests {
    /// The service runs each camera's pipeline on its own thread.
    #[test]
    fn pipeline_can_move_to_another_thread() {
        fn is_send<T: Send>() {}
        is_send::<super::Pipeline>();
    }
}
