//! facegate: face-recognition access control for Home Assistant.
//!
//! A frame goes through the pipeline in the order the modules are listed:
//!
//! - [`capture`]: `FrameSource`s yield timestamped frames (V4L2, HTTP, replay of files).
//! - [`imageio`]: decoding images from files and uploads safely (size limits, EXIF orientation).
//! - [`vision`]: the four networks in candle and the geometry between them:
//!   [`vision::detect`] (YuNet boxes + 5 keypoints), [`vision::landmarks`] (FaceMesh 468 points, eye aspect
//!   ratio), [`vision::align`] (similarity transform onto dlib's 150x150 chip), [`vision::embed`] (dlib ResNet,
//!   128-d), [`vision::antispoof`] (MiniFASNet V2 + V1SE); [`vision::nn`] holds the CPU kernels they share and
//!   [`vision::weights`] the model-file readers. [`vision::FaceAnalyzer`] runs them all on one image.
//! - [`models`]: the model manifest (source, licence, sha256) and verified loading of model files.
//! - [`gallery`]: enrolled people and their embeddings, open-set matching, and the one enrollment rule (which
//!   faces of an image or frame make a sample).
//! - [`pipeline`]: one camera's live pipeline: frames in, evidence out. [`pipeline::track`] follows faces
//!   across frames and gathers their evidence; [`pipeline::liveness`] tells a live face from a photo or a
//!   screen (blinks against the face's own baseline, passive anti-spoof, motion).
//! - [`settings`]: live settings Home Assistant can change while facegate runs.
//! - [`decide`]: the one access rule (evidence -> verdict and why), the policy and cooldowns it uses, and the
//!   decision every output (MQTT, ESPHome, audit) reads.
//! - [`store`]: the one SQLite owner: the connection (WAL, secure delete) and one versioned list of
//!   migrations for people, embeddings, audit and settings. The tables are read through views beside their
//!   domain: [`gallery::Gallery`], [`audit::Audit`], [`service::SettingsStore`].
//! - [`audit`]: the audit log of decisions (`facegate events`), a view on the store.
//! - [`ha`]: Home Assistant over MQTT: discovery payloads declared as data, and the broker connection.
//! - [`esphome`]: the native-API client of the ESP32 lock and lift boards, their drivers (commands with a
//!   deadline, confirmed by state), and a simulated board for tests and the demo.
//! - [`http`]: the HTTP server (hyper): health, snapshot and MJPEG live view with the overlay, recent events,
//!   enrollment by upload; through Home Assistant ingress or with a token.
//! - [`outputs`]: the one bounded broadcast of the service's events (frames, decisions, gate outcomes) and the
//!   outputs that listen to it: gate drivers, audit log, live view (Home Assistant's bridge is in [`ha`]).
//! - [`service`]: `facegate run` ([`service::Service::start`]): cameras producing events, outputs listening,
//!   one shutdown.
//! - [`config`]: options, defaults and validation.
//! - [`bench`]: latency and memory measurements behind `facegate bench`; [`stats`]: the median and percentiles
//!   every measurement report uses.
//! - [`demo`]: `facegate demo`, the whole system on bundled media with an embedded broker and simulated boards.
//! - [`cli`]: the command-line front end (`main.rs` only parses arguments and calls in here).

pub mod audit;
pub mod bench;
pub mod capture;
pub mod cli;
pub mod config;
pub mod decide;
pub mod demo;
pub mod esphome;
pub mod gallery;
pub mod ha;
pub mod http;
pub mod imageio;
pub mod models;
pub mod outputs;
pub mod pipeline;
pub mod service;
pub mod settings;
pub mod stats;
pub mod store;
pub mod vision;
