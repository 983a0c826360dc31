//! The live pipeline of one camera: frames in, evidence out, decisions published.
//!
//! A [`crate::capture::FrameSource`] yields frames; the pipeline (tracking, liveness, matching) turns each
//! frame into a [`FrameReport`]: what is in view now (for the live view and the "face present" state) and the
//! [`PipelineEvent`]s that happened (for `facegate replay --json`, Home Assistant, the audit log and the
//! ESPHome drivers). This file is the seam: outputs depend on these types, not on how the pipeline computes
//! them.
//!
//! The computation: [`track`] follows faces across frames and gathers their evidence (identity votes,
//! [`liveness`]: blinks against the face's own baseline, passive anti-spoof, motion); [`Pipeline`] in
//! `engine.rs` runs the networks on each frame, feeds the tracks and hands each track's evidence to the
//! gate's [`crate::decide::Decider`], which decides. The camera enrollment is in `enroll.rs`; [`run`] drives
//! a pipeline from a frame source (replay, tests).

mod blink;
mod engine;
mod enroll;
pub mod liveness;
mod run;
pub mod track;

use serde::Serialize;

pub use crate::decide::UNKNOWN_AFTER;
pub use crate::gallery::SharedGallery;
pub use engine::{Pipeline, PipelineError};
pub use run::{percentile, run, RunError, RunStats};

use crate::decide::Decision;

/// Something that happened on a camera. Serialised as one JSON object per line by `facegate replay --json`,
/// tagged by `"event"`. `frame` is the source's frame sequence number; `t` seconds since the source started.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PipelineEvent {
    /// A new face track started.
    TrackStart {
        track: u64,
        frame: u64,
        t: f64,
        /// `[x, y, w, h]` in frame pixels.
        #[serde(rename = "box")]
        bbox: [f32; 4],
    },
    /// A blink (eye closure then reopening) completed on a track.
    Blink { track: u64, frame: u64, t: f64 },
    /// The track's liveness verdict was reached (or changed).
    Liveness {
        track: u64,
        frame: u64,
        t: f64,
        live: bool,
        /// Fused passive anti-spoof probability of a live face.
        antispoof: f32,
        blinks: u32,
        /// Why, in words ("passive anti-spoof 0.93 over 5 frames", "no blink within 5 s").
        reason: String,
    },
    /// The track's identity vote settled (or changed).
    Recognition {
        track: u64,
        frame: u64,
        t: f64,
        /// The person, or `None` for unknown.
        person: Option<String>,
        /// Embedding distance of the vote's best match (lower is closer); `None` with an empty gallery.
        distance: Option<f32>,
        /// Vote confidence in [0, 1].
        confidence: f32,
    },
    /// The access decision for a track (at most one per track, and per person and gate per cooldown).
    Decision {
        frame: u64,
        t: f64,
        decision: Decision,
    },
    /// A track ended (the face left).
    TrackEnd {
        track: u64,
        frame: u64,
        t: f64,
        frames: u32,
    },
    /// An enrollment requested from Home Assistant (or the HTTP upload) finished.
    Enrollment {
        name: String,
        ok: bool,
        /// Samples stored when `ok`.
        samples: u32,
        /// Why it failed, in words a user can act on ("two faces in view", "name already taken").
        reason: Option<String>,
    },
}

/// A face in the current frame, as the live view and Home Assistant show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaceInView {
    pub track: u64,
    /// `[x, y, w, h]` in frame pixels.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// The track's current identity (`None` = unknown or not yet settled).
    pub person: Option<String>,
    pub blinks: u32,
    /// `None` until the liveness verdict is reached.
    pub live: Option<bool>,
}

/// What one processed frame produced.
#[derive(Clone, Debug, Default)]
pub struct FrameReport {
    pub frame: u64,
    pub faces: Vec<FaceInView>,
    pub events: Vec<PipelineEvent>,
    /// Time from the frame's capture to the end of its processing, seconds.
    pub latency_s: f64,
}
