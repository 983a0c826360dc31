//! A deliberately small HTTP/1.1 client over a raw TCP socket, and a server fixture, for the HTTP tests.
//!
//! Raw sockets let the tests do what well-behaved clients never do (lie about sizes, stop reading, hang
//! up mid-stream) and check the exact bytes the server sends. A real face photo from `../shared` is the
//! camera frame; a real analyzer + in-memory gallery is the enroller.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use facegate::capture::Frame;
use facegate::config::{HttpConfig, Secret, VisionConfig};
use facegate::gallery::{MatchParams, SharedGallery};
use facegate::http::{serve, EnrollSummary, Enroller, GalleryEnroller, LiveView, ServerHandle};
use facegate::pipeline::{FaceInView, FrameReport};
use facegate::vision::FaceAnalyzer;
use image::RgbImage;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[path = "../common/mod.rs"]
mod common;
pub use common::*;

pub const TOKEN: &str = "test-token-5f2a";
pub const CAMERA: &str = "Front door";

/// The analyzer, loaded once per test binary.
pub fn analyzer() -> Arc<FaceAnalyzer> {
    static A: OnceLock<Arc<FaceAnalyzer>> = OnceLock::new();
    A.get_or_init(|| {
        Arc::new(FaceAnalyzer::load(&models(), &VisionConfig::default()).expect("models load"))
    })
    .clone()
}

/// The library's enroller (real analyzer, in-memory gallery), counting calls.
pub struct CountingEnroller {
    inner: GalleryEnroller,
    pub gallery: SharedGallery,
    pub calls: AtomicUsize,
}

impl CountingEnroller {
    pub fn new() -> Arc<Self> {
        let gallery = SharedGallery::in_memory(MatchParams::default()).unwrap();
        Arc::new(Self {
            inner: GalleryEnroller::new(analyzer(), gallery.clone()),
            gallery,
            calls: AtomicUsize::new(0),
        })
    }
}

impl Enroller for CountingEnroller {
    fn enroll_image(&self, name: &str, image: RgbImage) -> Result<EnrollSummary, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.enroll_image(name, image)
    }
}

/// A 640x480 camera frame made from a real photo, and the faces the real detector finds in it.
pub fn camera_frame(seq: u64) -> (Frame, FrameReport) {
    static F: OnceLock<(RgbImage, Vec<FaceInView>)> = OnceLock::new();
    let (image, faces) = F.get_or_init(|| {
        let photo =
            facegate::imageio::load_image(face("misc/face_recognition/examples_obama-480p.jpg"))
                .unwrap();
        let image =
            image::imageops::resize(&photo, 640, 480, image::imageops::FilterType::Triangle);
        let dets = analyzer().detect(&image).unwrap();
        assert_eq!(dets.len(), 1, "the test frame shows one face");
        let b = &dets[0].bbox;
        let faces = vec![FaceInView {
            track: 1,
            bbox: [b.x, b.y, b.w, b.h],
            person: Some("Barack".into()),
            blinks: 1,
            live: Some(true),
        }];
        (image, faces)
    });
    let frame = Frame {
        seq,
        captured: Instant::now(),
        pts: Duration::from_millis(seq * 100),
        wall: SystemTime::now(),
        image: image.clone(),
    };
    let report = FrameReport {
        frame: seq,
        faces: faces.clone(),
        events: vec![],
        latency_s: 0.01,
    };
    (frame, report)
}

/// A server on 127.0.0.1:0 with one camera (no frame yet), the token, and the default ingress peers.
pub async fn start() -> (ServerHandle, LiveView, Arc<CountingEnroller>) {
    start_with(HttpConfig {
        token: Secret::new(TOKEN),
        ..HttpConfig::default()
    })
    .await
}

pub async fn start_with(config: HttpConfig) -> (ServerHandle, LiveView, Arc<CountingEnroller>) {
    let view = LiveView::default();
    view.add_camera(CAMERA);
    let enroller = CountingEnroller::new();
    let server = serve(
        "127.0.0.1:0".parse().unwrap(),
        view.clone(),
        enroller.clone(),
        &config,
    )
    .await
    .expect("server starts");
    (server, view, enroller)
}

/// A parsed response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

pub fn bearer() -> (&'static str, String) {
    ("Authorization", format!("Bearer {TOKEN}"))
}

/// One request on a fresh connection (`Connection: close`), the whole response read.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: facegate\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    read_reply(&mut BufReader::new(s)).await
}

pub async fn get(addr: SocketAddr, target: &str) -> Reply {
    request(addr, "GET", target, &[bearer()], b"").await
}

/// Status line and headers.
pub async fn read_head<R: AsyncBufRead + Unpin>(r: &mut R) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    let status = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("status line {line:?}"))
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).await.unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            return (status, headers);
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
}

pub async fn read_reply<R: AsyncBufRead + Unpin>(r: &mut R) -> Reply {
    let (status, headers) = read_head(r).await;
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    if reply.header("transfer-encoding") == Some("chunked") {
        while let Some(chunk) = read_chunk(r).await {
            reply.body.extend_from_slice(&chunk);
        }
    } else if let Some(n) = reply.header("content-length") {
        reply.body.resize(n.parse().unwrap(), 0);
        r.read_exact(&mut reply.body).await.unwrap();
    } else {
        r.read_to_end(&mut reply.body).await.unwrap();
    }
    reply
}

/// One chunk of a chunked body; `None` at the last (empty) chunk.
pub async fn read_chunk<R: AsyncBufRead + Unpin>(r: &mut R) -> Option<Vec<u8>> {
    let mut line = String::new();
    r.read_line(&mut line).await.ok()?;
    let n = usize::from_str_radix(line.trim(), 16).ok()?;
    let mut data = vec![0; n + 2];
    r.read_exact(&mut data).await.ok()?;
    data.truncate(n);
    (n > 0).then_some(data)
}

/// A client of the MJPEG stream that takes parts one by one.
pub struct MjpegClient {
    pub reader: BufReader<TcpStream>,
    pub headers: Vec<(String, String)>,
    buf: Vec<u8>,
}

impl MjpegClient {
    pub async fn open(addr: SocketAddr, target: &str) -> (u16, Self) {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "GET {target} HTTP/1.1\r\nHost: facegate\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut reader = BufReader::new(s);
        let (status, headers) = read_head(&mut reader).await;
        (
            status,
            Self {
                reader,
                headers,
                buf: Vec::new(),
            },
        )
    }

    /// The next JPEG of the stream and its frame number; `None` when the stream ended.
    pub async fn next_part(&mut self) -> Option<(Vec<u8>, u64)> {
        loop {
            if let Some((jpeg, seq, used)) = parse_part(&self.buf) {
                self.buf.drain(..used);
                return Some((jpeg, seq));
            }
            let chunk = read_chunk(&mut self.reader).await?;
            self.buf.extend_from_slice(&chunk);
        }
    }
}

/// A complete `--facegateframe` part at the start of `b`: its JPEG, frame number and the bytes it spans.
fn parse_part(b: &[u8]) -> Option<(Vec<u8>, u64, usize)> {
    let head_end = b.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&b[..head_end]).expect("part headers are text");
    assert!(
        head.starts_with("--facegateframe\r\n"),
        "part starts with the boundary: {head:?}"
    );
    assert!(head.contains("Content-Type: image/jpeg\r\n"), "{head:?}");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("part has a Content-Length")
        .parse()
        .unwrap();
    let seq: u64 = head
        .lines()
        .find_map(|l| l.strip_prefix("X-Facegate-Frame: "))
        .expect("part has X-Facegate-Frame")
        .parse()
        .unwrap();
    let end = head_end + len + 2;
    (b.len() >= end).then(|| {
        assert_eq!(&b[end - 2..end], b"\r\n");
        (b[head_end..head_end + len].to_vec(), seq, end)
    })
}
