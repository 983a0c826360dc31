//! `facegate demo`: options, the runtime, and the exit code (0 only when every expected outcome happened).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::GlobalArgs;
use crate::demo::DemoOptions;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Use this MQTT broker instead of the embedded one.
    #[arg(long, value_name = "HOST")]
    pub mqtt_host: Option<String>,
    /// Port of the broker given with --mqtt-host.
    #[arg(
        long,
        value_name = "PORT",
        default_value_t = 1883,
        requires = "mqtt_host"
    )]
    pub mqtt_port: u16,
    /// Port of the live view (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub http_port: u16,
    /// At the end, keep the broker, boards and live view running until Ctrl-C.
    #[arg(long)]
    pub hold: bool,
    /// Process frames as fast as possible instead of at the camera's 10 frames per second.
    #[arg(long)]
    pub fast: bool,
    /// Also write the summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    /// Save every synthesised camera frame as a PNG in this folder.
    #[arg(long, value_name = "DIR")]
    pub dump_frames: Option<PathBuf>,
}

pub fn run(g: &GlobalArgs, a: &DemoArgs) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &a.dump_frames {
        std::fs::create_dir_all(dir)?;
    }
    let opts = DemoOptions {
        models: g.models.iter().cloned().collect(),
        mqtt: a.mqtt_host.clone().map(|h| (h, a.mqtt_port)),
        http_port: a.http_port,
        hold: a.hold,
        fast: a.fast,
        summary_json: a.summary_json.clone(),
        dump_frames: a.dump_frames.clone(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let summary = rt.block_on(crate::demo::run(opts))?;
    // The embedded broker's threads never end on their own: leave without waiting for them.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    Ok(if summary.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
