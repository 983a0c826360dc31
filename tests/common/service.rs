//! Helpers for the tests that run the real `facegate run` binary against the shared broker + Home Assistant:
//! replay folders built from real clips in ../shared/faces, a gallery enrolled with the real `facegate enroll`,
//! distances measured with `facegate identify --json`, the audit log read with `facegate events --json`, and
//! waiting for HA `state_changed` events.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::ha::{free_port, spawn_guarded, Broker};

/// The `facegate` binary with the model folders set (the repository's and ../shared's).
pub fn facegate() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_facegate"));
    let models =
        std::env::join_paths([super::repo().join("models"), super::shared().join("models")])
            .unwrap();
    cmd.env("FACEGATE_MODELS", models);
    cmd
}

/// Frames `first..first+count` (1-based) of a clip under ../shared/faces as `<prefix>NNNN.jpg` in `dir`;
/// `mask_from` covers every row from that y down (a scarf over the lower face) with a flat colour.
pub fn clip_frames(
    dir: &Path,
    clip: &str,
    prefix: &str,
    first: u32,
    count: u32,
    mask_from: Option<u32>,
) {
    let src = super::face(clip);
    let tmp = tempfile::tempdir().unwrap();
    let status = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i"])
        .arg(&src)
        .args(["-frames:v", &(first + count - 1).to_string(), "-q:v", "3"])
        .arg(tmp.path().join("f%04d.jpg"))
        .status()
        .expect("ffmpeg (scripts/setup-media.sh installs it)");
    assert!(status.success(), "ffmpeg failed on {}", src.display());
    for i in 0..count {
        let from = tmp.path().join(format!("f{:04}.jpg", first + i));
        let to = dir.join(format!("{prefix}{i:04}.jpg"));
        match mask_from {
            None => {
                std::fs::copy(&from, &to).unwrap();
            }
            Some(y0) => {
                let mut img = image::open(&from).unwrap().to_rgb8();
                let (w, h) = img.dimensions();
                for y in y0.min(h)..h {
                    for x in 0..w {
                        img.put_pixel(x, y, image::Rgb([40, 40, 90]));
                    }
                }
                img.save(&to).unwrap();
            }
        }
    }
}

/// `count` flat grey frames of `w` x `h` (an empty scene) as `<prefix>NNNN.jpg`.
pub fn grey_frames(dir: &Path, prefix: &str, count: u32, w: u32, h: u32) {
    let grey = image::RgbImage::from_pixel(w, h, image::Rgb([118, 118, 118]));
    for i in 0..count {
        grey.save(dir.join(format!("{prefix}{i:04}.jpg"))).unwrap();
    }
}

/// Enrolls `name` with `level` from `images` into the gallery `db` with the real CLI.
pub fn enroll(db: &Path, name: &str, level: &str, images: &[PathBuf]) {
    let out = facegate()
        .args(["enroll", "--name", name, "--access-level", level, "--db"])
        .arg(db)
        .args(images)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(&format!("enrolled {} of", images.len())),
        "enroll {name}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The distance of the one face in each of `images` to the nearest enrolled person (`facegate identify`).
pub fn distances(db: &Path, images: &[PathBuf]) -> Vec<f32> {
    let out = facegate()
        .args(["identify", "--json", "--db"])
        .arg(db)
        .args(images)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), images.len(), "{text}");
    lines
        .iter()
        .map(|l| {
            let faces = l["faces"].as_array().unwrap_or_else(|| panic!("{l}"));
            assert_eq!(faces.len(), 1, "one face expected: {l}");
            faces[0]["match"]["distance"].as_f64().unwrap() as f32
        })
        .collect()
}

/// The audit log (`facegate events --db DB --json`), newest first.
pub fn audit_rows(db: &Path) -> Vec<Value> {
    let out = facegate()
        .args(["events", "--limit", "1000", "--json", "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// An options file in `dir` for one replay camera on `dir/frames` (10 fps, looped) at gate `gate["name"]`;
/// database `dir/facegate.db`.
pub fn options(
    dir: &Path,
    broker: &Broker,
    camera: &str,
    base: &str,
    gate: Value,
    levels: Value,
) -> PathBuf {
    let o = json!({
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "username": Broker::USER,
                 "password": Broker::PASSWORD, "base_topic": base, "away_after_s": 600},
        "cameras": [{"name": camera, "gate": gate["name"],
                     "source": {"type": "replay", "path": dir.join("frames"), "fps": 10, "looped": true}}],
        "gates": [gate],
        "access_levels": levels,
        "liveness": {"require_blink": false, "cooldown_s": 1.0},
        "storage": {"database": dir.join("facegate.db")},
        "http": {"port": free_port()},
    });
    let p = dir.join("options.json");
    std::fs::write(&p, o.to_string()).unwrap();
    p
}

/// `facegate run --options FILE`, its log (info level) in `log`; killed with the test process.
pub fn start_facegate(options: &Path, log: &Path) -> Child {
    let mut cmd = facegate();
    cmd.arg("run")
        .arg("--options")
        .arg(options)
        .env("FACEGATE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    spawn_guarded(cmd)
}

/// The next `state_changed` of `entity_id` whose new state satisfies `pred` (earlier ones are skipped).
pub fn wait_change(
    rx: &mpsc::Receiver<Value>,
    entity_id: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let end = Instant::now() + timeout;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let ev = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no matching state_changed for {entity_id} in {timeout:?}"));
        if ev["data"]["entity_id"] == entity_id && pred(&ev["data"]["new_state"]) {
            return ev["data"]["new_state"].clone();
        }
    }
}

/// Unix seconds now.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Waits until `log` contains `needle` at least `n` times; returns the log.
pub fn wait_log(log: &Path, needle: &str, n: usize, timeout: Duration) -> String {
    let end = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.matches(needle).count() >= n {
            return text;
        }
        assert!(
            Instant::now() < end,
            "{n} x '{needle}' not in the log after {timeout:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
