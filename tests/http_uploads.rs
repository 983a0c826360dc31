//! Adversarial uploads: a cross-site page in a browser that holds the token (CSRF: a form's `text/plain`
//! body, a foreign `Origin`) and huge photos (two 7000x7000 JPEGs at once) never enroll anyone and never
//! blow up the memory; a same-origin upload still works.

mod http_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_support::*;

fn photo() -> Vec<u8> {
    std::fs::read(face("misc/face_recognition/examples_obama.jpg")).unwrap()
}

fn ct(t: &str) -> (&'static str, String) {
    ("Content-Type", t.to_string())
}

#[tokio::test]
async fn cross_site_and_non_image_uploads_are_refused_before_reading() {
    let (server, _, enroller) = start().await;
    let addr = server.local_addr();
    let photo = photo();
    // What a cross-site <form enctype="text/plain"> or a no-preflight fetch can send.
    for (t, shown) in [
        ("text/plain", "'text/plain'"),
        ("text/plain; charset=utf-8", "'text/plain'"),
        (
            "application/x-www-form-urlencoded",
            "'application/x-www-form-urlencoded'",
        ),
    ] {
        let r = request(
            addr,
            "POST",
            "/api/enroll?name=Mallory",
            &[bearer(), ct(t)],
            &photo,
        )
        .await;
        assert_eq!(r.status, 415, "{t}");
        assert_eq!(
            r.json()["error"],
            format!("send the photo with an image content type (Content-Type: image/jpeg, image/png, ...), not {shown}")
        );
    }
    let r = request(
        addr,
        "POST",
        "/api/enroll?name=Mallory",
        &[bearer()],
        &photo,
    )
    .await;
    assert_eq!(r.status, 415);
    assert_eq!(
        r.json()["error"],
        "send the photo with an image content type (Content-Type: image/jpeg, image/png, ...), not no Content-Type"
    );
    // A foreign Origin (the page of another site), or `null` (a sandboxed frame): 403 even with the token.
    for origin in [
        "http://evil.example",
        "http://facegate.evil.example",
        "null",
        "http://facegate:8099",
    ] {
        let r = request(
            addr,
            "POST",
            "/api/enroll?name=Mallory",
            &[bearer(), ct("image/jpeg"), ("Origin", origin.to_string())],
            &photo,
        )
        .await;
        assert_eq!(r.status, 403, "{origin}");
        assert_eq!(
            r.json()["error"],
            format!("cross-origin upload refused: the request comes from {origin}, not from this server (facegate)")
        );
    }
    assert_eq!(enroller.calls.load(Ordering::SeqCst), 0, "nobody enrolled");
    assert!(enroller.gallery.people().unwrap().is_empty());
    // The same upload from the server's own page (Origin = the Host the browser used) goes through.
    let r = request(
        addr,
        "POST",
        "/api/enroll?name=Barack",
        &[
            bearer(),
            ct("image/jpeg"),
            ("Origin", "http://facegate".to_string()),
        ],
        &photo,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    server.shutdown().await;
}

/// The resident set of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// A real photo scaled up to 7000x7000 and encoded as JPEG (made once, kept in the temp dir).
fn huge_jpeg() -> Vec<u8> {
    let path = std::env::temp_dir().join("facegate-test-7000x7000.jpg");
    if let Ok(b) = std::fs::read(&path) {
        return b;
    }
    let small =
        facegate::imageio::load_image(face("misc/face_recognition/examples_obama.jpg")).unwrap();
    let big = image::imageops::resize(&small, 7000, 7000, image::imageops::FilterType::Nearest);
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 85)
        .encode(big.as_raw(), 7000, 7000, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&tmp, &out).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    out
}

#[tokio::test]
async fn two_huge_photos_at_once_are_refused_from_their_header() {
    let huge = Arc::new(huge_jpeg());
    assert!(
        huge.len() < 20 << 20,
        "fits the upload limit: {} bytes",
        huge.len()
    );
    let (server, _, enroller) = start().await;
    let addr = server.local_addr();
    // Peak RSS while the uploads are handled, sampled every 5 ms.
    let base = rss();
    let peak = Arc::new(AtomicU64::new(base));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                peak.fetch_max(rss(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let upload = |name: &'static str| {
        let huge = huge.clone();
        tokio::spawn(async move {
            request(
                addr,
                "POST",
                &format!("/api/enroll?name={name}"),
                &[bearer(), ct("image/jpeg")],
                &huge,
            )
            .await
        })
    };
    let (a, b) = (upload("A"), upload("B"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    done.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    let grew = peak.load(Ordering::SeqCst).saturating_sub(base);
    println!(
        "RSS before {} MB, peak growth {} MB",
        base >> 20,
        grew >> 20
    );
    for r in [a, b] {
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(&r.body));
        assert_eq!(
            r.json()["error"],
            "image too large: 7000x7000 = 49.0 megapixels, the limit is 24.0 megapixels"
        );
    }
    assert_eq!(enroller.calls.load(Ordering::SeqCst), 0);
    // Two uploads held (the bodies, a few MB each) and no decode: far below one 7000x7000 RGB image (147 MB).
    assert!(grew < 100 << 20, "RSS grew by {} MB", grew >> 20);
    server.shutdown().await;
}
