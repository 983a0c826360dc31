//! V4L2 cameras (USB webcams, capture cards): MJPEG or YUYV, memory-mapped streaming, reopened after the
//! device disappears (unplugged, driver reset) and comes back.
//!
//! A reader thread owns the device and feeds a [`LatestSource`] mailbox, so the pipeline always takes the
//! newest frame. MJPEG is preferred when the camera offers it (far less USB bandwidth, decoded only when the
//! pipeline takes the frame); YUYV is converted to RGB. The size and rate are the nearest the device offers
//! to the configured ones; what was negotiated is logged and readable through [`V4l2Source::negotiated`].

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use v4l::buffer::Type;
use v4l::framesize::FrameSizeEnum;
use v4l::io::traits::CaptureStream;
use v4l::video::capture::Parameters;
use v4l::video::Capture;
use v4l::{Device, Format, FourCC};

use super::latest::{LatestSource, Mailbox, Payload};
use super::mjpeg::jpeg_len;
use super::{CaptureError, Frame, FrameSource};

/// What to ask the camera for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V4l2Options {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

/// What the camera agreed to.
#[derive(Clone, Debug, PartialEq)]
pub struct Negotiated {
    /// `MJPG` or `YUYV`.
    pub fourcc: String,
    pub width: u32,
    pub height: u32,
    /// Frames per second the driver reports (0 when it does not say).
    pub fps: f32,
}

/// Reconnect backoff: from the first to the longest wait, doubling.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a dequeue waits before checking whether the source was dropped.
const POLL: Duration = Duration::from_millis(500);
/// A camera silent for this long is treated as gone (some hang until reopened).
const STALL: Duration = Duration::from_secs(5);

/// A V4L2 camera as a [`FrameSource`].
pub struct V4l2Source {
    inner: LatestSource,
    negotiated: Arc<Mutex<Option<Negotiated>>>,
}

impl V4l2Source {
    /// Starts capturing from `device`. A device that is missing or unusable now is not an error here: the
    /// reader keeps retrying, and each failure is reported once by `next_frame` as `Disconnected`.
    pub fn open(device: &Path, opts: V4l2Options) -> Result<V4l2Source, CaptureError> {
        let negotiated = Arc::new(Mutex::new(None));
        let path = device.to_path_buf();
        let shared = negotiated.clone();
        let inner = LatestSource::spawn(device.display().to_string(), move |mb| {
            run(&path, opts, &mb, &shared)
        })?;
        Ok(V4l2Source { inner, negotiated })
    }

    /// The format of the current (or last) capture session, once one started.
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.negotiated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// See [`LatestSource::next_frame_timeout`].
    pub fn next_frame_timeout(&mut self, timeout: Duration) -> Result<Option<Frame>, CaptureError> {
        self.inner.next_frame_timeout(timeout)
    }
}

impl FrameSource for V4l2Source {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        self.inner.next_frame()
    }
    fn dropped(&self) -> u64 {
        self.inner.dropped()
    }
}

/// The reader thread: open, stream until the device fails, report it, wait, reopen.
fn run(path: &Path, opts: V4l2Options, mb: &Mailbox, negotiated: &Mutex<Option<Negotiated>>) {
    let name = path.display().to_string();
    let mut backoff = BACKOFF_FIRST;
    let mut last_reason = String::new();
    while !mb.is_closed() {
        let (reason, unusable) = match session(path, opts, mb, negotiated) {
            Ok(()) => return, // the consumer is gone
            Err(Failure {
                reason,
                streamed,
                unusable,
            }) => {
                if streamed {
                    backoff = BACKOFF_FIRST;
                    last_reason.clear();
                }
                (reason, unusable)
            }
        };
        // One report per outage, not one per retry.
        if reason != last_reason {
            tracing::warn!(device = %name, "{reason}; retrying");
            let error = if unusable {
                CaptureError::Other {
                    source_name: name.clone(),
                    reason: reason.clone(),
                }
            } else {
                CaptureError::Disconnected {
                    source_name: name.clone(),
                    reason: reason.clone(),
                }
            };
            if !mb.error(error) {
                return;
            }
            last_reason = reason;
        }
        if !mb.sleep(backoff) {
            return;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Why a session ended, and whether it delivered frames first (then the backoff starts over).
struct Failure {
    reason: String,
    streamed: bool,
    /// The device is there but cannot be used as configured (pixel format): `Other`, not `Disconnected`.
    unusable: bool,
}

fn fail(reason: String) -> Failure {
    Failure {
        reason,
        streamed: false,
        unusable: false,
    }
}

/// One open-configure-stream session; returns Ok only when the consumer went away.
fn session(
    path: &Path,
    opts: V4l2Options,
    mb: &Mailbox,
    negotiated: &Mutex<Option<Negotiated>>,
) -> Result<(), Failure> {
    let dev = Device::with_path(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let got = configure(&dev, path, opts).map_err(|reason| Failure {
        unusable: true,
        ..fail(reason)
    })?;
    let yuyv = got.fourcc == "YUYV";
    let fmt = dev
        .format()
        .map_err(|e| fail(format!("cannot read the format back: {e}")))?;
    *negotiated.lock().unwrap_or_else(|p| p.into_inner()) = Some(got);
    let mut stream = v4l::io::mmap::Stream::with_buffers(&dev, Type::VideoCapture, 4)
        .map_err(|e| fail(format!("cannot map capture buffers: {e}")))?;
    stream.set_timeout(POLL);
    let mut streamed = false;
    let mut last_frame = Instant::now();
    loop {
        if mb.is_closed() {
            return Ok(());
        }
        let (buf, meta) = match stream.next() {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                if last_frame.elapsed() >= STALL {
                    return Err(Failure {
                        streamed,
                        ..fail(format!("no frame for {} s", STALL.as_secs()))
                    });
                }
                continue;
            }
            Err(e) => {
                return Err(Failure {
                    streamed,
                    ..fail(format!("capture failed: {e}"))
                })
            }
        };
        let (captured, wall) = (Instant::now(), SystemTime::now());
        last_frame = captured;
        streamed = true;
        let used = &buf[..(meta.bytesused as usize).min(buf.len())];
        let payload = if yuyv {
            Payload::Yuyv {
                width: fmt.width,
                height: fmt.height,
                stride: fmt.stride.max(2 * fmt.width),
                data: used.to_vec(),
            }
        } else {
            // Some drivers report the whole buffer as used: keep only the JPEG.
            Payload::Jpeg(used[..jpeg_len(used).unwrap_or(used.len())].to_vec())
        };
        if !mb.frame(payload, captured, wall) {
            return Ok(());
        }
    }
}

/// Picks MJPEG (else YUYV), the nearest offered size and rate, and sets them.
fn configure(dev: &Device, path: &Path, opts: V4l2Options) -> Result<Negotiated, String> {
    let formats = dev
        .enum_formats()
        .map_err(|e| format!("cannot list formats: {e}"))?;
    let offered: Vec<FourCC> = formats.iter().map(|f| f.fourcc).collect();
    let Some(fourcc) = [b"MJPG", b"YUYV"]
        .into_iter()
        .map(FourCC::new)
        .find(|f| offered.contains(f))
    else {
        let names: Vec<String> = offered.iter().map(|f| f.to_string()).collect();
        return Err(format!(
            "the device offers none of the pixel formats facegate reads (MJPG, YUYV), only [{}]",
            names.join(", ")
        ));
    };
    let (width, height) = nearest_size(dev, fourcc, opts.width, opts.height);
    let set = dev
        .set_format(&Format::new(width, height, fourcc))
        .map_err(|e| format!("cannot set the format: {e}"))?;
    if set.fourcc != fourcc {
        return Err(format!(
            "the device switched to pixel format {} when asked for {fourcc}",
            set.fourcc
        ));
    }
    // Not every driver lets the rate be set; what it reports is logged either way.
    let _ = dev.set_params(&Parameters::with_fps(opts.fps.max(1)));
    let fps = dev
        .params()
        .ok()
        .filter(|p| p.interval.numerator > 0)
        .map_or(0.0, |p| {
            p.interval.denominator as f32 / p.interval.numerator as f32
        });
    let got = Negotiated {
        fourcc: fourcc.to_string(),
        width: set.width,
        height: set.height,
        fps,
    };
    tracing::info!(
        device = %path.display(),
        "capturing {} {}x{} at {:.1} fps (asked {}x{} at {} fps)",
        got.fourcc, got.width, got.height, got.fps, opts.width, opts.height, opts.fps
    );
    Ok(got)
}

/// The offered size nearest to the wanted one (by the sum of width and height differences); the wanted one
/// itself when the device does not list sizes (the driver then adjusts it).
fn nearest_size(dev: &Device, fourcc: FourCC, width: u32, height: u32) -> (u32, u32) {
    let Ok(sizes) = dev.enum_framesizes(fourcc) else {
        return (width, height);
    };
    let mut best: Option<(u32, u32)> = None;
    let cost = |(w, h): (u32, u32)| w.abs_diff(width) + h.abs_diff(height);
    for size in sizes {
        let candidate = match size.size {
            FrameSizeEnum::Discrete(d) => (d.width, d.height),
            FrameSizeEnum::Stepwise(s) => (
                clamp_step(width, s.min_width, s.max_width, s.step_width),
                clamp_step(height, s.min_height, s.max_height, s.step_height),
            ),
        };
        if best.is_none_or(|b| cost(candidate) < cost(b)) {
            best = Some(candidate);
        }
    }
    best.unwrap_or((width, height))
}

fn clamp_step(want: u32, min: u32, max: u32, step: u32) -> u32 {
    let v = want.clamp(min, max.max(min));
    let step = step.max(1);
    (min + (v - min + step / 2) / step * step).min(max.max(min))
}
