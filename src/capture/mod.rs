//! Frame sources: where images come from (V4L2 camera, HTTP MJPEG / snapshot, replay of files).
//!
//! Every source sits behind [`FrameSource`]. The pipeline pulls the newest frame when it is ready for one;
//! a source drops frames that arrived in between (and counts them) rather than queueing them, so inference
//! never works through a backlog.

use std::time::{Duration, Instant, SystemTime};

use image::RgbImage;

pub mod http;
pub mod latest;
pub mod mjpeg;
pub mod pixels;
pub mod replay;
#[cfg(target_os = "linux")]
pub mod v4l2;

pub use latest::{LatestSource, Mailbox, Payload};
pub use replay::{Pace, ReplayOptions, ReplaySource};

use crate::config::{redact_urls, SourceConfig};

/// One decoded camera frame.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Sequence number within the source, counting dropped frames too.
    pub seq: u64,
    /// When the frame was captured (monotonic, for latency measurements).
    pub captured: Instant,
    /// Media time since the source started: capture time for live sources, `seq / fps` for a replay (so a
    /// replay run faster than real time still sees blinks, windows and cooldowns at their real durations).
    /// The pipeline measures every duration on this clock.
    pub pts: Duration,
    /// Wall-clock capture time (for audit and events).
    pub wall: SystemTime,
    pub image: RgbImage,
}

/// Why a source could not deliver a frame.
///
/// Its text reaches the log, `/health` and the camera's retained state on MQTT, so `Display` and `Debug` pass
/// every URL in it through [`crate::config::redact_urls`]: a camera password never shows, even if a source
/// put a raw URL into a name or a reason.
#[derive(thiserror::Error)]
pub enum CaptureError {
    /// The device or stream is gone; the caller may reopen it later.
    #[error(
        "source {} disconnected: {}",
        redact_urls(source_name),
        redact_urls(reason)
    )]
    Disconnected { source_name: String, reason: String },
    /// One frame could not be decoded; the next may be fine.
    #[error(
        "source {}: bad frame: {}",
        redact_urls(source_name),
        redact_urls(reason)
    )]
    BadFrame { source_name: String, reason: String },
    #[error("source {}: {}", redact_urls(source_name), redact_urls(reason))]
    Other { source_name: String, reason: String },
}

impl std::fmt::Debug for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, source_name, reason) = match self {
            CaptureError::Disconnected {
                source_name,
                reason,
            } => ("Disconnected", source_name, reason),
            CaptureError::BadFrame {
                source_name,
                reason,
            } => ("BadFrame", source_name, reason),
            CaptureError::Other {
                source_name,
                reason,
            } => ("Other", source_name, reason),
        };
        f.debug_struct(kind)
            .field("source_name", &redact_urls(source_name))
            .field("reason", &redact_urls(reason))
            .finish()
    }
}

/// A source of frames. `next_frame` blocks until a frame is available; `Ok(None)` means the source has ended
/// (a finite replay); live sources never end on their own.
pub trait FrameSource: Send {
    /// Human-readable name for logs and Home Assistant (e.g. `/dev/video0`).
    fn name(&self) -> &str;
    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError>;
    /// Frames that arrived but were skipped because a newer one replaced them.
    fn dropped(&self) -> u64 {
        0
    }
}

/// Opens the source a camera's configuration names. A replay configured for the service plays in real time,
/// like the camera it stands in for.
pub fn open(config: &SourceConfig) -> Result<Box<dyn FrameSource>, CaptureError> {
    match config {
        SourceConfig::Replay { path, fps, looped } => {
            let opts = ReplayOptions {
                fps: *fps as f32,
                pace: Pace::Realtime,
                looped: *looped,
            };
            Ok(Box::new(ReplaySource::open(path, opts)?))
        }
        #[cfg(target_os = "linux")]
        SourceConfig::V4l2 {
            device,
            width,
            height,
            fps,
        } => {
            let opts = v4l2::V4l2Options {
                width: *width,
                height: *height,
                fps: *fps,
            };
            Ok(Box::new(v4l2::V4l2Source::open(device, opts)?))
        }
        #[cfg(not(target_os = "linux"))]
        SourceConfig::V4l2 { device, .. } => Err(CaptureError::Other {
            source_name: device.display().to_string(),
            reason: "V4L2 cameras exist only on Linux".to_string(),
        }),
        SourceConfig::Http { url, fps } => Ok(Box::new(http::HttpSource::open(
            url.expose(),
            http::HttpOptions {
                snapshot_fps: *fps as f32,
                ..http::HttpOptions::default()
            },
        )?)),
    }
}
