//! The request router: health without credentials, everything else behind [`super::auth`].
//!
//! | route | what |
//! |---|---|
//! | `GET /health` | JSON status (no auth) |
//! | `GET /` | the live-view page (MJPEG + upload form) |
//! | `GET /api/snapshot.jpg?camera=` | newest frame with the overlay |
//! | `GET /api/stream.mjpg?camera=` | MJPEG live view |
//! | `GET /api/events?limit=&camera=` | recent events, newest first |
//! | `POST /api/enroll?name=` | enrollment by upload ([`super::enroll`]) |
//!
//! `camera` may be left out when there is exactly one camera.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use tokio::sync::{watch, Semaphore};

use super::auth::Auth;
use super::enroll::{self, Enroller};
use super::respond::{self, full, Body};
use super::state::{CameraHealth, CameraStatus, LiveView, ViewError};
use super::{mjpeg, page, query};

/// Events returned by `/api/events` when no `limit` is given.
pub const DEFAULT_EVENT_LIMIT: usize = 50;

/// Everything a request handler needs, shared by all connections.
pub(crate) struct App {
    pub view: LiveView,
    pub enroller: Arc<dyn Enroller>,
    pub auth: Auth,
    pub max_upload_bytes: u64,
    /// Permits for uploads in memory at once.
    pub uploads: Semaphore,
    /// Permits for upload decodes at once.
    pub decodes: Semaphore,
    /// Permits for live streams at once ([`super::MAX_STREAMS`]).
    pub streams: Arc<Semaphore>,
    /// Becomes true when the server shuts down: live streams end.
    pub shutdown: watch::Receiver<bool>,
}

/// Answer one request, and log it (never its headers: they may hold the token).
pub(crate) async fn handle(
    app: Arc<App>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let response = route(&app, peer, req).await;
    tracing::debug!(peer = %peer.ip(), %method, path, status = response.status().as_u16(), "http");
    response
}

async fn route(app: &Arc<App>, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path == "/health" {
        return only(&req, Method::GET).unwrap_or_else(|| health(&app.view));
    }
    let access = match app.auth.check(peer.ip(), req.headers()) {
        Ok(a) => a,
        Err(refusal) => {
            tracing::debug!(peer = %peer.ip(), path, reason = %refusal, "http request refused");
            return match refusal.status() {
                401 => respond::unauthorized(&refusal.to_string()),
                _ => respond::error(StatusCode::FORBIDDEN, &refusal.to_string()),
            };
        }
    };
    let query = req.uri().query().map(str::to_string);
    let query = query.as_deref();
    match path.as_str() {
        "/" | "/index.html" => only(&req, Method::GET).unwrap_or_else(|| {
            respond::with_type(
                StatusCode::OK,
                "text/html; charset=utf-8",
                full(page::render(&app.view)),
            )
        }),
        "/api/snapshot.jpg" => match only(&req, Method::GET) {
            Some(r) => r,
            None => snapshot(app, query).await,
        },
        "/api/stream.mjpg" => only(&req, Method::GET).unwrap_or_else(|| stream(app, query)),
        "/api/events" => only(&req, Method::GET).unwrap_or_else(|| events(&app.view, query)),
        "/api/enroll" => match only(&req, Method::POST) {
            Some(r) => r,
            None => enroll::handle(app, access, req).await,
        },
        _ => respond::error(StatusCode::NOT_FOUND, &format!("no such page: {path}")),
    }
}

/// A live stream, if one of the [`super::MAX_STREAMS`] slots is free (503 otherwise: streams must never
/// crowd out `/health` and short requests).
fn stream(app: &Arc<App>, query: Option<&str>) -> Response<Body> {
    let cam = match camera(&app.view, query) {
        Ok(c) => c,
        Err((status, msg)) => return respond::error(status, &msg),
    };
    let Ok(slot) = app.streams.clone().try_acquire_owned() else {
        let mut r = respond::error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "too many live streams open ({}): close one, or use /api/snapshot.jpg",
                super::MAX_STREAMS
            ),
        );
        r.headers_mut()
            .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("5"));
        return r;
    };
    mjpeg::response(app.view.clone(), cam, app.shutdown.clone(), slot)
        .unwrap_or_else(|e| respond::error(StatusCode::NOT_FOUND, &e.to_string()))
}

/// `None` when the request uses `method`, else the 405 reply.
fn only(req: &Request<Incoming>, method: Method) -> Option<Response<Body>> {
    if req.method() == method {
        return None;
    }
    let mut r = respond::error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("{} is not allowed here, use {method}", req.method()),
    );
    r.headers_mut().insert(
        ALLOW,
        HeaderValue::from_str(method.as_str()).expect("method names are valid headers"),
    );
    Some(r)
}

fn health(view: &LiveView) -> Response<Body> {
    #[derive(Serialize)]
    struct Health {
        status: &'static str,
        version: &'static str,
        uptime_s: f64,
        cameras: Vec<CameraHealth>,
    }
    let cameras = view.health();
    let degraded = cameras
        .iter()
        .any(|c| matches!(c.status, CameraStatus::Disconnected { .. }));
    respond::json(
        StatusCode::OK,
        &Health {
            status: if degraded { "degraded" } else { "ok" },
            version: env!("CARGO_PKG_VERSION"),
            uptime_s: view.uptime_s(),
            cameras,
        },
    )
}

/// The camera named by `?camera=`, or the only camera when there is one; else the status and message.
fn camera(view: &LiveView, query: Option<&str>) -> Result<String, (StatusCode, String)> {
    let names = view.cameras();
    let asked = query::param(query, "camera").map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    match (asked, names.as_slice()) {
        (Some(name), _) if names.contains(&name) => Ok(name),
        (Some(name), _) => Err((
            StatusCode::NOT_FOUND,
            format!("no camera named '{name}' (cameras: {})", names.join(", ")),
        )),
        (None, [only]) => Ok(only.clone()),
        (None, []) => Err((StatusCode::NOT_FOUND, "no cameras are configured".into())),
        (None, _) => Err((
            StatusCode::BAD_REQUEST,
            format!(
                "which camera? add ?camera=NAME (cameras: {})",
                names.join(", ")
            ),
        )),
    }
}

async fn snapshot(app: &Arc<App>, query: Option<&str>) -> Response<Body> {
    let cam = match camera(&app.view, query) {
        Ok(c) => c,
        Err((status, msg)) => return respond::error(status, &msg),
    };
    match app.view.snapshot(&cam).await {
        Ok(s) => {
            let mut r = respond::with_type(StatusCode::OK, "image/jpeg", full(s.jpeg));
            r.headers_mut()
                .insert("x-facegate-frame", HeaderValue::from(s.frame_seq));
            r
        }
        Err(e @ ViewError::UnknownCamera(_)) => {
            respond::error(StatusCode::NOT_FOUND, &e.to_string())
        }
        Err(e @ ViewError::NoFrameYet(_)) => {
            respond::error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
        Err(e @ ViewError::Encode(_)) => {
            respond::error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
    }
}

fn events(view: &LiveView, query: Option<&str>) -> Response<Body> {
    let cap = view.event_capacity();
    let limit = match query::param(query, "limit") {
        Ok(None) => DEFAULT_EVENT_LIMIT.min(cap),
        Ok(Some(v)) => match v.parse::<usize>() {
            Ok(n) if (1..=cap).contains(&n) => n,
            _ => {
                let msg = format!("limit must be a whole number from 1 to {cap}, not '{v}'");
                return respond::error(StatusCode::BAD_REQUEST, &msg);
            }
        },
        Err(e) => return respond::error(StatusCode::BAD_REQUEST, &e),
    };
    let camera = match query::param(query, "camera") {
        Ok(Some(c)) if !view.cameras().contains(&c) => {
            return respond::error(StatusCode::NOT_FOUND, &format!("no camera named '{c}'"));
        }
        Ok(c) => c,
        Err(e) => return respond::error(StatusCode::BAD_REQUEST, &e),
    };
    #[derive(Serialize)]
    struct Events {
        events: Vec<super::state::EventRecord>,
    }
    respond::json(
        StatusCode::OK,
        &Events {
            events: view.recent_events(limit, camera.as_deref()),
        },
    )
}
