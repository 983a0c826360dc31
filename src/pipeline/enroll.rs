//! Enrollment from the camera (Home Assistant's enroll button): collect several good samples of the single
//! face in view over the next frames, checked by the one enrollment rule ([`crate::gallery::enroll_rule`]) as
//! `facegate enroll` checks photos, then store them.
//!
//! Samples are taken at least [`SAMPLE_SPACING`] apart so they differ (expression, pose, light) rather than
//! being one moment copied. The request fails, with the last reason seen, when [`TIMEOUT`] passes without
//! [`SAMPLES`] good ones; the name is checked to be free when asked and again, atomically, when writing.

use std::time::Duration;

use super::PipelineEvent;
use crate::capture::Frame;
use crate::gallery::{
    enrollment_sample, EnrollSample, GalleryError, QualityLimits, SeenIn, SharedGallery,
};
use crate::vision::AnalyzedFace;

/// Samples stored per enrollment.
pub const SAMPLES: usize = 5;
/// Fewest samples worth storing when time runs out.
pub const MIN_SAMPLES: usize = 3;
/// Media time between two samples.
pub const SAMPLE_SPACING: Duration = Duration::from_millis(200);
/// Media time an enrollment may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// An enrollment in progress.
#[derive(Debug)]
pub struct Enrollment {
    name: String,
    started: Option<Duration>,
    last_sample: Option<Duration>,
    samples: Vec<EnrollSample>,
    /// Why the last rejected frame was rejected.
    last_problem: Option<String>,
}

/// Why the write failed.
enum WriteError {
    Taken,
    Gallery(GalleryError),
}

impl From<GalleryError> for WriteError {
    fn from(e: GalleryError) -> Self {
        Self::Gallery(e)
    }
}

impl Enrollment {
    pub fn new(name: String) -> Self {
        Self {
            name: name.trim().to_string(),
            started: None,
            last_sample: None,
            samples: Vec::new(),
            last_problem: None,
        }
    }

    pub fn failed(&self, reason: String) -> PipelineEvent {
        PipelineEvent::Enrollment {
            name: self.name.clone(),
            ok: false,
            samples: 0,
            reason: Some(reason),
        }
    }

    /// One frame; `Some(event)` when the enrollment is over.
    pub fn step(
        &mut self,
        frame: &Frame,
        faces: &[AnalyzedFace],
        gallery: &SharedGallery,
    ) -> Option<PipelineEvent> {
        let started = *self.started.get_or_insert(frame.pts);
        if self.samples.is_empty() && self.last_problem.is_none() && started == frame.pts {
            match taken(gallery, &self.name) {
                Ok(false) => {}
                Ok(true) => {
                    return Some(self.failed(format!("name '{}' is already taken", self.name)))
                }
                Err(e) => return Some(self.failed(e)),
            }
        }
        let due = self
            .last_sample
            .is_none_or(|t| frame.pts.saturating_sub(t) >= SAMPLE_SPACING);
        let source = format!("camera frame {}", frame.seq);
        match enrollment_sample(faces, &QualityLimits::default(), SeenIn::Camera, source) {
            Err(why) => self.last_problem = Some(why.to_string()),
            Ok(sample) if due => {
                self.last_sample = Some(frame.pts);
                self.samples.push(sample);
            }
            Ok(_) => {}
        }
        let timed_out = frame.pts.saturating_sub(started) >= TIMEOUT;
        if self.samples.len() >= SAMPLES || (timed_out && self.samples.len() >= MIN_SAMPLES) {
            return Some(self.write(gallery));
        }
        if timed_out {
            let why = self.last_problem.clone().unwrap_or_default();
            return Some(self.failed(format!(
                "timed out after {} s with {} good samples of {SAMPLES}: {why}",
                TIMEOUT.as_secs(),
                self.samples.len()
            )));
        }
        None
    }

    fn write(&self, gallery: &SharedGallery) -> PipelineEvent {
        let name = self.name.clone();
        let result = gallery.with_store(|g| {
            if g.people()?.iter().any(|p| p.name == name) {
                return Err(WriteError::Taken);
            }
            Ok(g.enroll(&name, None, &self.samples)?)
        });
        match result {
            Ok(_) => PipelineEvent::Enrollment {
                name,
                ok: true,
                samples: self.samples.len() as u32,
                reason: None,
            },
            Err(WriteError::Taken) => self.failed(format!("name '{name}' is already taken")),
            Err(WriteError::Gallery(e)) => self.failed(e.to_string()),
        }
    }
}

fn taken(gallery: &SharedGallery, name: &str) -> Result<bool, String> {
    gallery
        .people()
        .map(|people| people.iter().any(|p| p.name == name))
        .map_err(|e| e.to_string())
}
