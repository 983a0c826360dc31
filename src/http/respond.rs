//! Building responses: the body type every route returns, JSON, JPEG and error replies.
//!
//! Every error is JSON `{"error": "<what is wrong, in words>", "status": <code>}` so a script, a browser
//! and a person reading `curl` output all see the same message.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use serde::Serialize;

/// The body of every response: a full buffer or the MJPEG stream.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// A response with `body` and its content type; nothing the server sends may be cached (it is live).
pub fn with_type(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `value` as a JSON response.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => with_type(status, "application/json", full(bytes)),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot serialise the reply: {e}"),
        ),
    }
}

/// A JSON error reply.
pub fn error(status: StatusCode, message: &str) -> Response<Body> {
    #[derive(Serialize)]
    struct Error<'a> {
        error: &'a str,
        status: u16,
    }
    let body = serde_json::to_vec(&Error {
        error: message,
        status: status.as_u16(),
    })
    .unwrap_or_else(|_| b"{\"error\":\"internal error\"}".to_vec());
    with_type(status, "application/json", full(body))
}

/// 401 with the challenges a client can answer: Bearer for scripts, Basic (password = token) for browsers.
pub fn unauthorized(message: &str) -> Response<Body> {
    let mut r = error(StatusCode::UNAUTHORIZED, message);
    r.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"facegate\", Basic realm=\"facegate\""),
    );
    r
}
