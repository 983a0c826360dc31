//! Detection latency of YuNet in candle on one image, for `scripts/bench_yunet_reference.py`.
//!
//! Usage: `bench_yunet IMAGE [MAX_W MAX_H] [RUNS]` (threads: `RAYON_NUM_THREADS`). Prints one JSON object:
//! the network input size and the median / min / p90 milliseconds of `Detector::detect` (pre-processing,
//! network, decode and NMS) after two warm-up runs.

use std::time::Instant;

use facegate::models::ModelStore;
use facegate::vision::detect::{Detector, DEFAULT_SCORE_THRESHOLD};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        anyhow::bail!("usage: bench_yunet IMAGE [MAX_W MAX_H] [RUNS]");
    };
    let max_w: u32 = args.get(1).map_or(Ok(640), |s| s.parse())?;
    let max_h: u32 = args.get(2).map_or(Ok(640), |s| s.parse())?;
    let runs: usize = args.get(3).map_or(Ok(20), |s| s.parse())?;
    let img = image::open(path)?.to_rgb8();
    let det = Detector::load(&ModelStore::discover())?.with_max_input(max_w, max_h);
    let mut faces = 0;
    for _ in 0..2 {
        faces = det.detect(&img, DEFAULT_SCORE_THRESHOLD)?.len();
    }
    let mut ms: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            let r = det.detect(&img, DEFAULT_SCORE_THRESHOLD);
            let dt = t.elapsed().as_secs_f64() * 1e3;
            r.map(|_| dt)
        })
        .collect::<Result<_, _>>()?;
    ms.sort_by(f64::total_cmp);
    let scale = (max_w as f64 / img.width() as f64)
        .min(max_h as f64 / img.height() as f64)
        .min(1.0);
    let (w, h) = (
        (img.width() as f64 * scale).round() as u32,
        (img.height() as f64 * scale).round() as u32,
    );
    let json = serde_json::json!({
        "image": path,
        "image_wh": [img.width(), img.height()],
        "network_wh": [w.div_ceil(32) * 32, h.div_ceil(32) * 32],
        "threads": candle_core::utils::get_num_threads(),
        "runs": ms.len(),
        "faces": faces,
        "median_ms": ms[ms.len() / 2],
        "min_ms": ms[0],
        "p90_ms": ms[(ms.len() * 9 / 10).min(ms.len() - 1)],
    });
    println!("{json}");
    Ok(())
}
