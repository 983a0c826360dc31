//! V4L2 capture proven on real kernel drivers: this host kernel has no V4L2, so the test boots Debian 12's
//! kernel in QEMU (scripts/v4l2-vm.sh) and runs this same binary inside it as the guest.
//!
//! In the VM: `vivid` (/dev/video0, YUYV colour bars) is captured and checked pixel by pixel, then unplugged
//! (driver unbound) during capture and plugged back (rebound) — the source reports the disconnection and
//! recovers by itself; `v4l2loopback` (/dev/video4) is fed JPEG frames by a writer thread and captured as
//! MJPEG; a second loopback device (/dev/video5) fed 8-bit grey frames is a pixel format facegate does not
//! read, reported as such. The guest prints one JSON line per result; the host asserts on them.
//!
//! A custom harness (no libtest): the same `main` is host or guest depending on FACEGATE_V4L2_GUEST. It
//! runs whenever this test binary runs (a libtest-style name filter that excludes it is honoured), never
//! skips: a missing part (qemu, kernel, modules) is installed by the script or fails the test.

use std::process::Command;

const NAME: &str = "v4l2_in_a_vm";

#[cfg(target_os = "linux")]
#[path = "capture_v4l2/guest.rs"]
mod guest;

fn main() {
    if std::env::var_os("FACEGATE_V4L2_GUEST").is_some() {
        #[cfg(target_os = "linux")]
        guest::run();
        return;
    }
    // libtest's filter: positional arguments that do not match this test's name mean "not me".
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| NAME.contains(f.as_str())) {
        println!("running 0 tests (filtered out: {NAME})");
        return;
    }
    println!("test {NAME} ...");
    host();
    println!("test {NAME} ... ok");
}

/// One result line from the guest.
fn results(console: &str) -> Vec<serde_json::Value> {
    console
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').split_once("FGV4L2 "))
        .map(|(_, json)| serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}")))
        .collect()
}

fn case<'a>(results: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    results
        .iter()
        .find(|r| r["case"] == name)
        .unwrap_or_else(|| panic!("no '{name}' result from the VM"))
}

fn host() {
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let exe = std::env::current_exe().unwrap();
    let t = std::time::Instant::now();
    let out = Command::new("bash")
        .arg(repo.join("scripts/v4l2-vm.sh"))
        .arg(&exe)
        .output()
        .expect("run scripts/v4l2-vm.sh");
    let console = String::from_utf8_lossy(&out.stdout);
    println!("VM run took {:.1} s", t.elapsed().as_secs_f64());
    let dump = || {
        format!(
            "{console}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    };
    assert!(out.status.success(), "the VM run failed:\n{}", dump());
    let r = results(&console);
    for line in &r {
        println!("{line}");
    }

    // vivid: YUYV at the asked 640x480, and its 75% colour bars come out as the bars' RGB values.
    let vivid = case(&r, "vivid");
    assert_eq!(vivid["fourcc"], "YUYV", "{}", dump());
    assert_eq!(
        (vivid["width"].as_u64(), vivid["height"].as_u64()),
        (Some(640), Some(480))
    );
    let want = [
        [191, 191, 191],
        [191, 191, 0],
        [0, 191, 191],
        [0, 191, 0],
        [191, 0, 191],
        [191, 0, 0],
        [0, 0, 191],
        [0, 0, 0],
    ];
    let bars: Vec<Vec<i64>> = serde_json::from_value(vivid["bars"].clone()).unwrap();
    for (got, want) in bars.iter().zip(want) {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= 3, "bars {bars:?}, want {want:?}");
        }
    }
    assert_eq!(bars.len(), 8);
    let frames = case(&r, "vivid_frames");
    assert_eq!(frames["n"], 10);
    assert!(frames["increasing"].as_bool().unwrap());

    // Unplugged during capture: reported as a disconnection, then frames again after the replug.
    let replug = case(&r, "vivid_replug");
    assert_eq!(replug["error"], "disconnected", "{replug}");
    assert_eq!(replug["node_gone"], true, "{replug}");
    assert!(
        replug["recovered_ms"].as_u64().unwrap() < 10_000,
        "{replug}"
    );
    assert_eq!(replug["width"], 640);

    // v4l2loopback fed with JPEGs: MJPEG frames whose content is what was written, in order.
    let lb = case(&r, "loopback");
    assert_eq!(lb["fourcc"], "MJPG", "{lb}");
    assert_eq!(
        (lb["width"].as_u64(), lb["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert!(lb["frames"].as_u64().unwrap() >= 10, "{lb}");
    assert_eq!(
        lb["frames"], lb["matched"],
        "every frame is one of the written ones: {lb}"
    );
    assert!(lb["in_order"].as_bool().unwrap(), "{lb}");

    // A pixel format facegate does not read: a clear error, not a crash or garbage frames.
    let grey = case(&r, "wrong_format");
    assert_eq!(
        grey["error"],
        "source /dev/video5: the device offers none of the pixel formats facegate reads (MJPG, YUYV), only [GREY]",
        "{grey}"
    );
    assert_eq!(grey["kind"], "other");
}
