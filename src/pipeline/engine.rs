//! [`Pipeline`]: one camera's frames through tracking, liveness, matching and the access policy.
//!
//! Per frame: every face is analysed (box, FaceMesh, embedding, anti-spoof), associated with a track, and
//! adds its evidence there: a weighted identity vote, its eye aspect ratio, its anti-spoof score. Events are
//! emitted when something changes (a track starts or ends, a blink completes, the identity or the liveness
//! verdict settles or changes), and a track gets its one decision as soon as the evidence allows:
//! - a known person once liveness is reached (granted / notify-only / denied by the [`Policy`]), or `spoof`
//!   when liveness fails (passive score too low, a frozen image, or no blink in the window when required);
//! - an unknown face after [`UNKNOWN_AFTER`] of consistently unknown votes (so a person whose first frames are
//!   blurred is not written off as unknown), `spoof` instead when the passive check fails.
//!
//! Decisions honour the per-person-and-gate cooldown. Every duration is media time (`Frame::pts`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::enroll::Enrollment;
use super::{FaceInView, FrameReport, PipelineEvent};
use crate::capture::Frame;
use crate::config::LivenessConfig;
use crate::decide::{Cooldowns, Decision, LocalTime, Policy, Verdict};
use crate::gallery::{GalleryError, MatchParams, Quality, SharedGallery};
use crate::liveness::{BlinkParams, LiveVerdict};
use crate::settings::{LiveSettings, SettingsHandle};
use crate::track::{Identity, Track, TrackParams, Tracker};
use crate::vision::{AnalyzeOptions, AnalyzedFace, CropPadding, FaceAnalyzer, VisionError};

/// How long a track must have been consistently unknown before the unknown decision is taken.
pub const UNKNOWN_AFTER: Duration = Duration::from_millis(1500);

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
    gate: String,
    analyzer: Arc<FaceAnalyzer>,
    gallery: SharedGallery,
    policy: Policy,
    settings: SettingsHandle,
    liveness: LivenessConfig,
    tracker: Tracker,
    cooldowns: Cooldowns,
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
        Self {
            gate,
            analyzer,
            gallery,
            policy,
            settings,
            liveness,
            tracker: Tracker::new(TrackParams::default(), BlinkParams::default()),
            cooldowns: Cooldowns::new(cooldown),
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
        &self.gate
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
            if enrolling {
                // The person enrolling is not decided about (they are not in the gallery yet).
                tr.decided = true;
            }
        }
        for &i in &update.assigned {
            self.evaluate(i, frame, &settings, &mut report.events);
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

    /// Announces changes of identity and liveness of track `i`, and takes its decision when it is due.
    fn evaluate(
        &mut self,
        i: usize,
        frame: &Frame,
        settings: &LiveSettings,
        events: &mut Vec<PipelineEvent>,
    ) {
        let t = frame.pts.as_secs_f64();
        let min_frames = self.liveness.min_frames.max(1);
        let tr = self.tracker.track_mut(i);
        let identity = tr.votes.identity().filter(|_| tr.frames >= min_frames);
        if let Some(id) = &identity {
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
        let verdict = tr.liveness.verdict(
            &self.liveness,
            settings.require_blink,
            settings.antispoof_threshold,
            tr.first_pts,
            frame.pts,
        );
        let (live, score, reason) = match &verdict {
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
        let Some(id) = identity else { return };
        let verdict = match (&id.person, live) {
            (Some(_), Some(false)) => Verdict::Spoof,
            (Some(person), Some(true)) => {
                let level = self
                    .gallery
                    .matcher()
                    .access_level(person)
                    .unwrap_or("")
                    .to_string();
                self.policy
                    .verdict(&level, &self.gate, (self.clock)(frame.wall))
            }
            (Some(_), None) => return,
            (None, _) if frame.pts.saturating_sub(tr.first_pts) < UNKNOWN_AFTER => return,
            // Unknown faces are not held up by a blink window: the passive checks alone tell photo from face.
            (None, _) => match tr.liveness.verdict(
                &self.liveness,
                false,
                settings.antispoof_threshold,
                tr.first_pts,
                frame.pts,
            ) {
                LiveVerdict::Pending => return,
                LiveVerdict::Live { .. } => Verdict::Unknown,
                LiveVerdict::NotLive { .. } => Verdict::Spoof,
            },
        };
        let passive = tr.liveness.passive_score();
        self.decide(i, &id, passive, verdict, frame, events);
    }

    fn decide(
        &mut self,
        i: usize,
        id: &Identity,
        liveness: f32,
        verdict: Verdict,
        frame: &Frame,
        events: &mut Vec<PipelineEvent>,
    ) {
        let tr = self.tracker.track_mut(i);
        tr.decided = true;
        let track_id = tr.id;
        if !self
            .cooldowns
            .try_take(&self.gate, id.person.as_deref(), frame.pts)
        {
            tracing::debug!(track = track_id, person = ?id.person, "decision skipped: cooldown");
            return;
        }
        events.push(PipelineEvent::Decision {
            frame: frame.seq,
            t: frame.pts.as_secs_f64(),
            decision: Decision {
                gate: self.gate.clone(),
                track_id,
                person: id.person.clone(),
                confidence: id.confidence,
                liveness,
                verdict,
                at: frame.wall,
            },
        });
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
