//! Measurements of the HTTP live view on a 640x480 frame (a real photo with the real detector's box), printed
//! for docs/HTTP.md, with loose bounds so a regression by an order of magnitude fails: snapshot latency
//! (cached and freshly encoded), MJPEG frames per second served to one and to three clients, the cost of
//! publishing a frame, and that resident memory stays flat over thousands of frames with viewers attached.
//! Run: `cargo test --test http_measure -- --nocapture`. One test only, so nothing else runs beside it.

mod http_support;

use std::time::{Duration, Instant};

use facegate::stats::{median, percentile};
use http_support::*;

/// Resident set size of this process, MiB (Linux).
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096.0 / (1 << 20) as f64
}

/// Parts per second one stream client receives while frames are published at `publish_fps` (0 = as fast as
/// possible) for `secs`, with `clients` clients reading.
async fn stream_fps(
    addr: std::net::SocketAddr,
    view: &facegate::http::LiveView,
    publish_fps: u32,
    clients: usize,
    secs: f64,
) -> Vec<f64> {
    let mut readers = Vec::new();
    for _ in 0..clients {
        let (_, mut c) = MjpegClient::open(addr, "/api/stream.mjpg").await;
        readers.push(tokio::spawn(async move {
            let mut n = 0u32;
            let t = Instant::now();
            while t.elapsed().as_secs_f64() < secs {
                match tokio::time::timeout(Duration::from_millis(500), c.next_part()).await {
                    Ok(Some(_)) => n += 1,
                    _ => break,
                }
            }
            n as f64 / t.elapsed().as_secs_f64()
        }));
    }
    let t = Instant::now();
    let mut seq = 1_000_000;
    while t.elapsed().as_secs_f64() < secs + 0.3 {
        let (frame, report) = camera_frame(seq);
        view.publish_frame(CAMERA, &frame, &report);
        seq += 1;
        let pause = if publish_fps == 0 {
            1
        } else {
            1000 / publish_fps as u64
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    let mut out = Vec::new();
    for r in readers {
        out.push(r.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_640x480_latency_fps_and_flat_memory() {
    let (server, view, _) = start().await;
    let addr = server.local_addr();

    // Publishing a frame with nobody watching: a copy into the previous frame's buffer, no encoding.
    let frames: Vec<_> = (1..=200).map(camera_frame).collect();
    let t = Instant::now();
    for (frame, report) in &frames {
        view.publish_frame(CAMERA, frame, report);
    }
    let publish_us = t.elapsed().as_secs_f64() * 1e6 / frames.len() as f64;

    // Snapshot of a new frame each time (overlay drawn + JPEG encoded), then of the same frame (cached).
    let mut fresh = Vec::new();
    for (i, (frame, report)) in frames.iter().take(30).enumerate() {
        let mut f = frame.clone();
        f.seq = 10_000 + i as u64;
        view.publish_frame(CAMERA, &f, report);
        let t = Instant::now();
        let r = get(addr, "/api/snapshot.jpg").await;
        fresh.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(r.status, 200);
    }
    let mut cached = Vec::new();
    let mut jpeg_kib = 0.0;
    for _ in 0..50 {
        let t = Instant::now();
        let r = get(addr, "/api/snapshot.jpg").await;
        cached.push(t.elapsed().as_secs_f64() * 1e3);
        jpeg_kib = r.body.len() as f64 / 1024.0;
    }
    let (fresh_med, fresh_p95) = (median(&fresh), percentile(&fresh, 0.95));
    let (cached_med, cached_p95) = (median(&cached), percentile(&cached, 0.95));

    let at30 = stream_fps(addr, &view, 30, 1, 3.0).await;
    let max1 = stream_fps(addr, &view, 0, 1, 3.0).await;
    let max3 = stream_fps(addr, &view, 0, 3, 3.0).await;

    // Memory: 3000 more frames with two stream clients and a snapshot poller attached.
    let rss_before = rss_mib();
    let soak = stream_fps(addr, &view, 0, 2, 6.0);
    let poll = async {
        for _ in 0..60 {
            assert_eq!(get(addr, "/api/snapshot.jpg").await.status, 200);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (soak, _) = tokio::join!(soak, poll);
    let rss_after = rss_mib();

    println!("HTTP live view, 640x480 frame, JPEG {jpeg_kib:.0} KiB:");
    println!("  publish_frame, no viewer: {publish_us:.0} us");
    println!(
        "  snapshot, new frame (draw + encode): median {fresh_med:.1} ms, p95 {fresh_p95:.1} ms"
    );
    println!(
        "  snapshot, same frame (cached):       median {cached_med:.2} ms, p95 {cached_p95:.2} ms"
    );
    println!("  MJPEG, camera at 30 fps, 1 client: {:.1} fps", at30[0]);
    println!(
        "  MJPEG, frames as fast as published, 1 client: {:.1} fps",
        max1[0]
    );
    println!(
        "  MJPEG, frames as fast as published, 3 clients: {:?} fps",
        max3.iter()
            .map(|f| (f * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
    println!("  RSS over a 6 s soak with 2 streams + snapshots: {rss_before:.1} -> {rss_after:.1} MiB (streams at {soak:.1?} fps)");

    assert!(
        fresh_med < 500.0 && cached_med < 100.0,
        "snapshots far too slow"
    );
    assert!(
        at30[0] > 10.0,
        "a 30 fps camera streamed at {:.1} fps",
        at30[0]
    );
    assert!(
        rss_after - rss_before < 20.0,
        "memory grew {rss_before:.1} -> {rss_after:.1} MiB"
    );
    server.shutdown().await;
}
