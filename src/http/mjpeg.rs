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
use tokio::sync::{watch, OwnedSemaphorePermit};

use super::respond::{self, Body};
use super::state::{LiveView, ViewError};

/// The multipart boundary between JPEG parts.
pub const BOUNDARY: &str = "facegateframe";
/// The stream's content type.
pub const CONTENT_TYPE: &str = "multipart/x-mixed-replace; boundary=facegateframe";

/// A part (bytes, frame version) and the version receiver handed back for the next part.
type Part = Option<(Bytes, u64, watch::Receiver<u64>)>;
type PartFuture = Pin<Box<dyn Future<Output = Part> + Send>>;

/// The streaming response for `camera`.
pub fn response(
    view: LiveView,
    camera: String,
    shutdown: watch::Receiver<bool>,
    slot: OwnedSemaphorePermit,
) -> Result<Response<Body>, ViewError> {
    let versions = Some(view.subscribe(&camera)?);
    let body = MjpegBody {
        _slot: slot,
        view,
        camera,
        shutdown,
        versions,
        last_version: 0,
        pending: None,
    };
    Ok(respond::with_type(
        StatusCode::OK,
        CONTENT_TYPE,
        body.boxed_unsync(),
    ))
}

struct MjpegBody {
    /// One of the server's stream slots, given back when the stream ends or the client goes away.
    _slot: OwnedSemaphorePermit,
    view: LiveView,
    camera: String,
    shutdown: watch::Receiver<bool>,
    /// The camera's frame versions; held for the stream's life so the camera counts it as a viewer.
    versions: Option<watch::Receiver<u64>>,
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
        if this.pending.is_none() {
            let Some(versions) = this.versions.take() else {
                return Poll::Ready(None);
            };
            this.pending = Some(Box::pin(next_part(
                this.view.clone(),
                this.camera.clone(),
                versions,
                this.last_version,
                this.shutdown.clone(),
            )));
        }
        let fut = this.pending.as_mut().expect("set above");
        match fut.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(part) => {
                this.pending = None;
                Poll::Ready(part.map(|(bytes, version, versions)| {
                    this.last_version = version;
                    this.versions = Some(versions);
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
    mut versions: watch::Receiver<u64>,
    last: u64,
    mut shutdown: watch::Receiver<bool>,
) -> Part {
    loop {
        if *shutdown.borrow() {
            return None;
        }
        let newest = *versions.borrow_and_update();
        if newest > last {
            match view.frame_after(&camera, last).await {
                Ok(s) if s.version > last => {
                    return Some((part(&s.jpeg, s.frame_seq), s.version, versions));
                }
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

/// One multipart part: boundary, headers (with the source's frame number), the JPEG.
fn part(jpeg: &[u8], frame_seq: u64) -> Bytes {
    let head = format!(
        "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nX-Facegate-Frame: {frame_seq}\r\n\r\n",
        jpeg.len()
    );
    let mut b = BytesMut::with_capacity(head.len() + jpeg.len() + 2);
    b.put_slice(head.as_bytes());
    b.put_slice(jpeg);
    b.put_slice(b"\r\n");
    b.freeze()
}
