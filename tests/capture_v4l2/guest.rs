//! The guest half of tests/capture_v4l2.rs: runs inside the VM as root, next to real V4L2 drivers, and
//! prints one `FGV4L2 {json}` line per result for the host to check.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use facegate::capture::v4l2::{V4l2Options, V4l2Source};
use facegate::capture::{CaptureError, Frame, FrameSource};
use image::RgbImage;
use serde_json::json;
use v4l::video::Output;
use v4l::{Device, Format, FourCC};

pub fn run() {
    let ok = std::panic::catch_unwind(|| {
        vivid();
        loopback_mjpeg();
        wrong_format();
    })
    .is_ok();
    std::process::exit(if ok { 0 } else { 1 });
}

fn emit(v: serde_json::Value) {
    println!("FGV4L2 {v}");
}

fn frame(src: &mut V4l2Source, within: Duration) -> Frame {
    match src.next_frame_timeout(within) {
        Ok(Some(f)) => f,
        other => panic!(
            "expected a frame from {} within {within:?}, got {other:?}",
            src.name()
        ),
    }
}

/// Mean RGB of a 5x5 patch.
fn patch(img: &RgbImage, cx: u32, cy: u32) -> [u32; 3] {
    let mut sum = [0u32; 3];
    for y in cy - 2..=cy + 2 {
        for x in cx - 2..=cx + 2 {
            for (s, v) in sum.iter_mut().zip(img.get_pixel(x, y).0) {
                *s += u32::from(v);
            }
        }
    }
    sum.map(|s| (s + 12) / 25)
}

fn vivid() {
    let dev = Path::new("/dev/video0");
    let opts = V4l2Options {
        width: 640,
        height: 480,
        fps: 15,
    };
    let mut src = V4l2Source::open(dev, opts).unwrap();
    let first = frame(&mut src, Duration::from_secs(30));
    let neg = src.negotiated().expect("negotiated");
    let (w, h) = first.image.dimensions();
    // The 75% colour bars, sampled below vivid's text overlay.
    let bars: Vec<[u32; 3]> = (0..8)
        .map(|i| patch(&first.image, (2 * i + 1) * w / 16, h * 3 / 4))
        .collect();
    emit(
        json!({"case": "vivid", "fourcc": neg.fourcc, "width": neg.width, "height": neg.height,
                "fps": neg.fps, "image": [w, h], "bars": bars}),
    );

    let mut seqs = vec![first.seq];
    while seqs.len() < 10 {
        seqs.push(frame(&mut src, Duration::from_secs(10)).seq);
    }
    let increasing = seqs.windows(2).all(|p| p[0] < p[1]);
    emit(
        json!({"case": "vivid_frames", "n": seqs.len(), "seqs": seqs, "increasing": increasing,
                "dropped": src.dropped()}),
    );

    // Unplug during capture: unbind the driver from the device.
    std::fs::write("/sys/bus/platform/drivers/vivid/unbind", "vivid.0").unwrap();
    let mut first_error = None;
    let t = Instant::now();
    while first_error.is_none() && t.elapsed() < Duration::from_secs(15) {
        if let Err(e) = src.next_frame_timeout(Duration::from_secs(1)) {
            first_error = Some(e);
        }
    }
    let (kind, reason) = match &first_error {
        Some(CaptureError::Disconnected { reason, .. }) => ("disconnected", reason.clone()),
        Some(other) => ("other", other.to_string()),
        None => ("none", String::new()),
    };
    thread::sleep(Duration::from_secs(1));
    let node_gone = !dev.exists();
    std::fs::write("/sys/bus/platform/drivers/vivid/bind", "vivid.0").unwrap();
    let back = Instant::now();
    let mut errors = Vec::new();
    let f = loop {
        match src.next_frame_timeout(Duration::from_secs(20)) {
            Ok(Some(f)) => break f,
            Ok(None) => panic!("no frame within 20 s of the replug; errors {errors:?}"),
            Err(e) => errors.push(e.to_string()),
        }
    };
    emit(
        json!({"case": "vivid_replug", "error": kind, "reason": reason, "node_gone": node_gone,
                "recovered_ms": back.elapsed().as_millis() as u64, "errors_while_away": errors,
                "width": f.image.width(), "seq": f.seq}),
    );
}

/// Opens a v4l2loopback device as its writer with `fourcc` at 320x240.
fn writer(path: &str, fourcc: &[u8; 4]) -> Device {
    let dev = Device::with_path(path).unwrap();
    let set = Output::set_format(&dev, &Format::new(320, 240, FourCC::new(fourcc))).unwrap();
    assert_eq!(set.fourcc, FourCC::new(fourcc), "{path}: {set}");
    dev
}

fn write_frame(dev: &Device, bytes: &[u8]) {
    // SAFETY: writing a byte slice to the device's open file descriptor.
    let n = unsafe { libc::write(dev.handle().fd(), bytes.as_ptr().cast(), bytes.len()) };
    assert_eq!(
        n,
        bytes.len() as isize,
        "write: {}",
        std::io::Error::last_os_error()
    );
}

/// Frame k of the loopback feed: a flat colour whose red channel encodes k.
fn red_of(k: u32) -> u32 {
    8 + 10 * k
}

fn loopback_mjpeg() {
    const FRAMES: u32 = 24;
    let dev = writer("/dev/video4", b"MJPG");
    let feeder = thread::spawn(move || {
        for k in 0..FRAMES {
            let img = RgbImage::from_pixel(320, 240, image::Rgb([red_of(k) as u8, 128, 60]));
            let mut jpeg = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
                .encode_image(&img)
                .unwrap();
            write_frame(&dev, &jpeg);
            thread::sleep(Duration::from_millis(150));
        }
        dev
    });
    thread::sleep(Duration::from_millis(300));
    let opts = V4l2Options {
        width: 320,
        height: 240,
        fps: 10,
    };
    let mut src = V4l2Source::open(Path::new("/dev/video4"), opts).unwrap();
    let mut ks: Vec<Option<u32>> = Vec::new();
    let mut errors = Vec::new();
    let t = Instant::now();
    while !feeder.is_finished() && t.elapsed() < Duration::from_secs(60) {
        match src.next_frame_timeout(Duration::from_millis(500)) {
            Ok(Some(f)) => {
                let [r, g, b] = patch(&f.image, 160, 120);
                let k = (0..FRAMES).find(|&k| {
                    red_of(k).abs_diff(r) <= 4 && g.abs_diff(128) <= 4 && b.abs_diff(60) <= 4
                });
                ks.push(k);
            }
            Ok(None) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    let neg = src.negotiated().expect("negotiated");
    drop(src);
    let _dev = feeder.join().unwrap();
    let matched: Vec<u32> = ks.iter().flatten().copied().collect();
    let in_order = matched.windows(2).all(|p| p[0] < p[1]);
    emit(
        json!({"case": "loopback", "fourcc": neg.fourcc, "width": neg.width, "height": neg.height,
                "frames": ks.len(), "matched": matched.len(), "ks": ks, "in_order": in_order,
                "errors": errors}),
    );
}

fn wrong_format() {
    let dev = writer("/dev/video5", b"GREY");
    write_frame(&dev, &vec![128u8; 320 * 240]);
    let mut src = V4l2Source::open(
        Path::new("/dev/video5"),
        V4l2Options {
            width: 320,
            height: 240,
            fps: 10,
        },
    )
    .unwrap();
    let got = src.next_frame_timeout(Duration::from_secs(10));
    let (kind, error) = match got {
        Err(e @ CaptureError::Other { .. }) => ("other", e.to_string()),
        Err(e) => ("disconnected-or-bad", e.to_string()),
        Ok(f) => ("frame", format!("{:?}", f.map(|f| f.seq))),
    };
    emit(json!({"case": "wrong_format", "kind": kind, "error": error}));
    drop(dev);
}
