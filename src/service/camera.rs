//! One camera's thread: open the source (retrying with backoff while it fails), run every frame through the
//! [`Pipeline`] and publish what came out: on the service's [`Bus`] (decisions with a JPEG crop of the face
//! they are about, the frame's report, the camera's state) and the newest frame on the live view's feed. The
//! thread only produces; the outputs ([`crate::outputs`]) listen. HA's enrollment requests arrive on the
//! command channel between frames.

use std::sync::mpsc::Receiver;
use std::time::Duration;

use image::RgbImage;
use tokio_util::sync::CancellationToken;

use crate::capture::{self, CaptureError, Frame, FrameSource};
use crate::config::SourceConfig;
use crate::ha::bridge::CameraCommand;
use crate::outputs::view::FrameFeed;
use crate::outputs::{Bus, CameraId, CameraState};
use crate::pipeline::{FrameReport, Pipeline, PipelineEvent};

const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);
/// Largest side of the face crop sent to HA (a notification picture, not an archive).
const CROP_MAX: u32 = 256;

/// Opens a camera's frame source (called again after the source failed).
pub type SourceFactory = Box<dyn FnMut() -> Result<Box<dyn FrameSource>, CaptureError> + Send>;

/// The factory of a configured source.
pub fn configured_source(source: SourceConfig) -> SourceFactory {
    Box::new(move || capture::open(&source))
}

/// Everything one camera thread owns or shares.
pub struct CameraContext {
    pub camera: CameraId,
    pub open: SourceFactory,
    pub pipeline: Pipeline,
    pub commands: Receiver<CameraCommand>,
    pub bus: Bus,
    pub feed: FrameFeed,
    pub stop: CancellationToken,
    /// The service's runtime (the thread waits on `stop` through it).
    pub rt: tokio::runtime::Handle,
}

impl CameraContext {
    fn state(&self, state: CameraState) {
        self.bus.camera_state(&self.camera, state);
    }

    /// Sleeps `d`, or less when the service stops.
    fn sleep(&self, d: Duration) {
        let stop = self.stop.clone();
        self.rt.block_on(async move {
            let _ = tokio::time::timeout(d, stop.cancelled()).await;
        });
    }
}

/// Runs until `stop` is cancelled or a finite source (a replay without looping) ends.
pub fn run_camera(mut cx: CameraContext) {
    let mut retry = FIRST_RETRY;
    let name = cx.camera.name.clone();
    cx.state(CameraState::Starting);
    'open: while !cx.stop.is_cancelled() {
        let mut source = match (cx.open)() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(camera = %name, "cannot open the source: {e}; retrying in {} s", retry.as_secs());
                cx.state(CameraState::Disconnected {
                    reason: e.to_string(),
                });
                cx.sleep(retry);
                retry = (retry * 2).min(MAX_RETRY);
                continue;
            }
        };
        let mut streaming = false;
        while !cx.stop.is_cancelled() {
            while let Ok(cmd) = cx.commands.try_recv() {
                match cmd {
                    CameraCommand::Enroll { name: person } => {
                        tracing::info!(camera = %name, name = person, "enrolling the face in view");
                        cx.pipeline.request_enrollment(person);
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
                        cx.state(CameraState::Streaming);
                    }
                    handle_frame(&mut cx, frame);
                }
                Ok(None) => {
                    tracing::info!(camera = %name, "the source ended");
                    let events = cx.pipeline.finish();
                    let report = FrameReport {
                        events,
                        ..FrameReport::default()
                    };
                    cx.bus.report(&cx.camera, report, None);
                    cx.state(CameraState::Ended);
                    return;
                }
                Err(CaptureError::BadFrame { reason, .. }) => {
                    tracing::warn!(camera = %name, "skipping a bad frame: {reason}");
                }
                Err(e) => {
                    tracing::warn!(camera = %name, "source failed: {e}; reopening in {} s", retry.as_secs());
                    cx.state(CameraState::Disconnected {
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

fn handle_frame(cx: &mut CameraContext, frame: Frame) {
    let report = match cx.pipeline.process(&frame) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(camera = %cx.camera.name, frame = frame.seq, "frame not processed: {e}");
            return;
        }
    };
    // The crop of the first decision's face, for HA's image entity.
    let jpeg = report.events.iter().find_map(|e| match e {
        PipelineEvent::Decision { decision, .. } => Some(decision.track_id),
        _ => None,
    });
    let jpeg = jpeg.and_then(|track| face_jpeg(&frame.image, &report, track));
    cx.feed.publish(frame, &report);
    // Decisions go out first (the gate output starts a grant's actions the moment it reads one), then the
    // frame's report.
    cx.bus.report(&cx.camera, report, jpeg);
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
