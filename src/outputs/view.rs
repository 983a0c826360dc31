//! The live view output: keeps the HTTP server's [`LiveView`] current.
//!
//! Frames come through a latest-only [`watch`] per camera ([`FrameFeed`]): the camera thread replaces the
//! newest frame, the view copies it when it gets to it, and a view that falls behind skips frames rather than
//! holding a backlog of images. Pipeline events and camera states come from the bus, in order.

use std::sync::Arc;

use tokio::sync::{broadcast, broadcast::error::RecvError, watch};
use tokio::task::JoinHandle;

use super::ServiceEvent;
use crate::capture::Frame;
use crate::http::{CameraStatus, LiveView};
use crate::pipeline::FrameReport;

use super::CameraState;

/// A processed frame for the view: the image and the faces in it (its events travel on the bus).
pub struct ViewFrame {
    pub frame: Frame,
    pub report: FrameReport,
}

/// The camera thread's end of its live-view feed.
pub struct FrameFeed(watch::Sender<Option<Arc<ViewFrame>>>);

impl FrameFeed {
    /// Replaces the newest frame (the events of `report` are not kept here: they are on the bus).
    pub fn publish(&self, frame: Frame, report: &FrameReport) {
        let report = FrameReport {
            frame: report.frame,
            faces: report.faces.clone(),
            events: Vec::new(),
            latency_s: report.latency_s,
        };
        self.0
            .send_replace(Some(Arc::new(ViewFrame { frame, report })));
    }
}

/// Starts the view's tasks for `cameras` (names as the view knows them); returns each camera's feed.
pub fn start(
    view: &LiveView,
    cameras: &[String],
    events: broadcast::Receiver<ServiceEvent>,
) -> (Vec<FrameFeed>, Vec<JoinHandle<()>>) {
    let mut feeds = Vec::new();
    let mut tasks = Vec::new();
    for name in cameras {
        view.add_camera(name);
        let (tx, rx) = watch::channel(None);
        feeds.push(FrameFeed(tx));
        tasks.push(tokio::spawn(frames(view.clone(), name.clone(), rx)));
    }
    tasks.push(tokio::spawn(listen(view.clone(), events)));
    (feeds, tasks)
}

async fn frames(view: LiveView, name: String, mut rx: watch::Receiver<Option<Arc<ViewFrame>>>) {
    while rx.changed().await.is_ok() {
        let latest = rx.borrow_and_update().clone();
        if let Some(f) = latest {
            view.publish_frame(&name, &f.frame, &f.report);
        }
    }
}

async fn listen(view: LiveView, mut events: broadcast::Receiver<ServiceEvent>) {
    loop {
        match events.recv().await {
            Ok(ServiceEvent::Frame { camera, report }) => {
                for e in &report.events {
                    view.push_event(&camera.name, e);
                }
            }
            Ok(ServiceEvent::Camera { camera, state }) => {
                let status = match state {
                    CameraState::Starting => CameraStatus::Starting,
                    CameraState::Streaming => CameraStatus::Streaming,
                    CameraState::Disconnected { reason } => CameraStatus::Disconnected { reason },
                    CameraState::Ended => continue,
                };
                view.set_camera_status(&camera.name, status);
            }
            Ok(_) => {}
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "live view fell behind: events missing from its list"
                )
            }
            Err(RecvError::Closed) => return,
        }
    }
}
