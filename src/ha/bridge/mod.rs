//! The Home Assistant bridge: one task that owns the MQTT connection and turns camera reports into retained
//! states and events, and HA's commands into live settings, enrollments and access levels.
//!
//! Every retained state facegate publishes is kept in a cache, so the whole picture (availability, discovery
//! configs of devices and people, every state) is republished whenever the link comes up and whenever HA
//! announces `online` on `<prefix>/status` (HA restarted, or the broker lost its retained messages). Events
//! are QoS 1, not retained; while the broker is unreachable they wait in an [`queue::EventQueue`] (see its
//! policy). States are deduplicated: an unchanged value is not sent again.

mod commands;
pub mod payloads;
mod people;
pub mod queue;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::QoS;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::discovery::{discovery_messages, entity, Device, Topics};
use super::link::{mqtt_options, Connection, Link};
use super::HaError;
use crate::config::MqttConfig;
use crate::esphome::driver::ActionOutcome;
use crate::gallery::PersonInfo;
use crate::pipeline::{FrameReport, PipelineEvent};
use crate::settings::{LiveSettings, SettingsHandle};

/// What HA asks a camera's pipeline to do.
#[derive(Clone, Debug, PartialEq)]
pub enum CameraCommand {
    /// Enroll the single face in view under `name` (several good frames); the result comes back as a
    /// [`PipelineEvent::Enrollment`].
    Enroll { name: String },
    /// Forget the last unknown face (its crop and track).
    ForgetUnknown,
}

/// What the cameras and drivers tell the bridge. `device` is the camera's [`Device::slug`].
#[derive(Clone, Debug)]
pub enum BridgeInput {
    /// One processed frame; `face_jpeg` is the crop of the face a decision in it is about, if any.
    Report {
        device: String,
        report: FrameReport,
        face_jpeg: Option<Vec<u8>>,
    },
    /// The camera's state in words (`streaming`, `disconnected: ...`, `ended`).
    Camera { device: String, status: String },
    /// A gate action carried out by the ESPHome drivers, for the decision about `person` (None: unknown) on
    /// `track` (so HA automations can tell whose unlock was dropped).
    Gate {
        device: String,
        outcome: ActionOutcome,
        person: Option<String>,
        track: u64,
    },
}

/// The enrolled people, as the bridge reads and changes them (the gallery).
pub trait People: Send + Sync {
    fn people(&self) -> Result<Vec<PersonInfo>, String>;
    fn set_access_level(&self, name: &str, level: &str) -> Result<(), String>;
}

/// Where changed live settings are persisted.
pub trait SettingsSink: Send + Sync {
    fn save(&self, device: &str, settings: &LiveSettings) -> Result<(), String>;
}

/// One camera as the bridge sees it.
pub struct DeviceSetup {
    pub device: Device,
    /// The camera pipeline's live settings (changed by HA's switches and numbers).
    pub settings: SettingsHandle,
    /// The camera thread's command channel; `None` when no pipeline runs (enrollment then fails politely).
    pub commands: Option<std::sync::mpsc::Sender<CameraCommand>>,
}

/// Bridge options beyond the MQTT connection's.
#[derive(Clone, Debug)]
pub struct BridgeOptions {
    pub mqtt: MqttConfig,
    pub client_id: String,
    /// Access level names offered by each person's select (people's current levels are added).
    pub access_levels: Vec<String>,
    /// A person's tracker goes `not_home` this long after their last recognition.
    pub away_after: Duration,
    /// Events queued while the broker is unreachable are dropped when older than this.
    pub event_max_age: Duration,
    /// How often the diagnostics (frame rate, latency) are published.
    pub diag_every: Duration,
    /// How often the gallery is re-read for people added or removed outside HA (the CLI, the HTTP upload).
    pub people_every: Duration,
}

/// Clonable handle the cameras send [`BridgeInput`]s through.
#[derive(Clone)]
pub struct BridgeSender(mpsc::UnboundedSender<Msg>);

impl BridgeSender {
    /// Hands `input` to the bridge; false once the bridge has stopped.
    pub fn send(&self, input: BridgeInput) -> bool {
        self.0.send(Msg::Input(input)).is_ok()
    }
}

enum Msg {
    Input(BridgeInput),
    Shutdown(oneshot::Sender<()>),
}

/// The running bridge task.
pub struct Bridge {
    tx: mpsc::UnboundedSender<Msg>,
    task: JoinHandle<()>,
}

impl Bridge {
    /// Starts the bridge; it connects in the background (and keeps retrying, with a log line per failure).
    /// Fails only on options that can never work (no host, unreadable CA file, bad device names).
    pub fn start(
        opts: BridgeOptions,
        devices: Vec<DeviceSetup>,
        people: Arc<dyn People>,
        sink: Arc<dyn SettingsSink>,
    ) -> Result<Bridge, HaError> {
        let topics = Topics::new(&opts.mqtt);
        let options = mqtt_options(&opts.mqtt, &opts.client_id, &topics.availability())?;
        let conn = Connection::start(&opts.mqtt, options);
        let (tx, rx) = mpsc::unbounded_channel();
        let mut st = State {
            conn,
            topics,
            queue: queue::EventQueue::new(opts.event_max_age, 1000),
            opts,
            devices: devices.into_iter().map(Dev::new).collect(),
            people,
            sink,
            connected: false,
            cache: BTreeMap::new(),
            persons: BTreeMap::new(),
            levels: Vec::new(),
            home: BTreeMap::new(),
            last_people_refresh: Instant::now(),
            was_connected: false,
            hold_events_until: None,
            clear_later: Vec::new(),
        };
        st.init_states();
        let task = tokio::spawn(run(st, rx));
        Ok(Bridge { tx, task })
    }

    pub fn sender(&self) -> BridgeSender {
        BridgeSender(self.tx.clone())
    }

    /// Publishes `offline`, disconnects cleanly and waits for the task to end.
    pub async fn shutdown(self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Shutdown(done)).is_ok() {
            let _ = wait.await;
        }
        let _ = self.task.await;
    }
}

/// Per-device bookkeeping.
struct Dev {
    setup: DeviceSetup,
    enroll_name: String,
    last_was_unknown: bool,
    frames: u32,
    latency_sum: f64,
    window_start: Instant,
}

impl Dev {
    fn new(setup: DeviceSetup) -> Dev {
        Dev {
            setup,
            enroll_name: String::new(),
            last_was_unknown: false,
            frames: 0,
            latency_sum: 0.0,
            window_start: Instant::now(),
        }
    }
}

/// A person the bridge has published.
struct Person {
    name: String,
    level: String,
}

struct State {
    conn: Connection,
    topics: Topics,
    opts: BridgeOptions,
    devices: Vec<Dev>,
    people: Arc<dyn People>,
    sink: Arc<dyn SettingsSink>,
    connected: bool,
    /// Retained states by topic, as last published.
    cache: BTreeMap<String, Vec<u8>>,
    queue: queue::EventQueue,
    /// Published people by slug.
    persons: BTreeMap<String, Person>,
    /// Access level options of the selects.
    levels: Vec<String>,
    /// People currently `home`, by slug, with their last recognition.
    home: BTreeMap<String, Instant>,
    last_people_refresh: Instant,
    /// Whether the link has been up before (a later `Up` is a reconnect).
    was_connected: bool,
    /// After a reconnect, events wait until HA is back too (its birth message, or this deadline): a broker
    /// restart drops HA's subscriptions, and a non-retained event sent before HA resubscribes is lost.
    hold_events_until: Option<Instant>,
    /// Retained states of removed people, cleared once HA has dropped their entities (see `people.rs`).
    clear_later: Vec<(Instant, String)>,
}

/// How long queued events wait for HA's birth message after a reconnect.
const HOLD_FOR_HA: Duration = Duration::from_secs(10);
/// Pause between HA's birth message and the queued events (HA resubscribes and reads the configs first).
const AFTER_BIRTH: Duration = Duration::from_millis(500);

async fn run(mut st: State, mut rx: mpsc::UnboundedReceiver<Msg>) {
    st.refresh_people().await;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            link = st.conn.links.recv() => match link {
                Some(l) => st.on_link(l).await,
                None => return,
            },
            msg = rx.recv() => match msg {
                Some(Msg::Input(i)) => st.on_input(i).await,
                Some(Msg::Shutdown(done)) => {
                    st.shutdown().await;
                    let _ = done.send(());
                    return;
                }
                None => {
                    st.shutdown().await;
                    return;
                }
            },
            _ = tick.tick() => st.on_tick().await,
        }
    }
}

impl State {
    fn state_topic(&self, dev: usize, key: &str) -> String {
        let spec = entity(key).expect("entity key in ENTITIES");
        self.topics.state(&self.devices[dev].setup.device, spec)
    }

    fn device_index(&self, slug: &str) -> Option<usize> {
        self.devices
            .iter()
            .position(|d| d.setup.device.slug == slug)
    }

    /// The settings' states and the camera's initial state, before anything is connected.
    fn init_states(&mut self) {
        for i in 0..self.devices.len() {
            let s = self.devices[i].setup.settings.get();
            for (key, payload) in commands::settings_states(&s) {
                let topic = self.state_topic(i, key);
                self.cache.insert(topic, payload.into_bytes());
            }
            let topic = self.state_topic(i, "camera");
            self.cache.insert(topic, b"starting".to_vec());
            let topic = self.state_topic(i, "face_present");
            self.cache.insert(topic, b"OFF".to_vec());
        }
    }

    async fn publish(&self, topic: &str, payload: Vec<u8>, retain: bool) {
        if !self.connected {
            return;
        }
        if let Err(e) = self
            .conn
            .client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await
        {
            tracing::warn!(topic, error = %e, "MQTT publish not queued");
        }
    }

    /// Sets a retained state; sends it only when it changed.
    async fn set_state(&mut self, topic: String, payload: Vec<u8>) {
        if self.cache.get(&topic) == Some(&payload) {
            return;
        }
        self.force_state(topic, payload).await;
    }

    /// Sets and sends a retained state even if unchanged (the echo after a refused command).
    async fn force_state(&mut self, topic: String, payload: Vec<u8>) {
        self.cache.insert(topic.clone(), payload.clone());
        self.publish(&topic, payload, true).await;
    }

    /// Publishes an event (QoS 1, not retained) now, or queues it while the broker is unreachable.
    async fn event(&mut self, topic: String, payload: Vec<u8>) {
        if self.connected && self.hold_events_until.is_none() {
            self.publish(&topic, payload, false).await;
        } else {
            self.queue.push(queue::QueuedEvent {
                topic,
                payload,
                at: Instant::now(),
            });
        }
    }

    /// Availability, every discovery config and every cached state.
    async fn publish_all(&mut self) {
        self.publish(&self.topics.availability(), b"online".to_vec(), true)
            .await;
        for d in &self.devices {
            for m in discovery_messages(&self.topics, &d.setup.device) {
                self.publish(&m.topic, m.payload, true).await;
            }
        }
        for m in self.person_configs() {
            self.publish(&m.topic, m.payload, true).await;
        }
        for (topic, payload) in &self.cache {
            self.publish(topic, payload.clone(), true).await;
        }
    }

    async fn on_link(&mut self, link: Link) {
        match link {
            Link::Up => {
                self.connected = true;
                for filter in self.subscriptions() {
                    if let Err(e) = self
                        .conn
                        .client
                        .subscribe(filter.clone(), QoS::AtLeastOnce)
                        .await
                    {
                        tracing::warn!(filter, error = %e, "MQTT subscribe not queued");
                    }
                }
                self.publish_all().await;
                if self.was_connected {
                    self.hold_events_until = Some(Instant::now() + HOLD_FOR_HA);
                } else {
                    self.flush_events().await;
                }
                self.was_connected = true;
            }
            Link::Down(_) => self.connected = false,
            Link::Message { topic, payload } => self.on_message(&topic, &payload).await,
        }
    }

    /// Sends the events queued while the broker (or HA) was unreachable, dropping the stale ones.
    async fn flush_events(&mut self) {
        self.hold_events_until = None;
        let drained = self.queue.drain(Instant::now());
        if drained.expired + drained.overflowed > 0 {
            tracing::warn!(
                expired = drained.expired,
                overflowed = drained.overflowed,
                max_age_s = self.opts.event_max_age.as_secs(),
                "dropped events queued while the broker was unreachable (too old or too many)"
            );
        }
        if !drained.deliver.is_empty() {
            tracing::info!(
                count = drained.deliver.len(),
                "delivering events queued while the broker was unreachable"
            );
        }
        for e in drained.deliver {
            self.publish(&e.topic, e.payload, false).await;
        }
    }

    fn subscriptions(&self) -> Vec<String> {
        let (p, b) = (&self.topics.discovery_prefix, &self.topics.base_topic);
        vec![
            self.topics.ha_status(),
            format!("{b}/+/+/set"),
            format!("{b}/{}/+/+/set", super::discovery::PEOPLE_SEGMENT),
            format!("{p}/device_tracker/+/presence/config"),
            format!("{p}/select/+/access_level/config"),
        ]
    }

    async fn on_message(&mut self, topic: &str, payload: &[u8]) {
        if topic == self.topics.ha_status() {
            if payload == b"online" {
                tracing::info!("Home Assistant is online: republishing discovery and states");
                self.publish_all().await;
                if self.hold_events_until.is_some() {
                    self.hold_events_until = Some(Instant::now() + AFTER_BIRTH);
                }
            }
            return;
        }
        if let Some(ps) = super::discovery::person_slug_in_config_topic(&self.topics, topic) {
            // A person config retained by an earlier run: remove it if the person is gone. Only configs
            // whose topics are under this facegate's base topic (another instance may share the broker).
            let ours = serde_json::from_slice::<serde_json::Value>(payload)
                .ok()
                .and_then(|v| v["state_topic"].as_str().map(str::to_string))
                .is_some_and(|t| t.starts_with(&format!("{}/", self.topics.base_topic)));
            if ours && !self.persons.contains_key(&ps) {
                self.remove_person(&ps).await;
            }
            return;
        }
        self.on_command(topic, payload).await;
    }

    async fn on_input(&mut self, input: BridgeInput) {
        match input {
            BridgeInput::Report {
                device,
                report,
                face_jpeg,
            } => {
                let Some(i) = self.device_index(&device) else {
                    tracing::warn!(device, "report for an unknown device");
                    return;
                };
                self.on_report(i, report, face_jpeg).await;
            }
            BridgeInput::Camera { device, status } => {
                if let Some(i) = self.device_index(&device) {
                    let topic = self.state_topic(i, "camera");
                    self.set_state(topic, status.into_bytes()).await;
                }
            }
            BridgeInput::Gate {
                device,
                outcome,
                person,
                track,
            } => {
                if let Some(i) = self.device_index(&device) {
                    let topic = self.state_topic(i, "gate_action");
                    let payload = payloads::gate_event(&outcome, person.as_deref(), track)
                        .to_string()
                        .into_bytes();
                    self.event(topic, payload).await;
                }
            }
        }
    }

    async fn on_report(&mut self, i: usize, report: FrameReport, face_jpeg: Option<Vec<u8>>) {
        let present = if report.faces.is_empty() { "OFF" } else { "ON" };
        let topic = self.state_topic(i, "face_present");
        self.set_state(topic, present.as_bytes().to_vec()).await;
        let d = &mut self.devices[i];
        d.frames += 1;
        d.latency_sum += report.latency_s;
        let mut jpeg = face_jpeg;
        for ev in report.events {
            match ev {
                PipelineEvent::Decision { decision, .. } => {
                    if let Some(bytes) = jpeg.take() {
                        let topic = self.state_topic(i, "last_face");
                        self.force_state(topic, bytes).await;
                    }
                    let topic = self.state_topic(i, "last_person");
                    let state = payloads::last_person(&decision).to_string().into_bytes();
                    self.set_state(topic, state).await;
                    let topic = self.state_topic(i, "access");
                    let payload = payloads::access_event(&decision).to_string().into_bytes();
                    self.event(topic, payload).await;
                    self.devices[i].last_was_unknown =
                        matches!(decision.verdict, crate::decide::Verdict::Unknown);
                    self.seen(&decision).await;
                }
                PipelineEvent::Enrollment {
                    name,
                    ok,
                    samples,
                    reason,
                } => {
                    let topic = self.state_topic(i, "enrollment");
                    let payload = payloads::enrollment_event(&name, ok, samples, reason.as_deref());
                    self.event(topic, payload.to_string().into_bytes()).await;
                    if ok {
                        self.refresh_people().await;
                    }
                }
                _ => {}
            }
        }
    }

    async fn on_tick(&mut self) {
        let now = Instant::now();
        for i in 0..self.devices.len() {
            let d = &self.devices[i];
            let elapsed = now.duration_since(d.window_start);
            if elapsed < self.opts.diag_every {
                continue;
            }
            let fps = d.frames as f64 / elapsed.as_secs_f64();
            let latency = (d.frames > 0).then(|| d.latency_sum / d.frames as f64 * 1000.0);
            let d = &mut self.devices[i];
            (d.frames, d.latency_sum, d.window_start) = (0, 0.0, now);
            let topic = self.state_topic(i, "fps");
            self.set_state(topic, format!("{fps:.1}").into_bytes())
                .await;
            if let Some(ms) = latency {
                let topic = self.state_topic(i, "latency");
                self.set_state(topic, format!("{ms:.0}").into_bytes()).await;
            }
        }
        self.expire_trackers(now).await;
        self.clear_removed_states(now).await;
        if self.connected && self.hold_events_until.is_some_and(|t| now >= t) {
            self.flush_events().await;
        }
        if now.duration_since(self.last_people_refresh) >= self.opts.people_every {
            self.refresh_people().await;
        }
    }

    async fn shutdown(mut self) {
        self.clear_removed_states(Instant::now() + people::CLEAR_STATES_AFTER)
            .await;
        if self.connected {
            self.publish(&self.topics.availability(), b"offline".to_vec(), true)
                .await;
        }
        self.conn.close().await;
    }
}
