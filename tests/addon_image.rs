//! The add-on image, built from the Dockerfile with podman (scripts/image-build.sh: local stand-ins of the base
//! images, `--pull=never`, the binary these tests were built with in the `prebuilt` stage) and run like the
//! Supervisor runs it (addon_support::container): Supervisor-style /data/options.json, SUPERVISOR_TOKEN, TZ,
//! a stand-in Supervisor answering http://supervisor/services/mqtt, the real mosquitto and Home Assistant.
//!
//! - a fresh install with the manifest's default options (no camera on this machine) starts, tells the log and
//!   Home Assistant what to configure, reports unhealthy, and stops on SIGTERM within the manifest's timeout;
//! - with a camera (an MJPEG stream of real photos served by the test) it is healthy and its entities appear in Home
//!   Assistant; when the camera is gone the health check says unhealthy;
//! - bad options, no broker and no Supervisor stop it with a message naming what to set (the cases of
//!   tests/addon_start.rs, against the image).
//!
//! Needs root, podman and tini (scripts/setup-image.sh, run by scripts/setup.sh).

mod addon_support;
mod common;

use std::time::{Duration, Instant};

use addon_support::container::{image, inspect, Container, Launch, Rootfs};
use addon_support::supervisor::{Request, Supervisor};
use addon_support::{load_yaml, repo};
use common::ha::{free_port, Broker, HomeAssistant};
use facegate::ha::discovery::ENTITIES;
use serde_json::{json, Value};

const TOKEN: &str = "supervisor-token-7f3a";

fn manifest() -> Value {
    load_yaml(&repo().join("config.yaml"))
}

fn timeout() -> Duration {
    Duration::from_secs(manifest()["timeout"].as_u64().unwrap())
}

fn healthcheck_test(tag: &str) -> Vec<String> {
    inspect(tag)["Healthcheck"]["Test"]
        .as_array()
        .expect("the image has a HEALTHCHECK")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn mqtt_service(broker: &Broker) -> Value {
    json!({"result": "ok", "data": {"addon": "core_mosquitto", "host": "127.0.0.1", "port": broker.port,
           "ssl": false, "protocol": "3.1.1", "username": Broker::USER, "password": Broker::PASSWORD}})
}

#[test]
fn image_has_the_recipes_command_health_check_labels_models_and_zones() {
    let (tag, built) = image();
    let config = inspect(tag);
    let c = &config["Config"];
    assert_eq!(c["Cmd"], json!(["/run.sh"]));
    assert_eq!(healthcheck_test(tag), ["CMD", "/healthcheck.sh"]);
    let hc = &config["Healthcheck"];
    assert_eq!(hc["StartPeriod"], json!(60_000_000_000u64), "{hc}");
    assert_eq!(hc["Interval"], json!(30_000_000_000u64), "{hc}");
    let labels = &c["Labels"];
    assert_eq!(labels["io.hass.type"], "addon");
    assert_eq!(labels["io.hass.arch"], "amd64");
    assert_eq!(labels["io.hass.version"], manifest()["version"]);
    assert_eq!(labels["io.hass.name"], "facegate");
    eprintln!("{built}");

    // The models the recipe put in, each verified, and the zone data TZ needs, inside the image.
    let fs = Rootfs::new(tag);
    for m in facegate::models::manifest().unwrap() {
        let p = fs.path.join("opt/facegate/models").join(&m.file);
        assert_eq!(
            facegate::models::sha256_file(&p).unwrap(),
            m.sha256,
            "{}",
            m.file
        );
    }
    let date = fs.chroot(
        &["TZ=Europe/Berlin"],
        &["date", "-d", "2026-01-15 12:00Z", "+%H:%M %Z"],
    );
    assert_eq!(String::from_utf8_lossy(&date.stdout).trim(), "13:00 CET");
    let version = fs.chroot(&[], &["/usr/bin/facegate", "--version"]);
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("facegate {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn fresh_install_with_default_options_starts_and_says_what_to_configure() {
    let (tag, _) = image();
    let broker = Broker::start();
    let ha = HomeAssistant::start(&broker);
    let (supervisor, ip) = Supervisor::start_as_host(200, mqtt_service(&broker));
    // The Supervisor writes the manifest's defaults to /data/options.json on a fresh install. This machine
    // has no /dev/video0, like most Home Assistant machines without a USB camera.
    assert!(!std::path::Path::new("/dev/video0").exists());
    // Only the HTTP port differs from the defaults: the container shares this host's network with other
    // tests, where the ingress port 8099 may be taken.
    let mut options = manifest()["options"].clone();
    let port = free_port();
    options["http"]["port"] = json!(port);
    let started = Instant::now();
    let mut ct = Container::start(
        tag,
        &Launch {
            options: &options,
            token: Some(TOKEN),
            tz: Some("Europe/Berlin"),
            supervisor_ip: Some(ip),
            share: None,
        },
    );
    let line = ct.wait_line("/dev/video0", Duration::from_secs(60));
    assert_eq!(
        line,
        "[facegate add-on] camera 'Front door': /dev/video0 is not a video device here; plug in a USB camera, or set option cameras[0].source (type http with the url of an MJPEG stream or JPEG snapshot, or v4l2 with the device of your camera)"
    );
    assert_eq!(
        ct.wait_line("time zone", Duration::from_secs(5)),
        "[facegate add-on] time zone Europe/Berlin (access schedules follow it)"
    );
    assert_eq!(
        ct.wait_line("MQTT broker from the Supervisor", Duration::from_secs(10)),
        format!(
            "[facegate add-on] MQTT broker from the Supervisor: 127.0.0.1:{} (user {})",
            broker.port,
            Broker::USER
        )
    );
    // Asked at http://supervisor with the container's token, as an add-on does.
    assert_eq!(
        supervisor.requests(),
        [Request {
            path: "/services/mqtt".into(),
            authorization: format!("Bearer {TOKEN}")
        }]
    );

    // In Home Assistant: the camera's status says why there are no pictures.
    let camera = ha.entity_id("facegate_front_door_camera", Duration::from_secs(120));
    let state = ha.wait_state(&camera, Duration::from_secs(60), |s| {
        s["state"]
            .as_str()
            .is_some_and(|v| v.starts_with("disconnected"))
    });
    let text = state["state"].as_str().unwrap().to_string();
    assert!(text.contains("/dev/video0"), "{text}");
    eprintln!(
        "fresh install: camera status in Home Assistant {:.1} s after start: {text}",
        started.elapsed().as_secs_f64()
    );

    // The health check: facegate answers, but its only camera is missing.
    let test = healthcheck_test(tag);
    let end = Instant::now() + Duration::from_secs(30);
    let (code, out) = loop {
        let (code, out) = ct.healthcheck(&test);
        if out.contains("degraded") || Instant::now() > end {
            break (code, out);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        (code, out),
        (
            1,
            format!("unhealthy: /health on port {port} says 'degraded'")
        )
    );

    // The environment reached facegate itself (Docker's init passes it on).
    let environ = ct.exec(&[
        "/bin/sh",
        "-c",
        "for p in /proc/[0-9]*; do [ \"$(cat $p/comm)\" = facegate ] && tr '\\0' '\\n' < $p/environ; done; true",
    ]);
    let environ = String::from_utf8_lossy(&environ.stdout).to_string();
    assert!(
        environ.lines().any(|l| l == "TZ=Europe/Berlin"),
        "{environ}"
    );

    // docker stop: SIGTERM to PID 1, which forwards it; facegate ends cleanly within the timeout.
    let (code, took) = ct.stop(timeout());
    assert_eq!(code, Some(0), "log:\n{}", ct.seen.join("\n"));
    eprintln!("stopped {:.1} s after SIGTERM", took.as_secs_f64());
    ha.wait_state(&camera, Duration::from_secs(30), |s| {
        s["state"] == "unavailable"
    });
}

#[test]
fn image_with_a_camera_is_healthy_its_entities_appear_and_it_is_unhealthy_when_the_camera_is_gone()
{
    let (tag, _) = image();
    let broker = Broker::start();
    let ha = HomeAssistant::start(&broker);
    let (_supervisor, ip) = Supervisor::start_as_host(200, mqtt_service(&broker));
    // A network camera: an MJPEG stream of real photos served by this test, which it can take away.
    let camera_server = MjpegCamera::start(common::face("identities/Ben_Affleck"));
    let mut options = manifest()["options"].clone();
    options["cameras"][0]["name"] = json!("Image door");
    options["cameras"][0]["source"] = json!({"type": "http", "url": camera_server.url, "fps": 2});
    options["http"]["port"] = json!(free_port());
    let started = Instant::now();
    let mut ct = Container::start(
        tag,
        &Launch {
            options: &options,
            token: Some(TOKEN),
            tz: Some("UTC"),
            supervisor_ip: Some(ip),
            share: None,
        },
    );
    ct.wait_line("MQTT broker from the Supervisor", Duration::from_secs(60));

    let _access = ha.entity_id("facegate_image_door_access", Duration::from_secs(180));
    let end = Instant::now() + Duration::from_secs(60);
    while ha.registry("facegate_image_door_").len() < ENTITIES.len() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
    }
    let registered: Vec<String> = ha
        .registry("facegate_image_door_")
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    for spec in ENTITIES {
        let uid = format!("facegate_image_door_{}", spec.key);
        assert!(
            registered.contains(&uid),
            "{uid} missing from {registered:?}"
        );
    }
    let camera = ha.entity_id("facegate_image_door_camera", Duration::from_secs(10));
    ha.wait_state(&camera, Duration::from_secs(60), |s| {
        s["state"] == "streaming"
    });
    eprintln!(
        "image: every entity in Home Assistant, camera streaming, {:.1} s after the container started",
        started.elapsed().as_secs_f64()
    );
    let test = healthcheck_test(tag);
    let (code, out) = ct.healthcheck(&test);
    assert_eq!((code, out.as_str()), (0, "healthy"));

    // The camera is gone (unplugged, powered off): the health check turns unhealthy.
    camera_server.stop();
    let end = Instant::now() + Duration::from_secs(60);
    let (code, out) = loop {
        let r = ct.healthcheck(&test);
        if r.0 != 0 || Instant::now() > end {
            break r;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let port = options["http"]["port"].as_u64().unwrap();
    assert_eq!(
        (code, out),
        (
            1,
            format!("unhealthy: /health on port {port} says 'degraded'")
        )
    );
    let (code, _) = ct.stop(timeout());
    assert_eq!(code, Some(0), "log:\n{}", ct.seen.join("\n"));
}

/// An MJPEG-over-HTTP camera on a local port (multipart/x-mixed-replace, 2 frames a second, the photos of a
/// folder in a loop) until stopped; then its port refuses connections.
struct MjpegCamera {
    url: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl MjpegCamera {
    fn start(folder: std::path::PathBuf) -> MjpegCamera {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let mut photos: Vec<Vec<u8>> = std::fs::read_dir(folder)
            .unwrap()
            .flatten()
            .map(|e| std::fs::read(e.path()).unwrap())
            .collect();
        photos.sort();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/stream", listener.local_addr().unwrap());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let photos = photos.clone();
                let stopped = stopped.clone();
                std::thread::spawn(move || {
                    conn.set_nonblocking(false).unwrap();
                    let mut req = [0u8; 2048];
                    let _ = conn.read(&mut req);
                    let _ = write!(
                        conn,
                        "HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=\"frame\"\r\n\r\n"
                    );
                    for jpeg in photos.iter().cycle() {
                        if stopped.load(Ordering::SeqCst) {
                            break;
                        }
                        let ok = write!(conn, "--frame\r\nContent-Type: image/jpeg\r\n\r\n")
                            .is_ok()
                            && conn.write_all(jpeg).is_ok()
                            && conn.write_all(b"\r\n").is_ok();
                        if !ok {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(500));
                    }
                });
            }
        });
        MjpegCamera { url, stop }
    }

    /// Closes every stream and the port.
    fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Starts the image with `options` and the given Supervisor; returns its exit code and log.
fn run_to_exit(
    options: &Value,
    supervisor: Option<(&Supervisor, std::net::Ipv4Addr)>,
) -> (Option<i32>, Vec<String>) {
    let (tag, _) = image();
    let mut ct = Container::start(
        tag,
        &Launch {
            options,
            token: supervisor.map(|_| TOKEN),
            tz: Some("UTC"),
            supervisor_ip: supervisor.map(|(_, ip)| ip),
            share: None,
        },
    );
    ct.wait_exit(Duration::from_secs(60))
}

#[test]
fn bad_options_and_a_missing_broker_stop_the_image_naming_what_to_set() {
    let base = || {
        let mut o = manifest()["options"].clone();
        o["cameras"][0]["source"] = json!({"type": "replay", "path": "/nonexistent", "fps": 5});
        o
    };
    // Bad options: every problem named, nothing asked of the Supervisor.
    let (supervisor, ip) = Supervisor::start_as_host(
        200,
        json!({"result": "ok", "data": {"host": "127.0.0.1", "port": 1}}),
    );
    let mut bad = base();
    bad["cameras"] = json!([]);
    bad["gates"][0]["board"] = json!({"host": "lock.local", "encryption_key": "not base64"});
    let (code, log) = run_to_exit(&bad, Some((&supervisor, ip)));
    assert_eq!(code, Some(1), "{log:?}");
    assert_eq!(
        log,
        [
            "error: invalid options in /data/options.json (2 problems):",
            "  option cameras: is empty; add at least one camera: a name, the gate it watches and a source (e.g. type v4l2, device /dev/video0)",
            "  option gates[0].board.encryption_key: is not a base64 encoding of 32 bytes (copy api: encryption: key from the board's YAML)",
        ]
    );
    assert_eq!(supervisor.requests(), []);

    // No Mosquitto add-on: the Supervisor's answer (HTTP 400) is passed on with what to do.
    let (supervisor, ip) = Supervisor::start_as_host(
        400,
        json!({"result": "error", "message": "Service not enabled"}),
    );
    let (code, log) = run_to_exit(&base(), Some((&supervisor, ip)));
    assert_eq!(code, Some(1));
    assert_eq!(
        log.last().unwrap(),
        "[facegate add-on] option mqtt.host is empty and the Supervisor has no MQTT broker to offer (Service not enabled); install the Mosquitto broker add-on or set mqtt.host"
    );

    // Started outside a Supervisor (no token): says to set mqtt.host.
    let (code, log) = run_to_exit(&base(), None);
    assert_eq!(code, Some(1));
    assert_eq!(
        log,
        [
            "[facegate add-on] time zone UTC (access schedules follow it)",
            "[facegate add-on] option mqtt.host is empty and there is no Supervisor to ask (SUPERVISOR_TOKEN is not set); set mqtt.host",
        ]
    );
}
