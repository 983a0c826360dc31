//! Bad input to the HTTP server, each through a real TCP connection: a clear status and JSON message, the
//! enroller never called, and the server still serving afterwards.

mod http_support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const JPEG: (&str, &str) = ("Content-Type", "image/jpeg");

fn jpeg_header() -> (&'static str, String) {
    (JPEG.0, JPEG.1.to_string())
}

async fn still_healthy(addr: std::net::SocketAddr) {
    let r = request(addr, "GET", "/health", &[], b"").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn an_upload_that_is_not_an_image_gets_imageio_message() {
    let (server, _, enroller) = start().await;
    let addr = server.local_addr();
    let cases: [(&[u8], &str); 3] = [
        (
            b"name,face\nalice,1\n",
            "not an image: the content matches no known image format",
        ),
        (
            b"%PDF-1.4 not a photo",
            "not an image: the content matches no known image format",
        ),
        (b"", "empty file (0 bytes)"),
    ];
    for (body, message) in cases {
        let r = request(
            addr,
            "POST",
            "/api/enroll?name=Alice",
            &[bearer(), jpeg_header()],
            body,
        )
        .await;
        assert_eq!(r.status, 400);
        assert_eq!(r.json()["error"], message);
        assert_eq!(r.json()["status"], 400);
    }
    assert_eq!(enroller.calls.load(Ordering::SeqCst), 0);
    still_healthy(addr).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_truncated_jpeg_is_refused() {
    let (server, _, enroller) = start().await;
    let addr = server.local_addr();
    let photo = std::fs::read(face("misc/face_recognition/examples_obama.jpg")).unwrap();
    let half = &photo[..photo.len() / 2];
    let r = request(
        addr,
        "POST",
        "/api/enroll?name=Alice",
        &[bearer(), jpeg_header()],
        half,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"],
        "truncated or corrupt JPEG data: the file ends before the JPEG end-of-image marker (truncated)"
    );
    assert_eq!(enroller.calls.load(Ordering::SeqCst), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn an_enormous_declared_upload_is_refused_before_any_of_it_is_sent() {
    let (server, _, enroller) = start().await;
    let addr = server.local_addr();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/enroll?name=Alice HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: image/jpeg\r\nContent-Length: 10000000000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // Not a byte of the body is sent: the answer must come anyway.
    let r = tokio::time::timeout(Duration::from_secs(5), read_reply(&mut BufReader::new(s)))
        .await
        .expect("413 without waiting for the body");
    assert_eq!(r.status, 413);
    assert_eq!(
        r.json()["error"],
        "upload too large: more than 20971520 bytes (http.max_upload_mb)"
    );
    assert_eq!(enroller.calls.load(Ordering::SeqCst), 0);
    still_healthy(addr).await;
    server.shutdown().await;
}

#[tokio::test]
async fn an_endless_chunked_upload_is_cut_off_at_the_limit() {
    let (server, _, _) = start().await;
    let addr = server.local_addr();
    let s = TcpStream::connect(addr).await.unwrap();
    let (rd, mut wr) = s.into_split();
    let head = format!(
        "POST /api/enroll?name=Alice HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    wr.write_all(head.as_bytes()).await.unwrap();
    // A sender that never stops (a JPEG start, then zeros) until the server stops reading.
    let sender = tokio::spawn(async move {
        let mut sent = 0u64;
        let mut chunk = vec![0u8; 64 << 10];
        chunk[..3].copy_from_slice(&[0xff, 0xd8, 0xff]);
        let framed = [
            format!("{:x}\r\n", chunk.len()).into_bytes(),
            chunk,
            b"\r\n".to_vec(),
        ]
        .concat();
        while sent < (200 << 20) && wr.write_all(&framed).await.is_ok() {
            sent += 64 << 10;
        }
        sent
    });
    let t = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(20), read_reply(&mut BufReader::new(rd)))
        .await
        .expect("a reply while the upload still streams");
    assert_eq!(r.status, 413);
    assert_eq!(
        r.json()["error"],
        "upload too large: more than 20971520 bytes (http.max_upload_mb)"
    );
    let sent = sender.await.unwrap();
    assert!(
        sent < 200 << 20,
        "the server read the whole endless upload ({sent} bytes)"
    );
    println!(
        "413 after {:?}; the client had sent {} MiB",
        t.elapsed(),
        sent >> 20
    );
    still_healthy(addr).await;
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_enrollment_requests_get_clear_replies() {
    let (server, _, enroller) = start().await;
    let addr = server.local_addr();
    let photo = std::fs::read(face("misc/face_recognition/examples_obama.jpg")).unwrap();
    let multipart = (
        "Content-Type",
        "multipart/form-data; boundary=x".to_string(),
    );
    let r = request(
        addr,
        "POST",
        "/api/enroll?name=Alice",
        &[bearer(), multipart],
        &photo,
    )
    .await;
    assert_eq!(r.status, 415);
    assert_eq!(
        r.json()["error"],
        "send the image as the raw request body (Content-Type: image/jpeg), not as a multipart form"
    );
    for target in [
        "/api/enroll",
        "/api/enroll?name=",
        "/api/enroll?name=%20%20",
    ] {
        let r = request(addr, "POST", target, &[bearer(), jpeg_header()], &photo).await;
        assert_eq!(r.status, 400, "{target}");
        assert_eq!(
            r.json()["error"],
            "missing the person's name: add ?name=NAME"
        );
    }
    let r = request(
        addr,
        "POST",
        "/api/enroll?name=A%0Ab",
        &[bearer(), jpeg_header()],
        &photo,
    )
    .await;
    assert_eq!(r.status, 400);
    let r = request(
        addr,
        "POST",
        "/api/enroll?name=%E2%82",
        &[bearer(), jpeg_header()],
        &photo,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "query parameter 'name': not valid UTF-8");
    let r = get(addr, "/api/enroll?name=Alice").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(enroller.calls.load(Ordering::SeqCst), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_cameras_and_methods() {
    let (server, _, _) = start().await;
    let addr = server.local_addr();
    let r = get(addr, "/api/nothing-here").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "no such page: /api/nothing-here");
    for target in [
        "/api/snapshot.jpg?camera=Garage",
        "/api/stream.mjpg?camera=Garage",
    ] {
        let r = get(addr, target).await;
        assert_eq!(r.status, 404, "{target}");
        assert_eq!(
            r.json()["error"],
            "no camera named 'Garage' (cameras: Front door)"
        );
    }
    let r = get(addr, "/api/snapshot.jpg?camera=%zz").await;
    assert_eq!(r.status, 400);
    let r = request(addr, "DELETE", "/api/events", &[bearer()], b"").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));
    server.shutdown().await;
}

#[tokio::test]
async fn garbage_instead_of_http_gets_400_and_the_server_goes_on() {
    let (server, _, _) = start().await;
    let addr = server.local_addr();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"\x16\x03\x01\x02\x00 this is TLS or noise\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert!(
        out.is_empty() || out.starts_with(b"HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    still_healthy(addr).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_stream_leaves_nothing_behind() {
    let (server, view, _) = start().await;
    let addr = server.local_addr();
    let (frame, report) = camera_frame(1);
    view.publish_frame(CAMERA, &frame, &report);
    for round in 0..5 {
        let (_, mut client) = MjpegClient::open(addr, "/api/stream.mjpg").await;
        client.next_part().await.unwrap();
        // Hang up in the middle of the next part: read a few bytes of it, then drop the socket.
        let (frame, report) = camera_frame(2 + round);
        view.publish_frame(CAMERA, &frame, &report);
        let mut some = [0u8; 100];
        client.reader.read_exact(&mut some).await.unwrap();
        drop(client);
    }
    // The server notices on its next write: publish until every stream is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seq = 100;
    while view.health()[0].viewers > 0 {
        assert!(
            Instant::now() < deadline,
            "{} streams still open",
            view.health()[0].viewers
        );
        let (frame, report) = camera_frame(seq);
        view.publish_frame(CAMERA, &frame, &report);
        seq += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    still_healthy(addr).await;
    let r = get(addr, "/api/snapshot.jpg").await;
    assert_eq!(r.status, 200);
    server.shutdown().await;
}
