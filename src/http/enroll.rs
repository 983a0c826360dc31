//! `POST /api/enroll?name=NAME`: enrollment by uploading one photo as the raw request body.
//!
//! Only a same-origin request with an image content type is taken: a browser holding the token (Basic auth)
//! can be made to post by another site, but only with a foreign `Origin` or a form's content type
//! (`text/plain`, form-urlencoded, multipart), never with `image/*` without a CORS preflight this server
//! does not grant. The body is read as it streams in and refused with 413 as soon as it passes the size
//! limit (a declared `Content-Length` over the limit is refused before reading anything), decoded on the
//! blocking pool within [`upload_limits`] (pixels checked from the header before any decoding), one decode
//! at a time, and handed to the service's [`Enroller`]. At most two uploads are held in memory at once; the
//! others wait their turn.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN};
use hyper::{HeaderMap, Request, Response, StatusCode};
use image::RgbImage;
use serde::Serialize;

use super::auth::Access;
use super::query;
use super::respond::{self, Body};
use super::routes::App;
use crate::imageio::{self, ImageError, ImageLimits};
use crate::pipeline::PipelineEvent;

/// Time allowed for a whole upload to arrive: a client trickling bytes must not hold memory for ever.
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// Uploads read or decoded at the same time.
pub const CONCURRENT_UPLOADS: usize = 2;
/// Uploads decoded at the same time (a decode holds the full-size RGB image and the decoder's buffers).
pub const CONCURRENT_DECODES: usize = 1;
/// Most pixels an uploaded photo may have: 24 megapixels (6000x4000) is more than any enrollment needs.
pub const MAX_UPLOAD_PIXELS: u64 = 24_000_000;
/// Most memory one upload's decoder may allocate.
pub const MAX_UPLOAD_DECODE_BYTES: u64 = 160 << 20;

/// The decoding limits of an upload of at most `max_file_bytes`.
pub fn upload_limits(max_file_bytes: u64) -> ImageLimits {
    ImageLimits {
        max_pixels: MAX_UPLOAD_PIXELS,
        max_alloc: MAX_UPLOAD_DECODE_BYTES,
        max_file_bytes,
    }
}

/// What the service does with an uploaded photo. Called on tokio's blocking pool, so it may run the
/// networks or wait for the pipeline thread.
pub trait Enroller: Send + Sync + 'static {
    /// Enroll the one face in `image` as `name`. `Err` is a message a user can act on ("no face found",
    /// "2 faces found: an enrollment photo must show only the person").
    fn enroll_image(&self, name: &str, image: RgbImage) -> Result<EnrollSummary, String>;
}

/// The result of a successful enrollment, returned as JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnrollSummary {
    pub name: String,
    /// Embeddings the person has now, this one included.
    pub embeddings: usize,
    /// Quality score of the enrolled face in [0, 1].
    pub quality: f32,
}

/// Why an upload was not enrolled, and the status that says so.
#[derive(Debug, thiserror::Error)]
enum UploadError {
    #[error("{0}")]
    BadRequest(String),
    #[error("upload too large: more than {limit} bytes (http.max_upload_mb)")]
    TooLarge { limit: u64 },
    #[error("send the image as the raw request body (Content-Type: image/jpeg), not as a multipart form")]
    Multipart,
    #[error("send the photo with an image content type (Content-Type: image/jpeg, image/png, ...), not {0}")]
    NotAnImageType(String),
    #[error("cross-origin upload refused: the request comes from {origin}, not from this server ({host})")]
    CrossOrigin { origin: String, host: String },
    #[error("the upload did not arrive within {} s", UPLOAD_TIMEOUT.as_secs())]
    Timeout,
    #[error("{0}")]
    Image(#[from] ImageError),
    #[error("{0}")]
    Rejected(String),
    #[error("enrollment failed: {0}")]
    Internal(String),
}

impl UploadError {
    fn status(&self) -> StatusCode {
        match self {
            UploadError::BadRequest(_) => StatusCode::BAD_REQUEST,
            UploadError::TooLarge { .. } | UploadError::Image(ImageError::FileTooLarge { .. }) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            UploadError::Multipart | UploadError::NotAnImageType(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            UploadError::CrossOrigin { .. } => StatusCode::FORBIDDEN,
            UploadError::Timeout => StatusCode::REQUEST_TIMEOUT,
            UploadError::Image(_) => StatusCode::BAD_REQUEST,
            UploadError::Rejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            UploadError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

pub(crate) async fn handle(
    app: &Arc<App>,
    access: Access,
    req: Request<Incoming>,
) -> Response<Body> {
    match enroll(app, access, req).await {
        Ok(summary) => respond::json(StatusCode::OK, &summary),
        Err(e) => respond::error(e.status(), &e.to_string()),
    }
}

async fn enroll(
    app: &Arc<App>,
    access: Access,
    req: Request<Incoming>,
) -> Result<EnrollSummary, UploadError> {
    same_origin(req.headers(), access)?;
    let name = query::param(req.uri().query(), "name")
        .map_err(UploadError::BadRequest)?
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            UploadError::BadRequest("missing the person's name: add ?name=NAME".into())
        })?;
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(UploadError::BadRequest(
            "the name must be at most 100 characters, without control characters".into(),
        ));
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let media_type = content_type
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if media_type.starts_with("multipart/") {
        return Err(UploadError::Multipart);
    }
    if !media_type.starts_with("image/") {
        return Err(UploadError::NotAnImageType(if media_type.is_empty() {
            "no Content-Type".into()
        } else {
            format!("'{media_type}'")
        }));
    }
    let limit = app.max_upload_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(UploadError::TooLarge { limit });
    }
    let _turn = app
        .uploads
        .acquire()
        .await
        .map_err(|e| UploadError::Internal(e.to_string()))?;
    let bytes = tokio::time::timeout(
        UPLOAD_TIMEOUT,
        read_limited(req.into_body(), limit, declared),
    )
    .await
    .map_err(|_| UploadError::Timeout)??;
    let limits = upload_limits(limit);
    let image = {
        let _decoding = app
            .decodes
            .acquire()
            .await
            .map_err(|e| UploadError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || imageio::decode_image_with(&bytes, &limits))
            .await
            .map_err(|e| UploadError::Internal(e.to_string()))??
    };
    let enroller = app.enroller.clone();
    let who = name.clone();
    let outcome = tokio::task::spawn_blocking(move || enroller.enroll_image(&who, image))
        .await
        .map_err(|e| UploadError::Internal(e.to_string()))?;
    app.view.push_global_event(PipelineEvent::Enrollment {
        name: name.clone(),
        ok: outcome.is_ok(),
        samples: u32::from(outcome.is_ok()),
        reason: outcome.as_ref().err().cloned(),
    });
    tracing::info!(name = %name, ok = outcome.is_ok(), "enrollment by upload");
    outcome.map_err(UploadError::Rejected)
}

/// Refuses a request a browser sent from another site: `Origin` (when present) must name this server as
/// the browser reached it: the `Host` header, or through ingress the `X-Forwarded-Host` Home Assistant's
/// proxy sets. `Origin: null` (sandboxed pages, some redirects) is refused too. Clients that are not
/// browsers send no `Origin` and are not affected.
fn same_origin(headers: &HeaderMap, access: Access) -> Result<(), UploadError> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("(not text)").trim();
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase())
    };
    let host = header(HOST).unwrap_or_default();
    let forwarded = match access {
        Access::Ingress => header(hyper::header::HeaderName::from_static("x-forwarded-host")),
        Access::Token => None,
    };
    // `scheme://authority` with no path; the authority compared case-insensitively.
    let authority = origin
        .split_once("://")
        .map(|(_, a)| a.to_ascii_lowercase())
        .filter(|a| !a.is_empty() && !a.contains('/'));
    let matches = authority.as_deref().is_some_and(|a| {
        a == host
            || forwarded
                .as_deref()
                .is_some_and(|f| f.split(',').any(|f| f.trim() == a))
    });
    if matches {
        Ok(())
    } else {
        Err(UploadError::CrossOrigin {
            origin: origin.chars().take(100).collect(),
            host: if host.is_empty() {
                "no Host header".into()
            } else {
                host
            },
        })
    }
}

/// The whole body, refused as soon as it passes `limit` bytes.
async fn read_limited(
    mut body: Incoming,
    limit: u64,
    declared: Option<u64>,
) -> Result<Vec<u8>, UploadError> {
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(limit) as usize);
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| UploadError::BadRequest(format!("reading the upload: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if (buf.len() + data.len()) as u64 > limit {
                return Err(UploadError::TooLarge { limit });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf)
}
