//! The HTTP camera source against real local HTTP servers started here (std TcpListener, speaking as an
//! ESP32-CAM does: chunked multipart/x-mixed-replace with a part boundary per frame, or a JPEG snapshot),
//! serving real JPEG photos from ../shared/faces, corrupt and zero-length parts, a wrong content type, and a
//! camera that vanishes and comes back.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use facegate::capture::http::{HttpOptions, HttpSource};
use facegate::capture::{CaptureError, FrameSource};
use image::RgbImage;

const BOUNDARY: &str = "123456789000000000000987654321";

/// Real JPEG photos and their decoded pixels.
fn photos() -> Vec<(Vec<u8>, RgbImage)> {
    [
        "Ben_Affleck/Ben_Affleck_0001.jpg",
        "Elton_John/Elton_John_0001.jpg",
        "Madonna/Madonna_0001.jpg",
    ]
    .iter()
    .map(|p| {
        let bytes = std::fs::read(common::face(&format!("identities/{p}"))).unwrap();
        let image = facegate::imageio::decode_image(&bytes).unwrap();
        (bytes, image)
    })
    .collect()
}

/// Reads the request head; returns its first line.
fn read_request(conn: &mut TcpStream) -> String {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut first = String::new();
    r.read_line(&mut first).unwrap();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
    }
    first.trim_end().to_string()
}

/// Writes one chunk of a chunked body.
fn chunk(conn: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    write!(conn, "{:X}\r\n", data.len())?;
    conn.write_all(data)?;
    conn.write_all(b"\r\n")
}

/// What the ESP32-CAM stream handler sends per part: boundary, part headers, JPEG, each as its own chunk.
fn esp32_part(conn: &mut TcpStream, content_type: &str, body: &[u8]) -> std::io::Result<()> {
    chunk(conn, format!("\r\n--{BOUNDARY}\r\n").as_bytes())?;
    chunk(
        conn,
        format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\nX-Timestamp: 12.345\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )?;
    // JPEGs go out in two chunks, as the camera's send buffer splits them; an empty chunk would end the
    // response, so an empty part sends none.
    let half = body.len() / 2;
    for piece in [&body[..half], &body[half..]] {
        if !piece.is_empty() {
            chunk(conn, piece)?;
        }
    }
    Ok(())
}

fn esp32_head(conn: &mut TcpStream) -> std::io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary={BOUNDARY}\r\n\
         Transfer-Encoding: chunked\r\nAccess-Control-Allow-Origin: *\r\n\r\n"
    )
}

fn bad(r: Result<Option<facegate::capture::Frame>, CaptureError>) -> String {
    match r {
        Err(CaptureError::BadFrame { reason, .. }) => reason,
        Ok(Some(f)) => panic!("expected a bad frame, got frame {}", f.seq),
        other => panic!("expected a bad frame, got {other:?}"),
    }
}

fn next(src: &mut HttpSource) -> facegate::capture::Frame {
    src.next_frame_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("a frame within 10 s")
}

/// One message per step the server takes in the ESP32 stream test.
enum Step {
    Part(&'static str, Vec<u8>),
    Burst(Vec<Vec<u8>>),
    Hangup,
}

#[test]
fn esp32_stream_frames_bad_parts_newest_only_and_reconnect() {
    let photos = photos();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/stream", listener.local_addr().unwrap());
    let (steps, rx) = mpsc::channel::<Step>();
    let (served, served_rx) = mpsc::channel::<()>();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            assert_eq!(read_request(&mut conn), "GET /stream HTTP/1.1");
            counter.fetch_add(1, Ordering::SeqCst);
            esp32_head(&mut conn).unwrap();
            for step in rx.iter() {
                match step {
                    Step::Part(ct, body) => esp32_part(&mut conn, ct, &body).unwrap(),
                    Step::Burst(bodies) => {
                        for b in bodies {
                            esp32_part(&mut conn, "image/jpeg", &b).unwrap();
                        }
                    }
                    Step::Hangup => break,
                }
                served.send(()).unwrap();
            }
        }
    });
    let mut src = HttpSource::open(&url, HttpOptions::default()).unwrap();
    assert_eq!(src.name(), url);

    // Every frame, in order, pixel-identical to decoding the photo directly.
    for (k, (bytes, image)) in photos.iter().enumerate() {
        steps.send(Step::Part("image/jpeg", bytes.clone())).unwrap();
        let f = next(&mut src);
        assert_eq!(f.seq, k as u64);
        assert!(f.image == *image, "frame {k} differs from the photo");
    }
    assert_eq!(src.dropped(), 0);

    // A slow consumer: five frames arrive, only the newest is handed out, four are counted as dropped.
    let burst: Vec<Vec<u8>> = (0..5).map(|k| photos[k % 3].0.clone()).collect();
    steps.send(Step::Burst(burst)).unwrap();
    served_rx.recv().unwrap();
    for _ in 0..3 {
        served_rx.recv().unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let f = next(&mut src);
    assert_eq!((f.seq, src.dropped()), (7, 4));
    assert!(f.image == photos[1].1);

    // Bad parts: each is reported, and the stream goes on.
    let (jpeg, _) = &photos[0];
    steps
        .send(Step::Part("image/jpeg", jpeg[..jpeg.len() / 2].to_vec()))
        .unwrap();
    assert_eq!(
        bad(src.next_frame()),
        "frame 8: truncated or corrupt JPEG data: the file ends before the JPEG end-of-image marker (truncated)"
    );
    steps.send(Step::Part("image/jpeg", Vec::new())).unwrap();
    assert_eq!(
        bad(src.next_frame()),
        "frame 9: zero-length frame (0 bytes)"
    );
    steps
        .send(Step::Part("text/plain", b"camera overheated".to_vec()))
        .unwrap();
    assert_eq!(
        bad(src.next_frame()),
        "part has content type 'text/plain', expected image/jpeg"
    );
    // A frame header claiming 0 lines: well-formed markers, refused by the decoder.
    let mut zero_height = jpeg.clone();
    let sof = zero_height
        .windows(2)
        .position(|w| w == [0xff, 0xc0] || w == [0xff, 0xc2])
        .unwrap();
    zero_height[sof + 5..sof + 7].copy_from_slice(&[0, 0]);
    steps.send(Step::Part("image/jpeg", zero_height)).unwrap();
    assert_eq!(
        bad(src.next_frame()),
        "frame 10: truncated or corrupt JPEG data: Format error decoding Jpeg: Image width or height is set \
         to zero, cannot continue"
    );
    steps
        .send(Step::Part("image/jpeg", photos[2].0.clone()))
        .unwrap();
    assert_eq!(next(&mut src).seq, 11);

    // The camera hangs up: reported once, then the reader reconnects and frames flow again.
    steps.send(Step::Hangup).unwrap();
    let t = Instant::now();
    match src.next_frame() {
        Err(CaptureError::Disconnected {
            source_name,
            reason,
        }) => assert_eq!(
            (source_name.as_str(), reason.as_str()),
            (url.as_str(), "the connection closed")
        ),
        other => panic!("expected a disconnection, got {other:?}"),
    }
    steps
        .send(Step::Part("image/jpeg", photos[0].0.clone()))
        .unwrap();
    let f = next(&mut src);
    assert_eq!(f.seq, 12);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(requests.load(Ordering::SeqCst), 2);
}

/// A server answering every request with `respond`, counting requests, until dropped.
fn serve(
    listener: TcpListener,
    respond: impl Fn(&mut TcpStream, usize) + Send + 'static,
) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            read_request(&mut conn);
            let n = c.fetch_add(1, Ordering::SeqCst);
            respond(&mut conn, n);
        }
    });
    count
}

#[test]
fn a_camera_that_vanishes_and_returns_on_the_same_port() {
    let photos = photos();
    let jpeg = photos[2].0.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Plain multipart without chunking or part lengths: parts end at the next boundary line.
    let stream_once = move |conn: &mut TcpStream, _: usize| {
        let _ = write!(
            conn,
            "HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=\"frame\"\r\n\r\n"
        );
        for _ in 0..2 {
            let _ = write!(conn, "--frame\r\nContent-Type: image/jpeg\r\n\r\n");
            let _ = conn.write_all(&jpeg);
            let _ = conn.write_all(b"\r\n");
        }
        let _ = write!(conn, "--frame--\r\n");
    };
    // The first server: accept one connection, serve it, then the whole server goes away.
    let (stop, stopped) = mpsc::channel();
    {
        let serve_one = stream_once.clone();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            read_request(&mut conn);
            serve_one(&mut conn, 0);
            drop(conn);
            drop(listener);
            stop.send(()).unwrap();
        });
    }
    let mut src = HttpSource::open(&format!("http://{addr}/"), HttpOptions::default()).unwrap();
    let f = next(&mut src);
    assert!(f.image == photos[2].1);
    stopped.recv().unwrap();
    // The closing delimiter ends the stream; the reconnect is refused: both are one outage, reported once
    // each as the reason changes.
    let mut reasons = Vec::new();
    let t = Instant::now();
    while reasons.len() < 2 && t.elapsed() < Duration::from_secs(5) {
        match src.next_frame_timeout(Duration::from_millis(200)) {
            Err(CaptureError::Disconnected { reason, .. }) => reasons.push(reason),
            Ok(Some(f)) => assert_eq!(f.seq, 1),
            other => assert!(matches!(other, Ok(None)), "{other:?}"),
        }
    }
    assert_eq!(
        reasons,
        ["the stream ended", "Connection refused (os error 111)"]
    );
    assert!(src
        .next_frame_timeout(Duration::from_millis(1000))
        .unwrap()
        .is_none());
    // The camera comes back on the same port.
    let back = Instant::now();
    let listener = TcpListener::bind(addr).unwrap();
    let count = serve(listener, stream_once);
    let f = next(&mut src);
    let took = back.elapsed();
    assert!(f.seq >= 2 && f.image == photos[2].1);
    // Backoff doubles from 0.2 s up to 5 s; after ~1.5 s away the next try is at most ~1.6 s later.
    assert!(took < Duration::from_secs(4), "recovered after {took:?}");
    assert!(count.load(Ordering::SeqCst) >= 1);
}

#[test]
fn wrong_answers_are_reported_once_and_retried_with_backoff() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/cam", listener.local_addr().unwrap());
    let count = serve(listener, |conn, n| {
        let _ = if n < 2 {
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 6\r\n\r\n<html>")
        } else {
            conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        };
    });
    let mut src = HttpSource::open(&url, HttpOptions::default()).unwrap();
    let t = Instant::now();
    let first = src.next_frame().unwrap_err();
    assert_eq!(
        first.to_string(),
        format!(
            "source {url}: wrong content type 'text/html; charset=utf-8': expected multipart/x-mixed-replace \
             (a stream) or image/jpeg (a snapshot)"
        )
    );
    assert!(matches!(first, CaptureError::Other { .. }));
    // The second (same) answer is not reported again; the 404 is.
    let second = src.next_frame().unwrap_err();
    assert_eq!(
        second.to_string(),
        format!("source {url}: the camera answered HTTP 404")
    );
    let at = t.elapsed();
    // Tries at 0, 0.2, 0.6 s (backoff 0.2, 0.4): the third request is the first 404.
    assert!(
        at >= Duration::from_millis(550) && at < Duration::from_millis(1500),
        "{at:?}"
    );
    assert!(src
        .next_frame_timeout(Duration::from_millis(1500))
        .unwrap()
        .is_none());
    // 0.6 + 0.8 + 1.6 = 3.0 s: no more than 5 requests in ~2.1 s.
    let n = count.load(Ordering::SeqCst);
    assert!((4..=5).contains(&n), "{n} requests");
}

#[test]
fn snapshot_url_is_polled_at_the_set_rate() {
    let photos = photos();
    let jpeg = photos[1].0.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://user:secret@{}/capture",
        listener.local_addr().unwrap()
    );
    let count = serve(listener, move |conn, _| {
        let _ = write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            jpeg.len()
        );
        let _ = conn.write_all(&jpeg);
    });
    let opts = HttpOptions {
        snapshot_fps: 5.0,
        ..HttpOptions::default()
    };
    let mut src = HttpSource::open(&url, opts).unwrap();
    assert!(!src.name().contains("secret"), "{}", src.name());
    let t = Instant::now();
    let mut seqs = Vec::new();
    while t.elapsed() < Duration::from_millis(2050) {
        let f = next(&mut src);
        assert!(f.image == photos[1].1);
        seqs.push(f.seq);
    }
    // Requests at 0, 0.2, ..., 2.0 s: 11 (one either way for scheduling).
    assert!((10..=12).contains(&seqs.len()), "{seqs:?}");
    assert_eq!(src.dropped(), 0);
    let n = count.load(Ordering::SeqCst);
    assert!((10..=12).contains(&n), "{n} requests");
}

#[test]
fn malformed_urls_are_refused_at_open() {
    let err = |url: &str| {
        HttpSource::open(url, HttpOptions::default())
            .err()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        err("https://cam/stream"),
        "source https://cam/stream: 'https://cam/stream' is not an http:// URL (cameras are read over plain \
         HTTP; https is not supported)"
    );
    assert_eq!(
        err("http://cam:http/"),
        "source http://cam:http/: bad port 'http' in 'http://cam:http/'"
    );
    assert_eq!(err("http:///x"), "source http:///x: no host in 'http:///x'");
    let slow = HttpOptions {
        snapshot_fps: 0.0,
        ..HttpOptions::default()
    };
    assert_eq!(
        HttpSource::open("http://cam/capture", slow)
            .err()
            .unwrap()
            .to_string(),
        "source http://cam/capture: snapshot fps must be from 0.01 to 1000, got 0"
    );
}
