//! `facegate replay`: the whole live pipeline over a recording, printing what happened; and `facegate events`,
//! the audit log.
//!
//! Replay plays every frame (no drops) with media time `frame / fps`, so blinks, windows and cooldowns keep
//! their real durations however fast the machine is. With `--json` each [`PipelineEvent`] is one JSON line on
//! stdout; a summary (frames, fps, latencies) goes to stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::{setup, GlobalArgs, VisionArgs};
use crate::audit::Audit;
use crate::capture::replay::{Pace, ReplayOptions, ReplaySource};
use crate::config::ServiceConfig;
use crate::decide::{Policy, Verdict};
use crate::gallery::{MatchParams, SharedGallery};
use crate::pipeline::{run, Pipeline, PipelineEvent};
use crate::settings::{LiveSettings, SettingsHandle};

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A folder of frames (file-name order) or an MJPEG file.
    #[arg(value_name = "SOURCE")]
    pub source: PathBuf,
    /// One JSON object per event and line.
    #[arg(long)]
    pub json: bool,
    /// Frames per second of the recording.
    #[arg(long, default_value_t = 10.0, value_name = "F")]
    pub fps: f32,
    /// Gallery database (people to recognise) [default: an empty gallery, or the options' database].
    #[arg(long, env = "FACEGATE_DB")]
    pub db: Option<PathBuf>,
    /// The gate deciding [default: the options' first camera's gate, else "replay"].
    #[arg(long, value_name = "NAME")]
    pub gate: Option<String>,
    /// Service options (access levels, gates, liveness, thresholds), as the add-on's options.json.
    #[arg(long, value_name = "FILE")]
    pub options: Option<PathBuf>,
    /// Require a blink before a grant (overrides the options).
    #[arg(long)]
    pub require_blink: bool,
    /// Also write the decisions to the audit log of the database.
    #[arg(long, requires = "db")]
    pub audit: bool,
    /// Play the recording in a loop until this much media time has passed (soak tests).
    #[arg(long, value_name = "SECONDS")]
    pub loop_for: Option<f64>,
    /// Play at the recording's pace like a camera (frames the pipeline is too slow for are dropped).
    #[arg(long)]
    pub realtime: bool,
    #[command(flatten)]
    pub vision: VisionArgs,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The database (gallery and audit log).
    #[arg(long, env = "FACEGATE_DB")]
    pub db: PathBuf,
    /// One JSON object per decision and line.
    #[arg(long)]
    pub json: bool,
    /// How many of the newest decisions.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: usize,
}

fn load_options(path: Option<&Path>) -> anyhow::Result<ServiceConfig> {
    match path {
        Some(path) => Ok(crate::config::load_options(path)?),
        None => Ok(ServiceConfig::default()),
    }
}

pub fn replay(g: &GlobalArgs, a: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let config = load_options(a.options.as_deref())?;
    let policy = Policy::from_config(&config).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!("invalid options: {}", lines.join("; "))
    })?;
    let mut settings = LiveSettings::from_config(&config);
    settings.require_blink |= a.require_blink;
    let mut liveness = config.liveness.clone();
    liveness.require_blink = settings.require_blink;
    let params = MatchParams {
        threshold: settings.match_threshold,
        ..MatchParams::default()
    };
    let gallery = match &a.db {
        Some(db) => SharedGallery::open(db, params)
            .with_context(|| format!("cannot open the gallery {}", db.display()))?,
        None => SharedGallery::in_memory(params)?,
    };
    let mut audit = match (&a.db, a.audit) {
        (Some(db), true) => Some(Audit::open(db, config.storage.audit_retention_days)?),
        _ => None,
    };
    let gate = a
        .gate
        .clone()
        .or_else(|| config.cameras.first().map(|c| c.gate.clone()))
        .unwrap_or_else(|| "replay".to_string());
    let opts = ReplayOptions {
        fps: a.fps,
        pace: if a.realtime {
            Pace::Realtime
        } else {
            Pace::Fast
        },
        looped: a.loop_for.is_some(),
    };
    let mut source = ReplaySource::open(&a.source, opts)?;
    let analyzer = Arc::new(setup::analyzer(g, &a.vision)?);
    let mut pipeline = Pipeline::new(
        gate,
        analyzer,
        gallery,
        policy,
        SettingsHandle::new(settings),
        liveness,
    );
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let until = a.loop_for.map(Duration::from_secs_f64);
    let stats = run(&mut pipeline, &mut source, until, |e| {
        if let (Some(audit), PipelineEvent::Decision { decision, .. }) = (audit.as_mut(), e) {
            audit.record(decision).map_err(std::io::Error::other)?;
        }
        if a.json {
            serde_json::to_writer(&mut out, e)?;
            writeln!(out)
        } else {
            writeln!(out, "{}", describe(e))
        }
    })?;
    eprintln!("replay: {}", stats.summary());
    Ok(ExitCode::SUCCESS)
}

/// One event in words.
fn describe(e: &PipelineEvent) -> String {
    match e {
        PipelineEvent::TrackStart {
            track, frame, t, ..
        } => {
            format!("{t:8.2} s  frame {frame:5}  track {track} started")
        }
        PipelineEvent::Blink { track, frame, t } => {
            format!("{t:8.2} s  frame {frame:5}  track {track} blinked")
        }
        PipelineEvent::Liveness {
            track,
            frame,
            t,
            live,
            reason,
            ..
        } => format!(
            "{t:8.2} s  frame {frame:5}  track {track} {}: {reason}",
            if *live { "live" } else { "NOT live" }
        ),
        PipelineEvent::Recognition {
            track,
            frame,
            t,
            person,
            confidence,
            ..
        } => format!(
            "{t:8.2} s  frame {frame:5}  track {track} is {} (confidence {confidence:.2})",
            person.as_deref().unwrap_or("unknown")
        ),
        PipelineEvent::Decision { frame, t, decision } => format!(
            "{t:8.2} s  frame {frame:5}  track {} decision: {} for {}",
            decision.track_id,
            verdict_text(&decision.verdict),
            decision.person.as_deref().unwrap_or("unknown")
        ),
        PipelineEvent::TrackEnd {
            track,
            frame,
            t,
            frames,
        } => format!("{t:8.2} s  frame {frame:5}  track {track} ended after {frames} frames"),
        PipelineEvent::Enrollment {
            name, ok, reason, ..
        } => match ok {
            true => format!("enrolled {name}"),
            false => format!(
                "enrollment of {name} failed: {}",
                reason.as_deref().unwrap_or("")
            ),
        },
    }
}

fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Granted { actions } => format!("granted ({} action(s))", actions.len()),
        Verdict::NotifyOnly => "notify only".into(),
        Verdict::Denied { reason } => format!("denied ({reason})"),
        Verdict::Unknown => "unknown".into(),
        Verdict::Spoof => "SPOOF".into(),
    }
}

/// `facegate events`: the newest decisions of the audit log.
pub fn events(a: &EventsArgs) -> anyhow::Result<ExitCode> {
    if !a.db.exists() {
        anyhow::bail!("database {} does not exist", a.db.display());
    }
    // Retention is the service's business; listing prunes nothing (u32::MAX days).
    let audit = Audit::open(&a.db, u32::MAX)
        .with_context(|| format!("cannot open the audit log in {}", a.db.display()))?;
    let rows = audit.recent(a.limit)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if a.json {
        for r in &rows {
            serde_json::to_writer(&mut out, r)?;
            writeln!(out)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        writeln!(out, "no decisions recorded")?;
    }
    for r in &rows {
        let when = chrono::DateTime::<chrono::Local>::from(
            std::time::UNIX_EPOCH + Duration::from_secs_f64(r.time.max(0.0)),
        );
        writeln!(
            out,
            "{}  {:<12} {:<12} {:<11} conf {:.2} live {:.2}  {}{}",
            when.format("%Y-%m-%d %H:%M:%S"),
            r.gate,
            r.person.as_deref().unwrap_or("unknown"),
            r.verdict,
            r.confidence,
            r.liveness,
            r.reason.as_deref().unwrap_or(""),
            r.outcome
                .as_deref()
                .map(|o| format!(" -> {o}"))
                .unwrap_or_default()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
