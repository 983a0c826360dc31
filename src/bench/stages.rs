//! The child side of `facegate bench`: load the models, then time each stage and the whole pipeline.
//!
//! Stages are timed on the same inputs the pipeline gives them (the best detection of the frame, its chip),
//! each after its own warm-up, so a stage's numbers do not include the others'. The pipeline is the per-frame
//! work for one face: detect, FaceMesh landmarks, align onto the chip, embed, anti-spoof.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use image::RgbImage;

use super::{frames, peak_rss_mib, BenchError, ChildReport, SizeReport, Stats};
use crate::models::ModelStore;
use crate::vision::antispoof::AntiSpoof;
use crate::vision::detect::{Detector, DEFAULT_SCORE_THRESHOLD};
use crate::vision::embed::Embedder;
use crate::vision::landmarks::FaceMesh;
use crate::vision::{align, Detection, VisionError};

struct Models {
    detector: Detector,
    mesh: FaceMesh,
    embedder: Embedder,
    antispoof: AntiSpoof,
}

/// Loads the models, builds the frames and measures everything (runs in the child process).
pub fn measure(
    store: &ModelStore,
    image: &Path,
    sizes: &[(u32, u32)],
    warmup: usize,
    runs: usize,
) -> Result<ChildReport, BenchError> {
    let photo = frames::load(image)?;
    let t0 = Instant::now();
    let models = Models {
        detector: Detector::load(store)?,
        mesh: FaceMesh::load(store)?,
        embedder: Embedder::load(store)?,
        antispoof: AntiSpoof::load(store)?,
    };
    let load_ms = ms_since(t0);
    let mut reports = Vec::new();
    for &(w, h) in sizes {
        let frame = frames::cover(&photo, w, h);
        reports.push(measure_frame(&models, &frame, warmup, runs)?);
    }
    Ok(ChildReport {
        threads: std::env::var("RAYON_NUM_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        rayon_threads: rayon::current_num_threads(),
        load_ms,
        sizes: reports,
        peak_rss_mib: peak_rss_mib(),
    })
}

fn measure_frame(
    m: &Models,
    frame: &RgbImage,
    warmup: usize,
    runs: usize,
) -> Result<SizeReport, BenchError> {
    let faces = m.detector.detect(frame, DEFAULT_SCORE_THRESHOLD)?;
    let det = faces.first().cloned().ok_or_else(|| BenchError::Image {
        path: format!("{}x{} frame", frame.width(), frame.height()).into(),
        reason: "the detector finds no face in it".into(),
    })?;
    let chip = align::chip(frame, &det);
    let stages = vec![
        (
            "detect".to_string(),
            time(warmup, runs, || {
                m.detector.detect(frame, DEFAULT_SCORE_THRESHOLD).map(drop)
            })?,
        ),
        (
            "landmarks".to_string(),
            time(warmup, runs, || m.mesh.landmarks(frame, &det).map(drop))?,
        ),
        (
            "align".to_string(),
            time(warmup, runs, || {
                black_box(align::chip(frame, &det));
                Ok(())
            })?,
        ),
        (
            "embed".to_string(),
            time(warmup, runs, || m.embedder.embed(&chip).map(drop))?,
        ),
        (
            "antispoof".to_string(),
            time(warmup, runs, || m.antispoof.score(frame, &det).map(drop))?,
        ),
    ];
    // The detector's network alone on the tensor `detect` would build (the part onnxruntime's `run` does).
    let input = m.detector.network_input(frame)?;
    let detect_network = time(warmup, runs, || m.detector.run_network(&input))?;
    let pipeline = time(warmup, runs, || pipeline(m, frame))?;
    Ok(SizeReport {
        width: frame.width(),
        height: frame.height(),
        faces: faces.len(),
        stages,
        detect_network,
        network_input: input.size(),
        pipeline,
    })
}

/// The per-frame work for one face, as the service does it.
fn pipeline(m: &Models, frame: &RgbImage) -> Result<(), VisionError> {
    let faces = m.detector.detect(frame, DEFAULT_SCORE_THRESHOLD)?;
    let Some(det): Option<&Detection> = faces.first() else {
        return Err(VisionError::BadInput(
            "no face in the benchmark frame".into(),
        ));
    };
    black_box(m.mesh.landmarks(frame, det)?);
    let chip = align::chip(frame, det);
    black_box(m.embedder.embed(&chip)?);
    black_box(m.antispoof.score(frame, det)?);
    Ok(())
}

fn time(
    warmup: usize,
    runs: usize,
    mut f: impl FnMut() -> Result<(), VisionError>,
) -> Result<Stats, BenchError> {
    for _ in 0..warmup {
        f()?;
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        samples.push(ms_since(t));
    }
    Ok(Stats::from_ms(&samples))
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}
