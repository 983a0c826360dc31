//! facegate's HTTP server (hyper 1 on tokio): health, snapshot and MJPEG live view with the overlay, recent
//! events, enrollment by upload, and a small page tying them together — reachable through Home Assistant
//! ingress or with a bearer token.
//!
//! The service owns a [`LiveView`] and publishes every processed frame into it; [`serve`] shows it. The
//! request path reads off the files: [`auth`] (who may ask) -> [`routes`] (what they ask) -> [`state`] (the
//! live data) / [`mjpeg`] (streaming) / [`enroll`] (uploads, handed to an [`Enroller`] such as [`GalleryEnroller`]) -> [`overlay`] + [`font`] (drawing) ->
//! [`respond`] (the replies). `docs/HTTP.md` has the routes, the auth rules and measurements.

pub mod auth;
mod conns;
pub mod enroll;
mod enroller;
pub mod font;
pub mod mjpeg;
pub mod overlay;
mod page;
mod query;
pub mod respond;
pub mod routes;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

pub use conns::{IDLE_TIMEOUT, MAX_CONNECTIONS, MAX_STREAMS};
pub use enroll::{EnrollSummary, Enroller};
pub use enroller::GalleryEnroller;
pub use state::{CameraStatus, EventRecord, LiveView, Snapshot, ViewError};

use crate::config::HttpConfig;

/// Time a client gets to send its request headers once it has started (an idle connection is closed after
/// [`IDLE_TIMEOUT`] anyway).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time open requests get to finish after shutdown is asked; then their connections are dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running server. [`ServerHandle::shutdown`] stops it gracefully; dropping the handle stops it too
/// (without waiting).
pub struct ServerHandle {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop accepting, end live streams, let open requests finish (at most [`SHUTDOWN_GRACE`]), then return.
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        let _ = self.task.await;
    }
}

/// Listen on `addr` and serve `view` until the handle is shut down. Uploads go to `enroller`; token, trusted
/// ingress peers and the upload limit come from `config` (its `port` is not used: `addr` is).
pub async fn serve(
    addr: SocketAddr,
    view: LiveView,
    enroller: Arc<dyn Enroller>,
    config: &HttpConfig,
) -> Result<ServerHandle, HttpError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr, source })?;
    let (shutdown, stop) = watch::channel(false);
    let app = Arc::new(routes::App {
        view,
        enroller,
        auth: auth::Auth::new(config),
        max_upload_bytes: u64::from(config.max_upload_mb) << 20,
        uploads: Semaphore::new(enroll::CONCURRENT_UPLOADS),
        decodes: Semaphore::new(enroll::CONCURRENT_DECODES),
        streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        shutdown: stop.clone(),
    });
    tracing::info!(%local_addr, token = !config.token.is_empty(), ingress_peers = ?config.ingress_peers, "http server listening");
    let task = tokio::spawn(accept_loop(listener, app, stop));
    Ok(ServerHandle {
        local_addr,
        shutdown,
        task,
    })
}

/// Resolves once shutdown is asked (or the handle is gone). Returns nothing, so no watch guard is held
/// across an await by the caller (it would make the task `!Send`).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn accept_loop(
    listener: TcpListener,
    app: Arc<routes::App>,
    mut stop: watch::Receiver<bool>,
) {
    let tracker = Arc::new(conns::Tracker::default());
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = tracker.make_room() => {},
            _ = stopped(&mut stop) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        // Reap finished connections so the set stays as large as the open ones.
        while connections.try_join_next().is_some() {}
        let app = app.clone();
        let mut stop = stop.clone();
        let conn_entry = Arc::new(tracker.register());
        connections.spawn(async move {
            let entry = conn_entry.clone();
            let service = service_fn(move |req| {
                let app = app.clone();
                // Busy from the complete headers until the response body is finished.
                let busy = entry.busy();
                async move {
                    let response = routes::handle(app, peer, req).await;
                    Ok::<_, std::convert::Infallible>(
                        response.map(|b| conns::Tracked::new(b, busy).boxed_unsync()),
                    )
                }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let finished = tokio::select! {
                r = conn.as_mut() => Some(r),
                // Idle too long, or evicted to make room: nothing is in flight, just close.
                _ = conn_entry.should_close() => {
                    tracing::debug!(peer = %peer, "http: closing an idle connection");
                    return;
                }
                _ = stopped(&mut stop) => None,
            };
            let result = match finished {
                Some(r) => r,
                None => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                // Clients going away mid-response are normal for a live view.
                tracing::debug!(peer = %peer, error = %e, "http connection ended with an error");
            }
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "http connections still open after the grace period: dropped"
        );
        connections.shutdown().await;
    }
    tracing::info!("http server stopped");
}
