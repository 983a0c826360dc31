//! The command line: `run` (the service), `enroll`, `identify`, `embed`, `people`, `models`, `config`,
//! `bench`, `replay`, `events`, `demo`.
//!
//! `main.rs` parses [`Cli`] and calls [`run`]. Commands over many images report each file's outcome and go on
//! with the others; the exit code is non-zero when any file failed. This is the top of the program, so errors
//! are `anyhow` here and typed everywhere below.

mod config;
mod demo;
mod enroll;
mod identify;
mod output;
mod people;
mod replay;
mod setup;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::vision::CropPadding;

/// Face-recognition access control for Home Assistant.
#[derive(Debug, Parser)]
#[command(name = "facegate", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Folder holding the model files (default: $FACEGATE_MODELS, /data/models, /opt/facegate/models, the
    /// source tree's models/ and ../shared/models).
    #[arg(long, global = true, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Inference threads (0: one per core).
    #[arg(long, global = true, default_value_t = 0, value_name = "N")]
    pub threads: usize,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enroll a person from photos: each must show exactly one large, sharp face.
    Enroll(EnrollArgs),
    /// Identify the faces in images against the enrolled people.
    Identify(IdentifyArgs),
    /// Detect faces and print their boxes, keypoints, embeddings and anti-spoof scores.
    Embed(EmbedArgs),
    /// List or remove enrolled people.
    #[command(subcommand)]
    People(PeopleCommand),
    /// Model files: check that each is present and intact.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Service options (the add-on's options.json): check them without starting anything.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// ESPHome boards: list a board's entities and states, unlock / lock, call the lift, run the simulator.
    Esphome(crate::esphome::cli::EsphomeArgs),
    /// Per-stage and whole-pipeline latency (median, p95) and peak memory, at 1 and 2 threads.
    Bench(crate::bench::BenchArgs),
    /// Run the live pipeline (tracking, liveness, recognition, decisions) over a folder of frames or an MJPEG
    /// file and print what happened.
    Replay(replay::ReplayArgs),
    /// The newest access decisions from the audit log.
    Events(replay::EventsArgs),
    /// Run the service: cameras, recognition, Home Assistant over MQTT, gate boards (until SIGTERM).
    Run(RunArgs),
    /// The whole system with no hardware: embedded broker, simulated lock and lift, bundled media, narrated.
    Demo(demo::DemoArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The options (JSON, as the add-on's /data/options.json).
    #[arg(long, env = "FACEGATE_OPTIONS", default_value = "/data/options.json")]
    pub options: PathBuf,
}

/// Detection options shared by the commands that look at images.
#[derive(Debug, Args)]
pub struct VisionArgs {
    /// Tight face crops (a face filling the picture): `auto` retries with a border when no face is found.
    #[arg(long, value_enum, default_value_t = PadArg::Auto)]
    pub pad: PadArg,
    /// Minimum detector score for a face [default: the detector's own default].
    #[arg(long, value_name = "SCORE")]
    pub detect_threshold: Option<f32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PadArg {
    Auto,
    Always,
    Never,
}

impl From<PadArg> for CropPadding {
    fn from(p: PadArg) -> Self {
        match p {
            PadArg::Auto => CropPadding::Auto,
            PadArg::Always => CropPadding::Always,
            PadArg::Never => CropPadding::Never,
        }
    }
}

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// Gallery database (SQLite; created if missing).
    #[arg(long, env = "FACEGATE_DB")]
    pub db: PathBuf,
    /// The person's name (added to if already enrolled).
    #[arg(long)]
    pub name: String,
    /// Access level for a new person (or a new level for an existing one) [default: resident].
    #[arg(long, value_name = "LEVEL")]
    pub access_level: Option<String>,
    /// Smallest accepted face, in pixels.
    #[arg(long, value_name = "PX")]
    pub min_face_size: Option<f32>,
    /// Smallest accepted sharpness (variance of the Laplacian on the aligned face).
    #[arg(long, value_name = "SCORE")]
    pub min_sharpness: Option<f32>,
    #[command(flatten)]
    pub vision: VisionArgs,
    /// Photos of the person.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct IdentifyArgs {
    /// Gallery database (SQLite).
    #[arg(long, env = "FACEGATE_DB")]
    pub db: PathBuf,
    /// One JSON object per image and line.
    #[arg(long)]
    pub json: bool,
    /// Largest embedding distance that can be a match [default: the gallery's].
    #[arg(long, value_name = "D")]
    pub threshold: Option<f32>,
    /// The second-nearest person must be this much further than the nearest [default: the gallery's].
    #[arg(long, value_name = "D")]
    pub margin: Option<f32>,
    #[command(flatten)]
    pub vision: VisionArgs,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// One JSON object per image and line (otherwise a short summary per face).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub vision: VisionArgs,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PeopleCommand {
    /// Everyone enrolled, with access level and number of embeddings.
    List {
        #[arg(long, env = "FACEGATE_DB")]
        db: PathBuf,
        /// One JSON object per person and line.
        #[arg(long)]
        json: bool,
    },
    /// Remove a person and all their embeddings.
    Remove {
        #[arg(long, env = "FACEGATE_DB")]
        db: PathBuf,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Print each model of the manifest: where it was found and whether its sha256 is right.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate an options file; every problem is printed with the option it concerns. Exit code 1 if any.
    Check {
        /// Options JSON, as the Supervisor writes it.
        #[arg(long, value_name = "FILE", default_value = "/data/options.json")]
        options: PathBuf,
    },
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    setup::threads(cli.global.threads)?;
    let g = &cli.global;
    match cli.command {
        Command::Enroll(a) => enroll::run(g, &a),
        Command::Identify(a) => identify::identify(g, &a),
        Command::Embed(a) => identify::embed(g, &a),
        Command::People(PeopleCommand::List { db, json }) => people::list(&db, json),
        Command::People(PeopleCommand::Remove { db, name }) => people::remove(&db, &name),
        Command::Models(ModelsCommand::Check) => setup::models_check(g),
        Command::Config(ConfigCommand::Check { options }) => config::check(&options),
        Command::Esphome(a) => crate::esphome::cli::run(a).map(|()| ExitCode::SUCCESS),
        Command::Replay(a) => replay::replay(g, &a),
        Command::Events(a) => replay::events(&a),
        Command::Demo(a) => demo::run(g, &a),
        Command::Bench(a) => {
            crate::bench::run(&a, g.models.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(a) => {
            crate::service::run(&crate::service::RunOptions {
                options: a.options,
                models: g.models.clone(),
                threads: g.threads,
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Exit code for a batch: success only when every file succeeded.
fn batch_exit(failed: usize) -> ExitCode {
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
