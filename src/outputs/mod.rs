//! The service's outputs and the one stream they listen to.
//!
//! The camera threads only produce: every processed frame, every decision (with the crop of the face it is
//! about) and every camera state change goes on ONE bounded [`tokio::sync::broadcast`] of [`ServiceEvent`]s,
//! the [`Bus`]. Each output subscribes on its own and never waits for another:
//!
//! - [`gate`]: the ESPHome drivers; a grant is actuated the moment its decision arrives, in a task of its own,
//!   and the outcome goes back on the bus as [`ServiceEvent::Outcome`], keyed by the decision's [`DecisionId`].
//! - [`audit`]: one row per decision and its actions' outcome, written on a thread of its own (a locked
//!   database delays the row, never an unlock).
//! - the Home Assistant bridge ([`crate::ha::bridge`]): states, events, the face crop, gate outcomes.
//! - [`view`]: the HTTP live view (recent events from the bus; frames from a latest-only `watch` per camera,
//!   so a slow viewer skips frames instead of holding a backlog of images).
//!
//! **When an output lags** (the bus holds [`BUS_CAPACITY`] events; a receiver more than that behind loses the
//! oldest, as `RecvError::Lagged` tells it):
//! - gate: logs an error naming how many events it missed. A decision that old is past the drivers' 2 s
//!   deadline anyway (the bus holds tens of seconds of frames), so it could only have been dropped as late.
//! - audit: its receiver only copies decisions and outcomes into the writer thread's own queue (it never
//!   touches the database), so it keeps up; were it ever to lag, it logs an error with the count of events
//!   lost. The writer's queue holds [`audit::BACKLOG`] rows while the database is locked; beyond that a row is
//!   dropped with an error line.
//! - Home Assistant: logs a warning and carries on; the lost frames' states (face present) are corrected by
//!   the next frame, lost decisions' events and face images are not re-sent.
//! - live view: logs a warning; the recent-events list misses those events.

pub mod audit;
pub mod gate;
pub mod view;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::decide::Decision;
use crate::esphome::ActionOutcome;
use crate::pipeline::{FrameReport, PipelineEvent};

/// Events the bus holds for a receiver that has not read them yet: at 30 frames per second, half a minute of
/// one camera. Values are dropped as soon as every receiver has read them, so this bounds memory only when
/// an output stalls (a frame event is a few hundred bytes: images never travel on the bus).
pub const BUS_CAPACITY: usize = 1024;

/// A camera as the outputs know it: its name in the options (the live view's key) and its HA device slug.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CameraId {
    pub name: Arc<str>,
    pub slug: Arc<str>,
}

impl CameraId {
    pub fn new(name: &str, slug: &str) -> CameraId {
        CameraId {
            name: name.into(),
            slug: slug.into(),
        }
    }
}

/// Identifies one decision across outputs (the audit row and HA's gate event of its actions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DecisionId(pub u64);

/// A camera's state as the outputs show it.
#[derive(Clone, Debug, PartialEq)]
pub enum CameraState {
    Starting,
    Streaming,
    /// The source failed; the camera thread retries.
    Disconnected {
        reason: String,
    },
    /// A finite source (a replay) reached its end.
    Ended,
}

impl CameraState {
    /// The state in words, as Home Assistant's camera sensor shows it (at most ~210 characters: HA keeps
    /// 255 of a state).
    pub fn text(&self) -> String {
        match self {
            CameraState::Starting => "starting".into(),
            CameraState::Streaming => "streaming".into(),
            CameraState::Disconnected { reason } => {
                let r: String = reason.chars().take(200).collect();
                format!("disconnected: {r}")
            }
            CameraState::Ended => "ended".into(),
        }
    }
}

/// What the service tells its outputs.
#[derive(Clone, Debug)]
pub enum ServiceEvent {
    /// One processed frame: the faces in view and every pipeline event of the frame (decisions included;
    /// they also come as [`ServiceEvent::Decision`], sent before this).
    Frame {
        camera: CameraId,
        report: Arc<FrameReport>,
    },
    /// An access decision, with the JPEG crop of the face it is about (when the frame had it).
    Decision {
        camera: CameraId,
        id: DecisionId,
        /// The source's sequence number of the frame it was taken on.
        frame: u64,
        decision: Arc<Decision>,
        face_jpeg: Option<Bytes>,
    },
    /// What the gate's drivers did for decision `id` (one outcome per action).
    Outcome {
        camera: CameraId,
        id: DecisionId,
        decision: Arc<Decision>,
        outcomes: Vec<ActionOutcome>,
    },
    /// The camera's state changed.
    Camera {
        camera: CameraId,
        state: CameraState,
    },
}

/// The sending side of the service's event stream; cheap to clone. Receivers come from [`Bus::subscribe`].
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<ServiceEvent>,
    next_id: Arc<AtomicU64>,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new(BUS_CAPACITY)
    }
}

impl Bus {
    pub fn new(capacity: usize) -> Bus {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Bus {
            tx,
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// A receiver of every event sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ServiceEvent> {
        self.tx.subscribe()
    }

    /// Sends `ev` to every receiver (nobody listening is not an error).
    pub fn send(&self, ev: ServiceEvent) {
        let _ = self.tx.send(ev);
    }

    /// Publishes one processed frame: a [`ServiceEvent::Decision`] per decision in it (the first one with
    /// `face_jpeg`), then the [`ServiceEvent::Frame`]. Returns the decisions' ids.
    pub fn report(
        &self,
        camera: &CameraId,
        report: FrameReport,
        face_jpeg: Option<Vec<u8>>,
    ) -> Vec<DecisionId> {
        let mut jpeg = face_jpeg.map(Bytes::from);
        let mut ids = Vec::new();
        for e in &report.events {
            let PipelineEvent::Decision {
                frame, decision, ..
            } = e
            else {
                continue;
            };
            let id = DecisionId(self.next_id.fetch_add(1, Ordering::Relaxed));
            ids.push(id);
            self.send(ServiceEvent::Decision {
                camera: camera.clone(),
                id,
                frame: *frame,
                decision: Arc::new(decision.clone()),
                face_jpeg: jpeg.take(),
            });
        }
        self.send(ServiceEvent::Frame {
            camera: camera.clone(),
            report: Arc::new(report),
        });
        ids
    }

    /// Publishes a camera state change.
    pub fn camera_state(&self, camera: &CameraId, state: CameraState) {
        self.send(ServiceEvent::Camera {
            camera: camera.clone(),
            state,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::decide::Verdict;

    #[test]
    fn a_report_sends_its_decisions_first_with_fresh_ids_and_the_crop_once() {
        let bus = Bus::new(16);
        let mut rx = bus.subscribe();
        let cam = CameraId::new("Front door", "front_door");
        let d = |track| PipelineEvent::Decision {
            frame: 7,
            t: 0.7,
            decision: Decision {
                gate: "Front".into(),
                track_id: track,
                person: None,
                confidence: 0.0,
                liveness: 0.9,
                verdict: Verdict::Unknown,
                why: "test".into(),
                at: SystemTime::now(),
            },
        };
        let report = FrameReport {
            frame: 7,
            events: vec![d(1), d(2)],
            ..FrameReport::default()
        };
        let ids = bus.report(&cam, report, Some(vec![1, 2, 3]));
        assert_eq!(ids, vec![DecisionId(1), DecisionId(2)]);
        let mut got = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            got.push(ev);
        }
        assert_eq!(got.len(), 3);
        match (&got[0], &got[1], &got[2]) {
            (
                ServiceEvent::Decision {
                    id: a,
                    face_jpeg: Some(j),
                    decision,
                    ..
                },
                ServiceEvent::Decision {
                    id: b,
                    face_jpeg: None,
                    ..
                },
                ServiceEvent::Frame { report, .. },
            ) => {
                assert_eq!((*a, *b), (DecisionId(1), DecisionId(2)));
                assert_eq!(&j[..], &[1, 2, 3]);
                assert_eq!(decision.track_id, 1);
                assert_eq!(report.events.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            CameraState::Disconnected {
                reason: "x".repeat(300)
            }
            .text()
            .len(),
            "disconnected: ".len() + 200
        );
    }
}
