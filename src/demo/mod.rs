//! `facegate demo`: the whole system on one machine, with no hardware and no setup.
//!
//! The demo starts an MQTT broker (embedded rumqttd, or the one the user names), two simulated ESPHome
//! boards (door lock, lift) on local ports, enrolls Eileen Collins as a resident from the bundled NASA
//! portrait, then plays a short film through the camera pipeline: an empty hallway, a visitor nobody
//! enrolled (Grace Hopper), a phone screen showing Collins (a spoof), and Collins herself, for whom the door
//! unlocks and the lift comes to her floor. Each step is narrated; the end is a summary table of what was
//! expected and what happened, and the exit code says whether everything did.
//!
//! - [`media`]: the bundled portraits and the synthesised camera frames.
//! - [`broker`]: the embedded broker, the access-event publisher and a watcher of the topic tree.
//! - [`live`]: the live view (facegate's HTTP server) and its enrollment uploads.
//! - [`setup`]: models, broker and discovery, the simulated boards and drivers, the enrollment.
//! - [`scenario`]: the scenes, played through the real camera pipeline ([`crate::pipeline::Pipeline`]),
//!   and the run itself.
//! - [`narrate`]: narration lines and progress bars.
//! - [`summary`]: expectations, results, the summary table.

pub mod broker;
pub mod live;
pub mod media;
pub mod narrate;
pub mod scenario;
pub mod setup;
pub mod summary;

use std::path::PathBuf;

pub use scenario::run;
pub use summary::Summary;

/// How the demo runs.
#[derive(Clone, Debug, Default)]
pub struct DemoOptions {
    /// Model folders (empty: the default search path).
    pub models: Vec<PathBuf>,
    /// A broker to use instead of the embedded one: (host, port).
    pub mqtt: Option<(String, u16)>,
    /// Port for the live view (0: any free port).
    pub http_port: u16,
    /// Keep everything running at the end until Ctrl-C.
    pub hold: bool,
    /// Play frames as fast as they are processed instead of at the camera's 10 frames per second.
    pub fast: bool,
    /// Write the summary as JSON here.
    pub summary_json: Option<PathBuf>,
    /// Save every synthesised frame as a PNG here (to look at them, or score them with `facegate embed`).
    pub dump_frames: Option<PathBuf>,
}

/// Everything that stops the demo before its end. One enum for the demo's boundary.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "the face models are missing: {0}\n\
         Fetch them once with:  scripts/fetch-models.sh ~/.cache/facegate/models ../shared/models\n\
         (the second folder is optional: without it they are downloaded from their pinned upstream), then run\n\
         the demo with FACEGATE_MODELS=~/.cache/facegate/models or --models ~/.cache/facegate/models"
    )]
    Models(String),
    #[error("bundled media: {0}")]
    Media(String),
    #[error("face analysis failed: {0}")]
    Vision(String),
    #[error("the demo's configuration is invalid: {0}")]
    Config(String),
    #[error("enrollment from the bundled photo failed: {0}")]
    Enroll(String),
    #[error("MQTT: {0}")]
    Broker(String),
    #[error("simulated board: {0}")]
    Board(String),
    #[error("live view: {0}")]
    Http(String),
    #[error("cannot set up {0}: {1}")]
    Io(&'static str, #[source] std::io::Error),
}
