//! One camera's thread: open the source (retrying with backoff while it fails), run every frame through the
//! [`Pipeline`], and fan each report out: to Home Assistant (the bridge, with a JPEG crop of the face a
//! decision is about), the audit log, the gate's ESPHome drivers (on a grant; their outcome goes to the audit
//! row and to HA) and the HTTP live view. HA's enrollment requests arrive on the command channel between
//! frames.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use image::RgbImage;

use crate::audit::Audit;
use crate::capture::{self, CaptureError, Frame};
use crate::config::SourceConfig;
use crate::decide::{Decision, Verdict};
use crate::esphome::driver::GateActuator;
use crate::ha::bridge::{BridgeInput, BridgeSender, CameraCommand};
use crate::http::{CameraStatus, LiveView};
use crate::pipeline::{FrameReport, Pipeline, PipelineEvent};

const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);
/// Largest side of the face crop sent to HA (a notification picture, not an archive).
const CROP_MAX: u32 = 256;

/// Everything one camera thread owns or shares.
pub struct CameraContext {
    /// The camera's name (live view key) and its HA device slug.
    pub name: String,
    pub device: String,
    pub source: SourceConfig,
    pub pipeline: Pipeline,
    pub commands: Receiver<CameraCommand>,
    pub bridge: BridgeSender,
    pub view: LiveView,
    pub audit: Option<Arc<Mutex<Audit>>>,
    /// The gate's drivers and the runtime they run on.
    pub actuator: Option<(GateActuator, tokio::runtime::Handle)>,
    pub stop: Arc<AtomicBool>,
}

impl CameraContext {
    fn status(&self, status: CameraStatus) {
        let text = match &status {
            CameraStatus::Starting => "starting".to_string(),
            CameraStatus::Streaming => "streaming".to_string(),
            CameraStatus::Disconnected { reason } => {
                // HA keeps at most 255 characters of a state.
                let r: String = reason.chars().take(200).collect();
                format!("disconnected: {r}")
            }
        };
        self.view.set_camera_status(&self.name, status);
        self.bridge.send(BridgeInput::Camera {
            device: self.device.clone(),
            status: text,
        });
    }

    fn sleep(&self, d: Duration) {
        let end = std::time::Instant::now() + d;
        while !self.stop.load(Ordering::SeqCst) && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs until `stop` is set or a finite source (a replay without looping) ends.
pub fn run_camera(mut cx: CameraContext) {
    let mut retry = FIRST_RETRY;
    cx.status(CameraStatus::Starting);
    'open: while !cx.stop.load(Ordering::SeqCst) {
        let mut source = match capture::open(&cx.source) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(camera = %cx.name, "cannot open the source: {e}; retrying in {} s", retry.as_secs());
                cx.status(CameraStatus::Disconnected {
                    reason: e.to_string(),
                });
                cx.sleep(retry);
                retry = (retry * 2).min(MAX_RETRY);
                continue;
            }
        };
        let mut streaming = false;
        while !cx.stop.load(Ordering::SeqCst) {
            while let Ok(cmd) = cx.commands.try_recv() {
                match cmd {
                    CameraCommand::Enroll { name } => {
                        tracing::info!(camera = %cx.name, name, "enrolling the face in view");
                        cx.pipeline.request_enrollment(name);
                    }
                    // The pipeline keeps no unknown faces beyond their track; HA's copy is cleared by the bridge.
                    CameraCommand::ForgetUnknown => {}
                }
            }
            match source.next_frame() {
                Ok(Some(frame)) => {
                    if !streaming {
                        streaming = true;
                        retry = FIRST_RETRY;
                        cx.status(CameraStatus::Streaming);
                    }
                    handle_frame(&mut cx, &frame);
                }
                Ok(None) => {
                    tracing::info!(camera = %cx.name, "the source ended");
                    let events = cx.pipeline.finish();
                    send_report(
                        &cx,
                        FrameReport {
                            events,
                            ..FrameReport::default()
                        },
                        None,
                    );
                    cx.bridge.send(BridgeInput::Camera {
                        device: cx.device.clone(),
                        status: "ended".into(),
                    });
                    return;
                }
                Err(CaptureError::BadFrame { reason, .. }) => {
                    tracing::warn!(camera = %cx.name, "skipping a bad frame: {reason}");
                }
                Err(e) => {
                    tracing::warn!(camera = %cx.name, "source failed: {e}; reopening in {} s", retry.as_secs());
                    cx.status(CameraStatus::Disconnected {
                        reason: e.to_string(),
                    });
                    cx.sleep(retry);
                    retry = (retry * 2).min(MAX_RETRY);
                    continue 'open;
                }
            }
        }
    }
}

fn handle_frame(cx: &mut CameraContext, frame: &Frame) {
    let report = match cx.pipeline.process(frame) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(camera = %cx.name, frame = frame.seq, "frame not processed: {e}");
            return;
        }
    };
    let mut jpeg = None;
    let mut decided = Vec::new();
    for e in &report.events {
        let PipelineEvent::Decision { decision, .. } = e else {
            continue;
        };
        if jpeg.is_none() {
            jpeg = face_jpeg(&frame.image, &report, decision.track_id);
        }
        let audit_id = cx.audit.as_ref().and_then(|a| {
            let mut a = a.lock().unwrap_or_else(|e| e.into_inner());
            a.record(decision)
                .map_err(|e| tracing::warn!("audit row not written: {e}"))
                .ok()
        });
        decided.push((decision.clone(), audit_id));
    }
    cx.view.publish_frame(&cx.name, frame, &report);
    // The report (with the access events) goes to the bridge before the actions start, so HA hears of a
    // decision before its actions' outcomes (a board confirms in well under a millisecond: actuating first
    // let the gate event overtake the access event). Both are channel sends and a frame copy: no delay.
    send_report(cx, report, jpeg);
    for (decision, audit_id) in &decided {
        actuate(cx, decision, *audit_id);
    }
}

fn send_report(cx: &CameraContext, report: FrameReport, face_jpeg: Option<Vec<u8>>) {
    cx.bridge.send(BridgeInput::Report {
        device: cx.device.clone(),
        report,
        face_jpeg,
    });
}

/// Carries out a grant on the gate's board (asynchronously); the outcome is audited and sent to HA.
fn actuate(cx: &CameraContext, decision: &Decision, audit_id: Option<i64>) {
    let Some((actuator, rt)) = &cx.actuator else {
        return;
    };
    if !matches!(&decision.verdict, Verdict::Granted { actions } if !actions.is_empty()) {
        return;
    }
    let (actuator, d, bridge, device) = (
        actuator.clone(),
        decision.clone(),
        cx.bridge.clone(),
        cx.device.clone(),
    );
    let audit = cx.audit.clone();
    rt.spawn(async move {
        let outcomes = actuator.act(&d).await;
        // One write with every action's outcome (a JSON list): a write per action would leave only the last
        // (the lift's) in the row, losing the lock's.
        if let (Some(a), Some(id)) = (&audit, audit_id) {
            let text = serde_json::to_string(&outcomes).unwrap_or_default();
            let mut a = a.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = a.set_outcome(id, &text) {
                tracing::warn!("audit outcome not written: {e}");
            }
        }
        for outcome in outcomes {
            bridge.send(BridgeInput::Gate {
                device: device.clone(),
                outcome,
                person: d.person.clone(),
                track: d.track_id,
            });
        }
    });
}

/// A JPEG of the face of `track` (its box plus a quarter margin, at most [`CROP_MAX`] pixels a side).
pub fn face_jpeg(image: &RgbImage, report: &FrameReport, track: u64) -> Option<Vec<u8>> {
    let face = report.faces.iter().find(|f| f.track == track)?;
    let [x, y, w, h] = face.bbox;
    let (iw, ih) = (image.width() as f32, image.height() as f32);
    let m = 0.25 * w.max(h);
    let x0 = (x - m).clamp(0.0, iw - 1.0);
    let y0 = (y - m).clamp(0.0, ih - 1.0);
    let x1 = (x + w + m).clamp(x0 + 1.0, iw);
    let y1 = (y + h + m).clamp(y0 + 1.0, ih);
    let crop = image::imageops::crop_imm(
        image,
        x0 as u32,
        y0 as u32,
        (x1 - x0) as u32,
        (y1 - y0) as u32,
    )
    .to_image();
    let crop = if crop.width().max(crop.height()) > CROP_MAX {
        let s = CROP_MAX as f32 / crop.width().max(crop.height()) as f32;
        image::imageops::resize(
            &crop,
            ((crop.width() as f32 * s) as u32).max(1),
            ((crop.height() as f32 * s) as u32).max(1),
            image::imageops::FilterType::Triangle,
        )
    } else {
        crop
    };
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&crop)
        .ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::FaceInView;

    #[test]
    fn face_crop_is_clamped_and_bounded() {
        let img = RgbImage::from_pixel(640, 480, image::Rgb([10, 20, 30]));
        let report = FrameReport {
            faces: vec![FaceInView {
                track: 3,
                bbox: [600.0, 400.0, 300.0, 300.0],
                person: None,
                blinks: 0,
                live: None,
            }],
            ..FrameReport::default()
        };
        assert!(face_jpeg(&img, &report, 4).is_none());
        let jpeg = face_jpeg(&img, &report, 3).unwrap();
        let back = image::load_from_memory(&jpeg).unwrap();
        // From (525, 325) to the image's corner: 115 x 155, under the size limit.
        assert_eq!((back.width(), back.height()), (115, 155));
    }
}
