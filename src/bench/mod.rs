//! `facegate bench`: per-stage and whole-pipeline latency (median, p95) and peak memory.
//!
//! Thread pools (rayon, and candle's matrix multiplies, which read the same `RAYON_NUM_THREADS`) are sized
//! once per process, so every thread count is measured in a child process of this binary started with
//! `RAYON_NUM_THREADS` set: the parent only starts children and prints what they report. A child loads the
//! models, builds one frame per size from a real photo with one face ([`frames`]), warms up, then times each
//! stage and the whole pipeline many times ([`stages`]) and reports its own peak resident memory (`VmHWM`).

mod frames;
mod stages;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::models::ModelStore;
use crate::stats;

pub use frames::{cover, default_image};

/// Arguments of `facegate bench`.
#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Timed runs per measurement, after the warm-up.
    #[arg(long, default_value_t = 50)]
    pub runs: usize,
    /// Untimed runs before each measurement.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Thread counts, each measured in its own child process (RAYON_NUM_THREADS). Not `--threads`: that is
    /// the global option sizing this process's own pool.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub thread_counts: Vec<usize>,
    /// Frame sizes (WIDTHxHEIGHT) built from the photo.
    #[arg(long, value_delimiter = ',', default_value = "640x480,1280x720")]
    pub sizes: Vec<String>,
    /// Photo with one face the frames are made from (scaled to cover each size, centre-cropped).
    /// Default: Obama at 720p from ../shared/faces/misc/face_recognition.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Internal: measure in this process (the parent sets RAYON_NUM_THREADS).
    #[arg(long, hide = true)]
    pub child: bool,
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("bad argument: {0}")]
    BadArgs(String),
    #[error("frame photo {path}: {reason}")]
    Image { path: PathBuf, reason: String },
    #[error(transparent)]
    Vision(#[from] crate::vision::VisionError),
    #[error("child process for {threads} thread(s): {reason}")]
    Child { threads: usize, reason: String },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Latency of one measurement, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub runs: usize,
    pub median_ms: f64,
    pub p95_ms: f64,
    pub mean_ms: f64,
    pub min_ms: f64,
}

impl Stats {
    /// Median (mean of the two middle values for an even count) and nearest-rank 95th percentile.
    pub fn from_ms(samples: &[f64]) -> Stats {
        let n = samples.len();
        if n == 0 {
            return Stats {
                runs: 0,
                median_ms: f64::NAN,
                p95_ms: f64::NAN,
                mean_ms: f64::NAN,
                min_ms: f64::NAN,
            };
        }
        Stats {
            runs: n,
            median_ms: stats::median(samples),
            p95_ms: stats::percentile(samples, 0.95),
            mean_ms: samples.iter().sum::<f64>() / n as f64,
            min_ms: samples.iter().copied().fold(f64::INFINITY, f64::min),
        }
    }
}

/// What one child process measured at one frame size.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SizeReport {
    pub width: u32,
    pub height: u32,
    /// Faces the detector found in the frame (the benchmark expects exactly one).
    pub faces: usize,
    /// Per stage, in pipeline order: detect, landmarks, align, embed, antispoof.
    pub stages: Vec<(String, Stats)>,
    /// YuNet's forward pass alone on the prepared input tensor: the "detect" stage minus scaling the frame
    /// down, converting it to BGR floats, decoding and NMS. This is what onnxruntime's `session.run` times.
    pub detect_network: Stats,
    /// The padded network input (width, height) of this frame.
    pub network_input: (usize, usize),
    /// detect + landmarks + align + embed + anti-spoof of the one face, end to end.
    pub pipeline: Stats,
}

/// Everything one child process reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChildReport {
    /// RAYON_NUM_THREADS the child was started with.
    pub threads: usize,
    /// Threads rayon's global pool really has.
    pub rayon_threads: usize,
    /// Time to load all models, milliseconds.
    pub load_ms: f64,
    pub sizes: Vec<SizeReport>,
    /// Peak resident memory of the child (VmHWM), MiB; None where /proc is unavailable.
    pub peak_rss_mib: Option<f64>,
}

/// The whole benchmark: one report per thread count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchReport {
    pub image: PathBuf,
    pub warmup: usize,
    pub runs: usize,
    pub children: Vec<ChildReport>,
}

/// Runs `facegate bench`: as the parent (start one child per thread count, print) or as a child (measure).
/// `models`: the folder given with the global `--models` (passed on to the children), or None for the
/// default search path.
pub fn run(args: &BenchArgs, models: Option<&Path>) -> Result<(), BenchError> {
    let image = match &args.image {
        Some(p) => p.clone(),
        None => default_image()?,
    };
    let sizes = parse_sizes(&args.sizes)?;
    if args.runs == 0 {
        return Err(BenchError::BadArgs("--runs must be at least 1".into()));
    }
    if args.child {
        let store = models.map_or_else(ModelStore::discover, |d| {
            ModelStore::new(vec![d.to_path_buf()])
        });
        let report = stages::measure(&store, &image, &sizes, args.warmup, args.runs)?;
        println!(
            "{}",
            serde_json::to_string(&report).expect("plain data serialises")
        );
        return Ok(());
    }
    let mut children = Vec::new();
    for &threads in &args.thread_counts {
        if threads == 0 {
            return Err(BenchError::BadArgs(
                "thread counts must be at least 1".into(),
            ));
        }
        children.push(run_child(args, models, &image, threads)?);
    }
    let report = BenchReport {
        image,
        warmup: args.warmup,
        runs: args.runs,
        children,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("plain data serialises")
        );
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

fn run_child(
    args: &BenchArgs,
    models: Option<&Path>,
    image: &Path,
    threads: usize,
) -> Result<ChildReport, BenchError> {
    let fail = |reason: String| BenchError::Child { threads, reason };
    let mut cmd = Command::new(std::env::current_exe()?);
    if let Some(dir) = models {
        cmd.arg("--models").arg(dir);
    }
    let out = cmd
        .args([
            "bench",
            "--child",
            "--runs",
            &args.runs.to_string(),
            "--warmup",
            &args.warmup.to_string(),
        ])
        .arg("--sizes")
        .arg(args.sizes.join(","))
        .arg("--image")
        .arg(image)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .output()?;
    if !out.status.success() {
        return Err(fail(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| fail("printed no report".into()))?;
    serde_json::from_str(line).map_err(|e| fail(format!("unreadable report: {e}")))
}

/// `640x480` -> (640, 480).
pub fn parse_sizes(sizes: &[String]) -> Result<Vec<(u32, u32)>, BenchError> {
    sizes
        .iter()
        .map(|s| {
            let bad = || BenchError::BadArgs(format!("frame size {s:?} is not WIDTHxHEIGHT"));
            let (w, h) = s.split_once('x').ok_or_else(bad)?;
            let (w, h) = (
                w.trim().parse::<u32>().map_err(|_| bad())?,
                h.trim().parse::<u32>().map_err(|_| bad())?,
            );
            if w < 32 || h < 32 || w > 8192 || h > 8192 {
                return Err(BenchError::BadArgs(format!(
                    "frame size {s} is outside 32..8192"
                )));
            }
            Ok((w, h))
        })
        .collect()
}

/// Peak resident memory of this process (`VmHWM` in /proc/self/status), MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The human-readable tables.
pub fn render(r: &BenchReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "facegate bench: {} (warm-up {}, {} timed runs each)",
        r.image.display(),
        r.warmup,
        r.runs
    );
    for c in &r.children {
        let mem = c
            .peak_rss_mib
            .map_or("n/a".to_string(), |m| format!("{m:.1} MiB"));
        let _ = writeln!(
            s,
            "\n{} thread(s) (rayon pool {}), models loaded in {:.0} ms, peak RSS {mem}",
            c.threads, c.rayon_threads, c.load_ms
        );
        for z in &c.sizes {
            let _ = writeln!(
                s,
                "  {}x{} ({} face(s))   median ms   p95 ms   mean ms",
                z.width, z.height, z.faces
            );
            let net = format!("(network {}x{})", z.network_input.0, z.network_input.1);
            for (name, st) in z
                .stages
                .iter()
                .take(1)
                .map(|(n, s)| (n.as_str(), s))
                .chain([(net.as_str(), &z.detect_network)])
                .chain(z.stages.iter().skip(1).map(|(n, s)| (n.as_str(), s)))
                .chain([("PIPELINE", &z.pipeline)])
            {
                let _ = writeln!(
                    s,
                    "    {name:<18} {:>9.2} {:>8.2} {:>9.2}",
                    st.median_ms, st.p95_ms, st.mean_ms
                );
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_median_and_nearest_rank_p95() {
        let odd = Stats::from_ms(&[5.0, 1.0, 3.0]);
        assert_eq!(
            (odd.median_ms, odd.p95_ms, odd.min_ms, odd.mean_ms),
            (3.0, 5.0, 1.0, 3.0)
        );
        let even = Stats::from_ms(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!(even.median_ms, 2.5);
        // 1..=100: the 95th value of 100 by nearest rank.
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        let h = Stats::from_ms(&hundred);
        assert_eq!((h.median_ms, h.p95_ms, h.runs), (50.5, 95.0, 100));
        // 20 samples: rank ceil(19) = 19.
        let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(Stats::from_ms(&twenty).p95_ms, 19.0);
        assert!(Stats::from_ms(&[]).median_ms.is_nan());
    }

    #[test]
    fn sizes_parse_and_reject_nonsense() {
        let ok = parse_sizes(&["640x480".into(), "1280x720".into()]).unwrap();
        assert_eq!(ok, vec![(640, 480), (1280, 720)]);
        for bad in ["640", "x480", "640x", "ax480", "0x0", "99999x10"] {
            assert!(parse_sizes(&[bad.to_string()]).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn peak_memory_is_read_from_proc() {
        let m = peak_rss_mib().expect("Linux has /proc/self/status");
        assert!(m > 1.0 && m < 100_000.0, "{m} MiB");
    }
}
