//! Anti-spoof latency: both MiniFASNets on the best face of one image.
//!
//! Usage: `bench_antispoof IMAGE [RUNS]` (threads: `RAYON_NUM_THREADS`). Detects the face once with YuNet,
//! then prints one JSON object: the score and the median / min / p90 milliseconds of `AntiSpoof::score`
//! (both crops and both networks) after two warm-up runs.

use std::time::Instant;

use facegate::models::ModelStore;
use facegate::vision::antispoof::AntiSpoof;
use facegate::vision::detect::{Detector, DEFAULT_SCORE_THRESHOLD};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        anyhow::bail!("usage: bench_antispoof IMAGE [RUNS]");
    };
    let runs: usize = args.get(1).map_or(Ok(50), |s| s.parse())?;
    let img = facegate::imageio::load_image(path)?;
    let store = ModelStore::discover();
    let faces = Detector::load(&store)?.detect(&img, DEFAULT_SCORE_THRESHOLD)?;
    let Some(face) = faces.first() else {
        anyhow::bail!("no face in {path}");
    };
    let spoof = AntiSpoof::load(&store)?;
    let mut score = 0.0;
    for _ in 0..2 {
        score = spoof.score(&img, face)?;
    }
    let mut ms: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            let r = spoof.score(&img, face);
            let dt = t.elapsed().as_secs_f64() * 1e3;
            r.map(|_| dt)
        })
        .collect::<Result<_, _>>()?;
    ms.sort_by(f64::total_cmp);
    let json = serde_json::json!({
        "image": path,
        "threads": candle_core::utils::get_num_threads(),
        "runs": ms.len(),
        "p_real": score,
        "median_ms": ms[ms.len() / 2],
        "min_ms": ms[0],
        "p90_ms": ms[(ms.len() * 9 / 10).min(ms.len() - 1)],
    });
    println!("{json}");
    Ok(())
}
