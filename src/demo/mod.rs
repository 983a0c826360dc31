//! `facegate demo`: the whole system on one machine, with no hardware and no setup.
//!
//! The demo starts an MQTT broker (embedded rumqttd, or the one the user names) and a simulated ESPHome
//! board (door lock and lift) on a local port, enrolls Eileen Collins as a resident from the bundled NASA
//! portrait, then runs the real service ([`crate::service::Service::start`], exactly what `facegate run`
//! runs) with a film as its camera: an empty hallway, a visitor nobody enrolled (Grace Hopper), a phone screen
//! showing Collins (a spoof), and Collins herself, for whom the door unlocks and the lift comes to her floor.
//! The demo publishes and actuates nothing itself: it watches the service's event stream, the MQTT messages
//! Home Assistant would receive and the board's own reports, narrates them, and ends with a summary table of
//! what was expected and what happened (from the service's MQTT events and audit rows); the exit code says
//! whether everything did.
//!
//! - [`media`]: the bundled portraits and the synthesised camera frames.
//! - [`film`]: the demo's camera, a frame source playing the scenes.
//! - [`broker`]: the embedded broker and a watcher of the topic tree.
//! - [`live`]: the live view (the service's HTTP server, trusted on localhost) and the snapshot check.
//! - [`setup`]: models, broker, the simulated board, the service's options, the enrollment.
//! - [`scenario`]: the scenes and the run itself.
//! - [`narrate`]: narration lines and progress bars.
//! - [`summary`]: expectations, results, the summary table.

pub mod broker;
pub mod film;
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
    #[error("the facegate service: {0}")]
    Service(String),
    #[error("cannot set up {0}: {1}")]
    Io(&'static str, #[source] std::io::Error),
}
