//! Helpers for the pipeline tests: the blink clips as MJPEG (converted at test time, never committed), the
//! networks loaded once, pipelines with test settings, and synthetic camera frames made from real photos.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use facegate::capture::replay::{Pace, ReplayOptions, ReplaySource};
use facegate::capture::Frame;
use facegate::config::{LivenessConfig, VisionConfig};
use facegate::decide::Policy;
use facegate::gallery::{EnrollSample, MatchParams, Quality, SharedGallery};
use facegate::pipeline::{run, Pipeline, PipelineEvent, RunStats};
use facegate::settings::{LiveSettings, SettingsHandle};
use facegate::vision::{AnalyzeOptions, CropPadding, FaceAnalyzer};
use image::RgbImage;

use crate::common;

/// The networks, loaded once per test binary.
pub fn analyzer() -> Arc<FaceAnalyzer> {
    static A: OnceLock<Arc<FaceAnalyzer>> = OnceLock::new();
    A.get_or_init(|| {
        Arc::new(FaceAnalyzer::load(&common::models(), &VisionConfig::default()).expect("models"))
    })
    .clone()
}

/// One labelled blink clip: name (without .mp4) and frame rate, from `blink_events_approx.csv`'s clips.
pub const CLIPS: [(&str, f32, bool); 11] = [
    // (clip, fps, natural blinking: the clips the recall / false-blink targets are about)
    ("dinoman_grid_crop_man_3s", 25.0, true),
    ("dinoman_grid_crop_woman_3s", 25.0, true),
    ("liveportrait_driving_d0", 25.0, true),
    ("liveportrait_driving_d10", 30.0, true),
    ("liveportrait_driving_d13", 30.0, true),
    ("liveportrait_driving_d19", 30.0, true),
    ("liveportrait_driving_d20", 25.0, true),
    ("liveportrait_driving_d3", 30.0, false),
    ("liveportrait_driving_d6", 30.0, false),
    ("liveportrait_driving_d9", 30.0, false),
    ("liveportrait_driving_d14", 30.0, false),
];

/// The clip as an MJPEG file with every source frame (so frame indexes match the labels), made with the
/// repository's `scripts/clip-to-mjpeg.sh` (cached per machine).
pub fn clip_mjpeg(name: &str) -> PathBuf {
    let mp4 = common::face(&format!("blink/{name}.mp4"));
    let dir = std::env::temp_dir().join("facegate-pipeline-clips");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("{name}.mjpeg"));
    if !out.exists() {
        let status = std::process::Command::new("bash")
            .arg(common::repo().join("scripts/clip-to-mjpeg.sh"))
            .arg(&mp4)
            .arg(&out)
            .status()
            .expect("run scripts/clip-to-mjpeg.sh");
        assert!(status.success(), "converting {} failed", mp4.display());
    }
    out
}

/// Labelled events of a clip: (start frame, end frame, kind).
pub fn labels(name: &str) -> Vec<(u64, u64, String)> {
    let csv = std::fs::read_to_string(common::face("blink/blink_events_approx.csv")).unwrap();
    csv.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0] == format!("{name}.mp4")).then(|| {
                (
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                    f[4].to_string(),
                )
            })
        })
        .collect()
}

/// Settings and liveness of the tests: thresholds as configured by default.
pub fn settings(require_blink: bool) -> SettingsHandle {
    let mut s = LiveSettings::from_config(&Default::default());
    s.require_blink = require_blink;
    SettingsHandle::new(s)
}

pub fn liveness(require_blink: bool) -> LivenessConfig {
    LivenessConfig {
        require_blink,
        ..LivenessConfig::default()
    }
}

pub fn gallery() -> SharedGallery {
    SharedGallery::in_memory(MatchParams::default()).unwrap()
}

pub fn pipeline(gallery: &SharedGallery, require_blink: bool) -> Pipeline {
    Pipeline::new(
        "front".into(),
        analyzer(),
        gallery.clone(),
        Policy::default(),
        settings(require_blink),
        liveness(require_blink),
    )
}

/// Runs a clip through `p`; every event in order, and the stats.
pub fn replay(p: &mut Pipeline, source: &Path, fps: f32) -> (Vec<PipelineEvent>, RunStats) {
    let opts = ReplayOptions {
        fps,
        pace: Pace::Fast,
        looped: false,
    };
    let mut src = ReplaySource::open(source, opts).unwrap();
    let mut events = Vec::new();
    let stats = run(p, &mut src, None, |e| {
        events.push(e.clone());
        Ok(())
    })
    .unwrap();
    (events, stats)
}

/// A frame at `seq / fps`.
pub fn frame(seq: u64, fps: f32, image: RgbImage) -> Frame {
    Frame {
        seq,
        captured: Instant::now(),
        pts: Duration::from_secs_f64(seq as f64 / fps as f64),
        wall: SystemTime::now(),
        image,
    }
}

/// A 640x480 grey scene with `photos` pasted side by side (centred vertically), each shifted by `dx` pixels.
pub fn scene(photos: &[&RgbImage], dx: i64) -> RgbImage {
    let mut canvas = RgbImage::from_pixel(640, 480, image::Rgb([118, 118, 118]));
    let slot = 640 / photos.len() as i64;
    for (k, p) in photos.iter().enumerate() {
        let x = k as i64 * slot + (slot - p.width() as i64) / 2 + dx;
        let y = (480 - p.height() as i64) / 2;
        image::imageops::overlay(&mut canvas, *p, x, y);
    }
    canvas
}

/// A photo from `../shared/faces`, upright (EXIF orientation applied, as every facegate input is).
pub fn photo(rel: &str) -> RgbImage {
    facegate::imageio::load_image(common::face(rel)).unwrap()
}

/// Enrolls `name` from photos (each must hold one good face; tight crops are padded for detection).
pub fn enroll_photos(gallery: &SharedGallery, name: &str, photos: &[RgbImage]) {
    let a = analyzer();
    let samples: Vec<EnrollSample> = photos
        .iter()
        .map(|img| {
            let faces = a
                .analyze_detailed(
                    img,
                    AnalyzeOptions {
                        padding: CropPadding::Auto,
                        landmarks: false,
                    },
                )
                .unwrap();
            assert_eq!(faces.len(), 1, "{name}: one face per enrollment photo");
            let f = &faces[0];
            EnrollSample {
                embedding: f.observation.embedding.clone(),
                quality: Quality::measure(&f.observation.detection, &f.chip),
                source: name.into(),
            }
        })
        .collect();
    gallery.enroll(name, None, &samples).unwrap();
}

/// The decisions among `events`.
pub fn decisions(events: &[PipelineEvent]) -> Vec<&facegate::decide::Decision> {
    events
        .iter()
        .filter_map(|e| match e {
            PipelineEvent::Decision { decision, .. } => Some(decision),
            _ => None,
        })
        .collect()
}
