//! The HTTP server through real TCP connections: health, snapshot, MJPEG stream, events, page, enrollment,
//! auth (token and ingress peer) and shutdown. Frames are a real photo with the real detector's box.

mod http_support;

use std::time::{Duration, Instant};

use facegate::config::{HttpConfig, Secret};
use facegate::decide::{Decision, Verdict};
use facegate::http::CameraStatus;
use facegate::pipeline::PipelineEvent;
use http_support::*;

fn decode(jpeg: &[u8]) -> image::RgbImage {
    image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
        .expect("a JPEG")
        .to_rgb8()
}

#[tokio::test]
async fn health_needs_no_token_and_reports_each_camera() {
    let (server, view, _) = start().await;
    let addr = server.local_addr();
    let r = request(addr, "GET", "/health", &[], b"").await;
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["status"], "ok");
    assert_eq!(j["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(j["cameras"][0]["name"], CAMERA);
    assert_eq!(j["cameras"][0]["status"]["state"], "starting");
    assert_eq!(j["cameras"][0]["frames"], 0);
    assert!(j["cameras"][0]["last_frame_age_s"].is_null());

    let (frame, report) = camera_frame(1);
    view.publish_frame(CAMERA, &frame, &report);
    let j = request(addr, "GET", "/health", &[], b"").await.json();
    assert_eq!(j["cameras"][0]["status"]["state"], "streaming");
    assert_eq!(j["cameras"][0]["frames"], 1);

    view.set_camera_status(
        CAMERA,
        CameraStatus::Disconnected {
            reason: "unplugged".into(),
        },
    );
    let j = request(addr, "GET", "/health", &[], b"").await.json();
    assert_eq!(j["status"], "degraded");
    assert_eq!(j["cameras"][0]["status"]["reason"], "unplugged");
    server.shutdown().await;
}

#[tokio::test]
async fn snapshot_is_the_newest_frame_with_the_overlay() {
    let (server, view, _) = start().await;
    let addr = server.local_addr();
    let r = get(addr, "/api/snapshot.jpg").await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json()["error"],
        "camera 'Front door' has not delivered a frame yet"
    );

    let (frame, report) = camera_frame(41);
    view.publish_frame(CAMERA, &frame, &report);
    let r = get(addr, "/api/snapshot.jpg?camera=Front%20door").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-facegate-frame"), Some("41"));
    let img = decode(&r.body);
    assert_eq!(img.dimensions(), (640, 480));
    // The box's left edge is drawn in green (live + recognised); the face inside is the frame's (JPEG: ±40).
    let [x, y, w, h] = report.faces[0].bbox.map(|v| v.round() as u32);
    let edge = img.get_pixel(x + 1, y + h / 2).0;
    assert!(
        edge[1] > 150 && edge[0] < 110 && edge[2] < 150,
        "edge pixel {edge:?} is not green"
    );
    let (cx, cy) = (x + w / 2, y + h / 2);
    let (got, want) = (img.get_pixel(cx, cy).0, frame.image.get_pixel(cx, cy).0);
    for c in 0..3 {
        assert!(
            (got[c] as i32 - want[c] as i32).abs() <= 40,
            "face centre {got:?} vs frame {want:?}"
        );
    }
    // Without ?camera= the only camera is meant; the same frame is served from the cache.
    let again = get(addr, "/api/snapshot.jpg").await;
    assert_eq!(again.body, r.body);

    let r = get(addr, "/api/snapshot.jpg?camera=Back+door").await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json()["error"],
        "no camera named 'Back door' (cameras: Front door)"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn stream_sends_each_new_frame_as_a_jpeg_part() {
    let (server, view, _) = start().await;
    let addr = server.local_addr();
    let (status, mut client) =
        MjpegClient::open(addr, "/api/stream.mjpg?camera=Front%20door").await;
    assert_eq!(status, 200);
    let ct = client
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .unwrap();
    assert_eq!(ct.1, "multipart/x-mixed-replace; boundary=facegateframe");
    for seq in 1..=3 {
        let (frame, report) = camera_frame(seq);
        view.publish_frame(CAMERA, &frame, &report);
        let (jpeg, got_seq) = client.next_part().await.expect("a part per frame");
        assert_eq!(got_seq, seq);
        assert_eq!(decode(&jpeg).dimensions(), (640, 480));
    }
    assert_eq!(view.health()[0].viewers, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_slow_stream_client_skips_to_the_newest_frame_instead_of_queueing() {
    let (server, view, _) = start().await;
    let addr = server.local_addr();
    let (_, mut client) = MjpegClient::open(addr, "/api/stream.mjpg").await;
    let (frame, report) = camera_frame(1);
    view.publish_frame(CAMERA, &frame, &report);
    client.next_part().await.unwrap();
    // The client stops reading while 999 frames (~34 MB of JPEG) are published: more than the socket
    // buffers can hold, so a server that queued frames would have to keep them itself.
    for seq in 2..=1000 {
        let (frame, report) = camera_frame(seq);
        view.publish_frame(CAMERA, &frame, &report);
        if seq % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut received = vec![];
    while received.last() != Some(&1000) {
        let part = tokio::time::timeout(Duration::from_secs(10), client.next_part()).await;
        let (_, seq) = part.expect("the newest frame arrives").unwrap();
        received.push(seq);
    }
    assert!(
        received.windows(2).all(|w| w[0] < w[1]),
        "frames in order: {received:?}"
    );
    assert!(
        received.len() < 500,
        "{} parts for 999 frames: frames were queued",
        received.len()
    );
    // Nothing stale is left behind the newest frame.
    let more = tokio::time::timeout(Duration::from_millis(500), client.next_part()).await;
    assert!(more.is_err(), "a part after the newest frame: {more:?}");
    println!(
        "stalled client: {} parts for 999 frames published while it did not read",
        received.len()
    );
    server.shutdown().await;
}

fn decision(track: u64, verdict: Verdict) -> PipelineEvent {
    PipelineEvent::Decision {
        frame: 9,
        t: 0.9,
        decision: Decision {
            gate: "front".into(),
            track_id: track,
            person: Some("Barack".into()),
            confidence: 0.9,
            liveness: 0.95,
            verdict,
            why: "test".into(),
            at: std::time::SystemTime::now(),
        },
    }
}

#[tokio::test]
async fn events_are_listed_newest_first_with_a_limit() {
    let (server, view, _) = start().await;
    let addr = server.local_addr();
    view.push_event(
        CAMERA,
        &PipelineEvent::Blink {
            track: 1,
            frame: 5,
            t: 0.5,
        },
    );
    let (frame, mut report) = camera_frame(9);
    report
        .events
        .push(decision(1, Verdict::Granted { actions: vec![] }));
    view.publish_frame(CAMERA, &frame, &report);

    let j = get(addr, "/api/events").await.json();
    let events = j["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event"], "decision");
    assert_eq!(events[0]["id"], 2);
    assert_eq!(events[0]["camera"], CAMERA);
    assert_eq!(events[0]["decision"]["verdict"]["kind"], "granted");
    assert_eq!(events[0]["decision"]["person"], "Barack");
    assert_eq!(events[1]["event"], "blink");
    assert_eq!(events[1]["frame"], 5);
    assert!(events[1]["at"].as_f64().unwrap() > 1.7e9);

    let j = get(addr, "/api/events?limit=1&camera=Front%20door")
        .await
        .json();
    assert_eq!(j["events"].as_array().unwrap().len(), 1);
    for bad in ["limit=0", "limit=abc", "limit=100000"] {
        let r = get(addr, &format!("/api/events?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("limit must be"));
    }
    assert_eq!(get(addr, "/api/events?camera=Garage").await.status, 404);
    // The decision shows on the overlay's bottom line, in green.
    let img = decode(&get(addr, "/api/snapshot.jpg").await.body);
    let greens = (462..480)
        .flat_map(|y| (0..300).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let p = img.get_pixel(x, y).0;
            p[1] > 150 && p[0] < 120
        })
        .count();
    assert!(
        greens > 50,
        "the last decision line is drawn ({greens} green pixels)"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_page_uses_relative_urls_for_ingress() {
    let (server, _, _) = start().await;
    let r = get(server.local_addr(), "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let html = String::from_utf8(r.body).unwrap();
    assert!(html.contains("<img src=\"api/stream.mjpg?camera=Front%20door\""));
    assert!(html.contains("fetch('api/enroll?name="));
    assert!(!html.contains("\"/api/"));
    server.shutdown().await;
}

#[tokio::test]
async fn enrollment_by_upload_stores_the_face_and_reports_it() {
    let (server, _, enroller) = start().await;
    let addr = server.local_addr();
    let photo = std::fs::read(face("misc/face_recognition/examples_obama.jpg")).unwrap();
    let ct = ("Content-Type", "image/jpeg".to_string());
    let r = request(
        addr,
        "POST",
        "/api/enroll?name=Barack%20Obama",
        &[bearer(), ct.clone()],
        &photo,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    assert_eq!(j["name"], "Barack Obama");
    assert_eq!(j["embeddings"], 1);
    assert!(j["quality"].as_f64().unwrap() > 0.0);
    let photo2 = std::fs::read(face("misc/face_recognition/examples_obama2.jpg")).unwrap();
    let r = request(
        addr,
        "POST",
        "/api/enroll?name=Barack%20Obama",
        &[bearer(), ct.clone()],
        &photo2,
    )
    .await;
    assert_eq!(r.json()["embeddings"], 2);
    assert_eq!(enroller.gallery.people().unwrap()[0].embeddings, 2);

    // A tight portrait crop is padded before detection, like `facegate enroll --pad auto`.
    let crop = std::fs::read(first_file("identities/Elton_John")).unwrap();
    let r = request(
        addr,
        "POST",
        "/api/enroll?name=Elton",
        &[bearer(), ct.clone()],
        &crop,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["embeddings"], 1);
    // Two people in the photo: refused with the enroller's reason.
    let two = std::fs::read(face("misc/face_recognition/examples_two_people.jpg")).unwrap();
    let r = request(
        addr,
        "POST",
        "/api/enroll?name=Two",
        &[bearer(), ct.clone()],
        &two,
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["error"],
        "2 faces found: an enrollment photo must show only the person"
    );
    // A real photo without a person: the enroller's reason, 422.
    let scene = std::fs::read(first_file("negatives/no_person")).unwrap();
    let r = request(
        addr,
        "POST",
        "/api/enroll?name=Nobody",
        &[bearer(), ct],
        &scene,
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"], "no face found");

    let events = get(addr, "/api/events?limit=1").await.json();
    let e = &events["events"][0];
    assert_eq!(
        (e["event"].as_str(), e["name"].as_str(), e["ok"].as_bool()),
        (Some("enrollment"), Some("Nobody"), Some(false))
    );
    assert!(e["camera"].is_null());
    server.shutdown().await;
}

fn first_file(dir: &str) -> std::path::PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(face(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "jpg"))
        .expect("a jpg")
}

#[tokio::test]
async fn everything_but_health_needs_the_token() {
    let (server, _, _) = start().await;
    let addr = server.local_addr();
    for target in [
        "/",
        "/api/snapshot.jpg",
        "/api/stream.mjpg",
        "/api/events",
        "/nope",
    ] {
        let r = request(addr, "GET", target, &[], b"").await;
        assert_eq!(r.status, 401, "{target}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"facegate\", Basic realm=\"facegate\"")
        );
        assert_eq!(
            r.json()["error"],
            "missing credentials: send 'Authorization: Bearer <token>'"
        );
        let wrong = ("Authorization", "Bearer not-the-token".to_string());
        let r = request(addr, "GET", target, &[wrong], b"").await;
        assert_eq!(r.status, 401, "{target}");
        assert_eq!(r.json()["error"], "wrong token");
    }
    let r = request(addr, "POST", "/api/enroll?name=x", &[], b"abc").await;
    assert_eq!(r.status, 401);
    // Basic auth with the token as password (browsers, HA's MJPEG camera): any user name.
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("viewer:{TOKEN}"));
    let r = request(
        addr,
        "GET",
        "/api/events",
        &[("Authorization", format!("Basic {basic}"))],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn without_a_token_only_the_ingress_peer_gets_in() {
    // Default ingress peer (the Supervisor): a local client is refused, clearly.
    let (server, _, _) = start_with(HttpConfig::default()).await;
    let r = request(server.local_addr(), "GET", "/api/events", &[bearer()], b"").await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["error"],
        "this server only accepts requests through Home Assistant ingress: no http.token is configured"
    );
    server.shutdown().await;
    // 127.0.0.1 configured as the ingress peer: no credentials needed.
    let config = HttpConfig {
        ingress_peers: vec!["127.0.0.1".parse().unwrap()],
        ..HttpConfig::default()
    };
    let (server, _, _) = start_with(config).await;
    assert_eq!(
        request(server.local_addr(), "GET", "/api/events", &[], b"")
            .await
            .status,
        200
    );
    server.shutdown().await;
    // With a token too, the ingress peer still needs none.
    let config = HttpConfig {
        token: Secret::new(TOKEN),
        ingress_peers: vec!["127.0.0.1".parse().unwrap()],
        ..HttpConfig::default()
    };
    let (server, _, _) = start_with(config).await;
    assert_eq!(
        request(server.local_addr(), "GET", "/", &[], b"")
            .await
            .status,
        200
    );
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_live_streams_and_stops_listening() {
    let (server, view, _) = start().await;
    let addr = server.local_addr();
    let (frame, report) = camera_frame(1);
    view.publish_frame(CAMERA, &frame, &report);
    let (_, mut client) = MjpegClient::open(addr, "/api/stream.mjpg").await;
    client.next_part().await.unwrap();
    let t = Instant::now();
    server.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        t.elapsed()
    );
    assert!(client.next_part().await.is_none(), "the stream ended");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still listening"
    );
    assert_eq!(view.health()[0].viewers, 0);
}
