//! Adversarial: nobody on the LAN can lock the HTTP server up. Hundreds of sockets that send nothing, a
//! slow client trickling its headers, and a crowd of live MJPEG streams: `/health` (unauthenticated, what
//! the add-on watchdog and HA ingress rely on) still answers within 1 s.

mod http_support;

use std::time::{Duration, Instant};

use facegate::http::{IDLE_TIMEOUT, MAX_STREAMS};
use http_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `/health` on a fresh connection, timed; panics when it takes more than 1 s.
async fn health_within_1s(addr: std::net::SocketAddr, what: &str) -> Duration {
    let t0 = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(1),
        request(addr, "GET", "/health", &[], b""),
    )
    .await
    .unwrap_or_else(|_| panic!("/health did not answer within 1 s {what}"));
    assert_eq!(r.status, 200, "{what}");
    assert_eq!(r.json()["version"], env!("CARGO_PKG_VERSION"));
    t0.elapsed()
}

#[tokio::test]
async fn idle_and_slow_sockets_do_not_lock_out_health() {
    let (server, _, _) = start().await;
    let addr = server.local_addr();
    // 400 sockets that connect and send nothing (the old server took 64 and then stopped accepting).
    let mut idle = Vec::new();
    let opened = Instant::now();
    for _ in 0..400 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // One that trickles a request line, a byte every 100 ms.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let trickle = tokio::spawn(async move {
        for b in b"GET /health HTTP/1.1\r\nHost: x\r\n" {
            if slow.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..5 {
        let took = health_within_1s(addr, &format!("with 400 idle sockets open (try {i})")).await;
        println!("/health with 400 idle sockets: {took:?}");
    }
    // And an authenticated request too (what ingress does).
    let r = tokio::time::timeout(Duration::from_secs(1), get(addr, "/api/events?limit=1"))
        .await
        .expect("events within 1 s");
    assert_eq!(r.status, 200);

    // Idle sockets are closed once idle for IDLE_TIMEOUT (or evicted earlier to make room): the most
    // recent ones see the server hang up within the idle timeout (+1 s).
    let mut last = idle.pop().unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(IDLE_TIMEOUT + Duration::from_secs(1), last.read(&mut buf))
        .await
        .expect("an idle socket is closed by the server within the idle timeout");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    println!(
        "an idle socket was closed by the server {:?} after it connected",
        opened.elapsed()
    );
    trickle.abort();
    drop(idle);
    server.shutdown().await;
}

#[tokio::test]
async fn a_crowd_of_live_streams_does_not_lock_out_health() {
    let (server, view, _) = start().await;
    let addr = server.local_addr();
    let (frame, report) = camera_frame(1);
    view.publish_frame(CAMERA, &frame, &report);
    let mut streams = Vec::new();
    let mut refused = 0;
    for _ in 0..64 {
        let (status, client) =
            MjpegClient::open(addr, &format!("/api/stream.mjpg?camera={}", "Front%20door")).await;
        match status {
            200 => streams.push(client),
            503 => refused += 1,
            s => panic!("stream answered {s}"),
        }
    }
    assert_eq!(streams.len(), MAX_STREAMS, "streams served at once");
    assert_eq!(
        refused,
        64 - MAX_STREAMS,
        "the others are told to come back"
    );
    for i in 0..5 {
        let took =
            health_within_1s(addr, &format!("with 64 live streams asked for (try {i})")).await;
        println!("/health with {} live streams: {took:?}", streams.len());
    }
    // The streams really stream: each gets the published frame.
    for s in streams.iter_mut().take(3) {
        let (jpeg, seq) = s.next_part().await.expect("a part");
        assert_eq!(seq, 1);
        assert!(jpeg.starts_with(&[0xFF, 0xD8]));
    }
    // A closed stream frees its slot (the server notices when it writes the next frame).
    drop(streams.pop());
    let (frame, report) = camera_frame(2);
    view.publish_frame(CAMERA, &frame, &report);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _again) = MjpegClient::open(addr, "/api/stream.mjpg").await;
    assert_eq!(status, 200);
    drop(streams);
    server.shutdown().await;
}
