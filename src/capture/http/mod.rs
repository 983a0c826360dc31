//! HTTP cameras (ESP32-CAM style): an MJPEG stream (`multipart/x-mixed-replace`) or a JPEG snapshot URL
//! polled at a set rate, reconnecting with backoff when the camera goes away.
//!
//! The client is a small blocking HTTP/1.1 client on `std::net::TcpStream` rather than hyper: the reader
//! runs on its own thread anyway (the pipeline pulls frames synchronously), cameras speak plain HTTP/1.1
//! (no TLS, no HTTP/2), and what matters here — multipart parsing, chunked bodies, per-read timeouts that
//! notice a dropped source — sits above what an HTTP library offers. Keeping capture off the async runtime
//! also means a stalled camera can never block it. The URL's first response decides the mode: a multipart
//! body is a stream, an `image/jpeg` body a snapshot URL.

mod wire;

use std::io::Read;
use std::time::{Duration, Instant, SystemTime};

use super::latest::{LatestSource, Mailbox, Payload};
use super::{CaptureError, Frame, FrameSource};
use crate::config::redact_url;
use wire::{Body, Response, Url};

/// How to read an HTTP camera.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HttpOptions {
    /// How often a snapshot URL is fetched (frames per second). Streams come at the camera's rate.
    pub snapshot_fps: f32,
    /// A camera that sends nothing for this long is treated as gone and reconnected.
    pub stall: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            snapshot_fps: 10.0,
            stall: Duration::from_secs(10),
        }
    }
}

/// Reconnect backoff: from the first to the longest wait, doubling while the camera stays away.
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Largest frame or response body accepted.
const MAX_BODY: usize = 32 << 20;

/// An HTTP camera as a [`FrameSource`].
pub struct HttpSource {
    inner: LatestSource,
}

impl HttpSource {
    /// Starts reading `url` (`http://[user:password@]host[:port]/path`). A malformed URL is an error now; a
    /// camera that cannot be reached is reported by `next_frame` (as `Disconnected`) while the reader retries.
    pub fn open(url: &str, opts: HttpOptions) -> Result<HttpSource, CaptureError> {
        // Every message about this source names it redacted: the URL may carry a password.
        let shown = redact_url(url);
        let parsed = Url::parse(url).map_err(|reason| CaptureError::Other {
            source_name: shown.clone(),
            reason,
        })?;
        if !(0.01..=1000.0).contains(&opts.snapshot_fps) {
            return Err(CaptureError::Other {
                source_name: shown,
                reason: format!(
                    "snapshot fps must be from 0.01 to 1000, got {}",
                    opts.snapshot_fps
                ),
            });
        }
        // The name never shows a password.
        let name = parsed.redacted();
        let inner = LatestSource::spawn(name.clone(), move |mb| run(&parsed, &name, opts, &mb))?;
        Ok(HttpSource { inner })
    }

    /// See [`LatestSource::next_frame_timeout`].
    pub fn next_frame_timeout(&mut self, timeout: Duration) -> Result<Option<Frame>, CaptureError> {
        self.inner.next_frame_timeout(timeout)
    }
}

impl FrameSource for HttpSource {
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

/// Why a connection ended.
enum End {
    /// The consumer is gone.
    Closed,
    /// Connection-level trouble (refused, reset, stalled, stream ended): `Disconnected`.
    Gone(String),
    /// The server answered, but not with a camera's answer (status, content type): `Other`.
    Refused(String),
}

/// The reader thread: connect, read frames until the connection ends, report it, back off, reconnect.
fn run(url: &Url, name: &str, opts: HttpOptions, mb: &Mailbox) {
    let mut backoff = BACKOFF_FIRST;
    let mut last_reason = String::new();
    loop {
        let mut delivered = false;
        let end = connection(url, name, opts, mb, &mut delivered);
        if delivered {
            backoff = BACKOFF_FIRST;
            last_reason.clear();
        }
        let (error, reason) = match end {
            End::Closed => return,
            End::Gone(reason) => (
                CaptureError::Disconnected {
                    source_name: name.to_string(),
                    reason: reason.clone(),
                },
                reason,
            ),
            End::Refused(reason) => (
                CaptureError::Other {
                    source_name: name.to_string(),
                    reason: reason.clone(),
                },
                reason,
            ),
        };
        // One report per outage, not one per retry.
        if reason != last_reason {
            tracing::warn!(camera = %name, "{reason}; reconnecting");
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

/// One connection: a stream read to its end, or a snapshot URL polled until a request fails.
fn connection(url: &Url, name: &str, opts: HttpOptions, mb: &Mailbox, delivered: &mut bool) -> End {
    let mut next_poll = Instant::now();
    loop {
        let response = match wire::get(url, mb, opts.stall) {
            Ok(r) => r,
            Err(e) => return classify(e, mb),
        };
        let Response {
            status,
            content_type,
            body,
        } = response;
        if status != 200 {
            return End::Refused(format!("the camera answered HTTP {status}"));
        }
        let ct = content_type.to_ascii_lowercase();
        if ct.starts_with("multipart/") {
            let Some(boundary) = wire::boundary(&content_type) else {
                return End::Refused(format!(
                    "multipart response without a boundary (Content-Type: {content_type})"
                ));
            };
            return stream(body, &boundary, name, mb, delivered);
        }
        if !ct.starts_with("image/jpeg") {
            return End::Refused(format!(
                "wrong content type '{content_type}': expected multipart/x-mixed-replace (a stream) or \
                 image/jpeg (a snapshot)"
            ));
        }
        // A snapshot URL: one JPEG per request, fetched at the configured rate.
        let mut body = body;
        let jpeg = match read_limited(&mut body) {
            Ok(b) => b,
            Err(e) => return classify(e, mb),
        };
        if !mb.frame(Payload::Jpeg(jpeg), Instant::now(), SystemTime::now()) {
            return End::Closed;
        }
        *delivered = true;
        // Frames are due on a fixed grid; a slow camera skips slots rather than drifting.
        let period = Duration::from_secs_f64(1.0 / f64::from(opts.snapshot_fps));
        next_poll += period;
        let now = Instant::now();
        while next_poll < now {
            next_poll += period;
        }
        if !mb.sleep(next_poll - now) {
            return End::Closed;
        }
    }
}

/// Reads multipart parts until the stream ends, handing each part's bytes on as a JPEG frame.
fn stream(body: Body, boundary: &str, name: &str, mb: &Mailbox, delivered: &mut bool) -> End {
    let mut parts = wire::Parts::new(body, boundary, MAX_BODY);
    loop {
        match parts.next_part() {
            Ok(Some(part)) => {
                let arrived = (Instant::now(), SystemTime::now());
                let ok = match part {
                    Ok(bytes) => mb.frame(Payload::Jpeg(bytes), arrived.0, arrived.1),
                    Err(reason) => mb.error(CaptureError::BadFrame {
                        source_name: name.to_string(),
                        reason,
                    }),
                };
                if !ok {
                    return End::Closed;
                }
                *delivered = true;
            }
            Ok(None) => return End::Gone("the stream ended".to_string()),
            Err(e) => return classify(e, mb),
        }
    }
}

fn read_limited(body: &mut Body) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    body.take(MAX_BODY as u64 + 1).read_to_end(&mut out)?;
    if out.len() > MAX_BODY {
        return Err(std::io::Error::other(format!(
            "the image is larger than {MAX_BODY} bytes"
        )));
    }
    Ok(out)
}

fn classify(e: std::io::Error, mb: &Mailbox) -> End {
    if mb.is_closed() {
        End::Closed
    } else {
        End::Gone(e.to_string())
    }
}
