//! The MJPEG live view (`multipart/x-mixed-replace`): one JPEG part per published frame.
//!
//! The body is pulled by hyper: a part is made only when the connection has taken the previous one, and it
//! is always the camera's newest frame at that moment. A slow client therefore skips frames instead of
//! queueing them (nothing beyond the socket buffers is ever waiting for it), and a client that goes away
//! drops the body and with it everything the stream holds. The stream ends when the server shuts down.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use tokio::sync::watch;

use super::respond::{self, Body};
use super::state::{LiveView, ViewError};

/// The multipart boundary between JPEG parts.
pub const BOUNDARY: &str = "facegateframe";
/// The stream's content type.
pub const CONTENT_TYPE: &str = "multipart/x-mixed-replace; boundary=facegateframe";

type PartFuture = Pin<Box<dyn Future<Output = Option<(Bytes, u64)>> + Send>>;

/// The streaming response for `camera` (already known to exist).
pub fn response(view: LiveView, camera: String, shutdown: watch::Receiver<bool>) -> Response<Body> {
    let body = MjpegBody { view, camera, shutdown, last_version: 0, pending: None };
    respond::with_type(StatusCode::OK, CONTENT_TYPE, body.boxed_unsync())
}

struct MjpegBody {
    view: LiveView,
    camera: String,
    shutdown: watch::Receiver<bool>,
    /// Version of the frame sent last: the next part must show a newer one.
    last_version: u64,
    /// The part being prepared (waiting for a frame or encoding it).
    pending: Option<PartFuture>,
}

impl hyper::body::Body for MjpegBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let fut = this.pending.get_or_insert_with(|| {
            Box::pin(next_part(
                this.view.clone(),
                this.camera.clone(),
                this.last_version,
                this.shutdown.clone(),
            ))
        });
        match fut.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(part) => {
                this.pending = None;
                Poll::Ready(part.map(|(bytes, version)| {
                    this.last_version = version;
                    Ok(Frame::data(bytes))
                }))
            }
        }
    }
}

/// Wait for a frame newer than `last`, encode it (or take the cached encoding) and frame it as a part.
/// `None` ends the stream: shutdown, or the camera's state is gone.
async fn next_part(
    view: LiveView,
    camera: String,
    last: u64,
    mut shutdown: watch::Receiver<bool>,
) -> Option<(Bytes, u64)> {
    let mut versions = view.subscribe(&camera).ok()?;
    loop {
        if *shutdown.borrow() {
            return None;
        }
        let newest = *versions.borrow_and_update();
        if newest > last {
            match view.snapshot(&camera).await {
                Ok(s) if s.version > last => return Some((part(&s.jpeg), s.version)),
                Ok(_) | Err(ViewError::NoFrameYet(_)) => {}
                Err(e) => {
                    tracing::warn!(camera = %camera, error = %e, "live stream ends");
                    return None;
                }
            }
        }
        tokio::select! {
            changed = versions.changed() => changed.ok()?,
            _ = super::stopped(&mut shutdown) => return None,
        }
    }
}

/// One multipart part: boundary, headers, the JPEG.
fn part(jpeg: &[u8]) -> Bytes {
    let head = format!(
        "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        jpeg.len()
    );
    let mut b = BytesMut::with_capacity(head.len() + jpeg.len() + 2);
    b.put_slice(head.as_bytes());
    b.put_slice(jpeg);
    b.put_slice(b"\r\n");
    b.freeze()
}
