//! Adversarial: a camera password never leaks. URLs with a `/` in the password, https URLs (refused), wrong
//! credentials and a camera that is down: the error text (what the log, `/health` and the camera's
//! retained MQTT state get), its `Debug`, the configuration's `Debug` and the unauthenticated `/health` body
//! never show the password, while the camera is still read with the right credentials.

mod http_support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use facegate::capture::http::{HttpOptions, HttpSource};
use facegate::capture::{self, CaptureError, FrameSource};
use facegate::config::SourceConfig;
use facegate::http::CameraStatus;
use http_support::*;

const PASSWORD: &str = "pa/ss?w#rd";

fn assert_hidden(text: &str) {
    for fragment in [PASSWORD, "pa/ss", "ss?w", "w#rd", "hunter2"] {
        assert!(!text.contains(fragment), "{fragment:?} leaked in {text:?}");
    }
}

fn open_err(url: &str) -> CaptureError {
    HttpSource::open(url, HttpOptions::default())
        .err()
        .expect("refused at open")
}

#[test]
fn refused_urls_never_show_the_password() {
    let e = open_err("https://admin:hunter2@cam.local/stream");
    assert_eq!(
        e.to_string(),
        "source https://admin:***@cam.local/stream: 'https://admin:***@cam.local/stream' is not an http:// \
         URL (cameras are read over plain HTTP; https is not supported)"
    );
    assert_hidden(&format!("{e:?}"));
    let e = open_err(&format!("http://admin:{PASSWORD}@cam.local:http/stream"));
    assert_eq!(
        e.to_string(),
        "source http://admin:***@cam.local:http/stream: bad port 'http' in 'http://admin:***@cam.local:http/stream'"
    );
    assert_hidden(&format!("{e:?}"));
    // Through the configuration, as the service opens cameras; the config's Debug is redacted too.
    let cfg = SourceConfig::Http {
        url: "https://admin:hunter2@cam.local/x?user=admin&pwd=hunter2".into(),
        fps: 10,
    };
    assert_hidden(&format!("{cfg:?}"));
    let e = capture::open(&cfg).err().expect("https refused");
    assert_hidden(&e.to_string());
    assert_hidden(&format!("{e:?}"));
}

/// A camera answering one JPEG snapshot when the Basic credentials are `admin:PASSWORD`, else 401.
fn camera(listener: TcpListener) {
    use base64::Engine;
    let want = format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}"))
    );
    let jpeg = std::fs::read(face("misc/face_recognition/examples_obama-480p.jpg")).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut authorized = false;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                authorized |= line.trim_end() == want;
            }
            let _ = if authorized {
                conn.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                        jpeg.len()
                    )
                    .as_bytes(),
                )
                .and_then(|_| conn.write_all(&jpeg))
            } else {
                conn.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
            };
        }
    });
}

#[test]
fn a_password_with_a_slash_authenticates_and_wrong_ones_are_reported_redacted() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    camera(listener);
    let mut src = HttpSource::open(
        &format!("http://admin:{PASSWORD}@127.0.0.1:{port}/capture"),
        HttpOptions::default(),
    )
    .unwrap();
    assert_eq!(
        src.name(),
        format!("http://admin:***@127.0.0.1:{port}/capture")
    );
    let f = src
        .next_frame_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("the right credentials get the snapshot");
    let want = facegate::imageio::load_image(face("misc/face_recognition/examples_obama-480p.jpg"))
        .unwrap();
    assert_eq!(f.image.dimensions(), want.dimensions());
    drop(src);
    // A wrong password with a '/' in it: refused by the camera, and reported without it.
    let mut src = HttpSource::open(
        &format!("http://admin:hunter2/x@127.0.0.1:{port}/capture"),
        HttpOptions::default(),
    )
    .unwrap();
    let e = src
        .next_frame_timeout(Duration::from_secs(10))
        .expect_err("401 reported");
    assert_eq!(
        e.to_string(),
        format!("source http://admin:***@127.0.0.1:{port}/capture: the camera answered HTTP 401")
    );
    assert_hidden(&format!("{e:?}"));
}

#[tokio::test]
async fn health_and_camera_status_never_show_the_password() {
    // A camera that is down (nothing listens on the port), opened through the configuration as the service
    // does; its error becomes the camera status that /health and the MQTT camera state show.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut urls = vec![
        format!("http://admin:{PASSWORD}@127.0.0.1:{port}/stream"),
        "https://admin:hunter2@cam.local/stream".to_string(),
    ];
    let (server, view, _) = start().await;
    let addr = server.local_addr();
    for url in urls.drain(..) {
        let cfg = SourceConfig::Http {
            url: url.into(),
            fps: 10,
        };
        let reason = match tokio::task::spawn_blocking(move || match capture::open(&cfg) {
            Ok(mut s) => s.next_frame().expect_err("the camera is down").to_string(),
            Err(e) => e.to_string(),
        })
        .await
        {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        assert_hidden(&reason);
        assert!(reason.contains("admin:***@"), "{reason}");
        view.set_camera_status(
            CAMERA,
            CameraStatus::Disconnected {
                reason: reason.clone(),
            },
        );
        let r = request(addr, "GET", "/health", &[], b"").await;
        let body = String::from_utf8_lossy(&r.body).to_string();
        assert_hidden(&body);
        assert_eq!(
            r.json()["cameras"][0]["status"]["reason"],
            reason.as_str(),
            "{body}"
        );
    }
    server.shutdown().await;
}
