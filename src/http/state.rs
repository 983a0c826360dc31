//! [`LiveView`]: what the HTTP server shows, updated by the service on every frame.
//!
//! Per camera it keeps only the newest frame and its report (publishing copies the pixels into the buffer
//! of the previous frame when nobody is reading it, so memory stays flat), the camera's status, and the
//! overlay JPEG of the newest frame, encoded lazily: only when a snapshot or stream asks for it, once per
//! frame however many viewers there are. Recent events live in a bounded ring.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use image::RgbImage;
use serde::Serialize;
use tokio::sync::watch;

use super::overlay::{self, OverlayInfo};
use crate::capture::Frame;
use crate::decide::Decision;
use crate::pipeline::{FaceInView, FrameReport, PipelineEvent};

/// Recent events kept by default (older ones fall off the ring).
pub const DEFAULT_EVENT_CAPACITY: usize = 256;

/// Why the live view cannot give what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("no camera named '{0}'")]
    UnknownCamera(String),
    #[error("camera '{0}' has not delivered a frame yet")]
    NoFrameYet(String),
    #[error("could not encode the overlay JPEG: {0}")]
    Encode(String),
}

/// A camera's health as the service sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CameraStatus {
    /// Configured, no frame yet.
    Starting,
    /// Frames are arriving.
    Streaming,
    /// The source failed; the service retries.
    Disconnected { reason: String },
}

/// One event as `/api/events` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct EventRecord {
    /// Increases by one per event: clients can tell which they have seen.
    pub id: u64,
    /// The camera it happened on; `None` for events of no camera (an HTTP enrollment).
    pub camera: Option<String>,
    /// Unix seconds when it was recorded.
    pub at: f64,
    #[serde(flatten)]
    pub event: PipelineEvent,
}

/// A camera's status line for `/health`.
#[derive(Clone, Debug, Serialize)]
pub struct CameraHealth {
    pub name: String,
    pub status: CameraStatus,
    /// Frames published since start.
    pub frames: u64,
    /// Seconds since the newest frame was published; `None` before the first.
    pub last_frame_age_s: Option<f64>,
    /// Live streams open on this camera now.
    pub viewers: usize,
}

/// An encoded overlay snapshot of a camera's newest frame.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub jpeg: Bytes,
    /// Publication counter of the frame it shows (increases by one per published frame).
    pub version: u64,
    /// The source's sequence number of that frame.
    pub frame_seq: u64,
}

/// The newest frame of a camera, shared with encoders while they work on it.
struct Latest {
    version: u64,
    frame_seq: u64,
    image: RgbImage,
    faces: Vec<FaceInView>,
}

/// Everything kept per camera.
struct Slot {
    state: Mutex<SlotState>,
    /// Carries the newest published version: MJPEG streams wait on it.
    version_tx: watch::Sender<u64>,
    /// One overlay encode at a time per camera; concurrent viewers wait and then reuse its result.
    encoding: tokio::sync::Mutex<()>,
}

struct SlotState {
    latest: Option<Arc<Latest>>,
    /// The most recent overlay JPEG (possibly of an older frame than `latest`): streams that have sent
    /// an even older one can take it without waiting for a new encoding.
    jpeg: Option<Snapshot>,
    status: CameraStatus,
    /// The most recent decision on this camera and when it arrived.
    last_decision: Option<(Decision, Instant)>,
    last_publish: Option<Instant>,
}

struct Inner {
    cameras: Mutex<HashMap<String, Arc<Slot>>>,
    events: Mutex<VecDeque<EventRecord>>,
    event_capacity: usize,
    next_event_id: Mutex<u64>,
    started: Instant,
}

/// The shared live state. Cheap to clone; every clone sees the same cameras and events.
#[derive(Clone)]
pub struct LiveView {
    inner: Arc<Inner>,
}

impl Default for LiveView {
    fn default() -> Self {
        Self::new(DEFAULT_EVENT_CAPACITY)
    }
}

/// A poisoned lock only means another thread panicked mid-update of plain data: keep serving.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl LiveView {
    /// A view keeping the `event_capacity` most recent events.
    pub fn new(event_capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                cameras: Mutex::new(HashMap::new()),
                events: Mutex::new(VecDeque::with_capacity(event_capacity.max(1))),
                event_capacity: event_capacity.max(1),
                next_event_id: Mutex::new(1),
                started: Instant::now(),
            }),
        }
    }

    /// Declare a camera before its first frame (so it is listed and known, with status `starting`).
    pub fn add_camera(&self, camera: &str) {
        self.slot_or_insert(camera);
    }

    /// Record the camera's status (a source failing, recovering).
    /// Sets a camera's status, shown by the unauthenticated `/health`: a reason quoting a URL is redacted
    /// here too ([`crate::config::redact_urls`]), whoever built it.
    pub fn set_camera_status(&self, camera: &str, status: CameraStatus) {
        let status = match status {
            CameraStatus::Disconnected { reason } => CameraStatus::Disconnected {
                reason: crate::config::redact_urls(&reason),
            },
            other => other,
        };
        lock(&self.slot_or_insert(camera).state).status = status;
    }

    /// Publish a processed frame: keep it and its report as the camera's newest, record the report's events
    /// (use [`LiveView::push_event`] only for events outside frames), and wake the live streams.
    pub fn publish_frame(&self, camera: &str, frame: &Frame, report: &FrameReport) {
        let slot = self.slot_or_insert(camera);
        let version = {
            let mut st = lock(&slot.state);
            let version = st.latest.as_ref().map_or(1, |l| l.version + 1);
            let reused = st
                .latest
                .as_mut()
                .and_then(Arc::get_mut)
                .filter(|l| l.image.dimensions() == frame.image.dimensions());
            match reused {
                // Nobody is encoding the previous frame: overwrite its buffers, no allocation.
                Some(l) => {
                    l.image.copy_from_slice(&frame.image);
                    l.faces.clone_from(&report.faces);
                    l.version = version;
                    l.frame_seq = frame.seq;
                }
                None => {
                    st.latest = Some(Arc::new(Latest {
                        version,
                        frame_seq: frame.seq,
                        image: frame.image.clone(),
                        faces: report.faces.clone(),
                    }))
                }
            }
            st.status = CameraStatus::Streaming;
            st.last_publish = Some(Instant::now());
            version
        };
        for event in &report.events {
            self.push_event(camera, event);
        }
        slot.version_tx.send_replace(version);
    }

    /// Record an event of `camera` in the ring of recent events.
    pub fn push_event(&self, camera: &str, event: &PipelineEvent) {
        if let PipelineEvent::Decision { decision, .. } = event {
            let slot = self.slot_or_insert(camera);
            lock(&slot.state).last_decision = Some((decision.clone(), Instant::now()));
        }
        self.record(Some(camera.to_string()), event.clone());
    }

    /// Record an event that belongs to no camera (an enrollment by upload).
    pub fn push_global_event(&self, event: PipelineEvent) {
        self.record(None, event);
    }

    fn record(&self, camera: Option<String>, event: PipelineEvent) {
        let id = {
            let mut next = lock(&self.inner.next_event_id);
            let id = *next;
            *next += 1;
            id
        };
        let mut ring = lock(&self.inner.events);
        if ring.len() == self.inner.event_capacity {
            ring.pop_front();
        }
        ring.push_back(EventRecord {
            id,
            camera,
            at: unix_now(),
            event,
        });
    }

    /// The `limit` most recent events, newest first, optionally of one camera.
    pub fn recent_events(&self, limit: usize, camera: Option<&str>) -> Vec<EventRecord> {
        let ring = lock(&self.inner.events);
        ring.iter()
            .rev()
            .filter(|r| camera.is_none_or(|c| r.camera.as_deref() == Some(c)))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Capacity of the event ring.
    pub fn event_capacity(&self) -> usize {
        self.inner.event_capacity
    }

    /// Camera names, sorted.
    pub fn cameras(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.inner.cameras).keys().cloned().collect();
        names.sort();
        names
    }

    /// Status of every camera, sorted by name.
    pub fn health(&self) -> Vec<CameraHealth> {
        let cameras = lock(&self.inner.cameras);
        let mut out: Vec<CameraHealth> = cameras
            .iter()
            .map(|(name, slot)| {
                let st = lock(&slot.state);
                CameraHealth {
                    name: name.clone(),
                    status: st.status.clone(),
                    frames: st.latest.as_ref().map_or(0, |l| l.version),
                    last_frame_age_s: st.last_publish.map(|t| t.elapsed().as_secs_f64()),
                    viewers: slot.version_tx.receiver_count(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Seconds since the view was created (the server's uptime).
    pub fn uptime_s(&self) -> f64 {
        self.inner.started.elapsed().as_secs_f64()
    }

    /// A receiver of the camera's newest published version (0 before the first frame).
    pub(crate) fn subscribe(&self, camera: &str) -> Result<watch::Receiver<u64>, ViewError> {
        Ok(self.slot(camera)?.version_tx.subscribe())
    }

    /// The overlay JPEG of the camera's newest frame, encoded now if no viewer has asked for this frame yet.
    /// The encoding runs on tokio's blocking pool, never on the async workers.
    pub async fn snapshot(&self, camera: &str) -> Result<Snapshot, ViewError> {
        self.encoded(camera, None).await
    }

    /// An overlay JPEG of a frame newer than version `last`, for a live stream: the one already encoded
    /// when it is newer (viewers who ask at different moments share encodings instead of each encoding the
    /// newest frame), else the newest frame, encoded now.
    pub(crate) async fn frame_after(&self, camera: &str, last: u64) -> Result<Snapshot, ViewError> {
        self.encoded(camera, Some(last)).await
    }

    async fn encoded(&self, camera: &str, after: Option<u64>) -> Result<Snapshot, ViewError> {
        let slot = self.slot(camera)?;
        if let Some(s) = cached(&slot, camera, after)? {
            return Ok(s);
        }
        let _encoding = slot.encoding.lock().await;
        // Another viewer may have encoded a frame we can use while we waited.
        if let Some(s) = cached(&slot, camera, after)? {
            return Ok(s);
        }
        let (latest, decision) = {
            let st = lock(&slot.state);
            let latest = st
                .latest
                .clone()
                .ok_or_else(|| ViewError::NoFrameYet(camera.into()))?;
            let decision = st
                .last_decision
                .as_ref()
                .map(|(d, t)| (d.clone(), t.elapsed().as_secs_f64()));
            (latest, decision)
        };
        let name = camera.to_string();
        let job = latest.clone();
        let jpeg = tokio::task::spawn_blocking(move || {
            let info = OverlayInfo {
                camera: &name,
                frame: job.frame_seq,
                faces: &job.faces,
                last_decision: decision.as_ref().map(|(d, ago)| (d, *ago)),
            };
            overlay::render_jpeg(&job.image, &info)
        })
        .await
        .map_err(|e| ViewError::Encode(e.to_string()))?
        .map_err(ViewError::Encode)?;
        let snapshot = Snapshot {
            jpeg: Bytes::from(jpeg),
            version: latest.version,
            frame_seq: latest.frame_seq,
        };
        lock(&slot.state).jpeg = Some(snapshot.clone());
        Ok(snapshot)
    }

    fn slot(&self, camera: &str) -> Result<Arc<Slot>, ViewError> {
        lock(&self.inner.cameras)
            .get(camera)
            .cloned()
            .ok_or_else(|| ViewError::UnknownCamera(camera.into()))
    }

    fn slot_or_insert(&self, camera: &str) -> Arc<Slot> {
        let mut cameras = lock(&self.inner.cameras);
        if let Some(slot) = cameras.get(camera) {
            return slot.clone();
        }
        let slot = Arc::new(Slot {
            state: Mutex::new(SlotState {
                latest: None,
                jpeg: None,
                status: CameraStatus::Starting,
                last_decision: None,
                last_publish: None,
            }),
            version_tx: watch::Sender::new(0),
            encoding: tokio::sync::Mutex::new(()),
        });
        cameras.insert(camera.to_string(), slot.clone());
        slot
    }
}

/// The cached overlay if it will do: of the newest frame (`after` = `None`), or of any frame newer than
/// version `after`.
fn cached(slot: &Slot, camera: &str, after: Option<u64>) -> Result<Option<Snapshot>, ViewError> {
    let st = lock(&slot.state);
    let latest = st
        .latest
        .as_ref()
        .ok_or_else(|| ViewError::NoFrameYet(camera.into()))?;
    Ok(st
        .jpeg
        .as_ref()
        .filter(|s| match after {
            None => s.version == latest.version,
            Some(last) => s.version > last,
        })
        .cloned())
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
