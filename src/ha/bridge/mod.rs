//! The Home Assistant bridge: an output of the service ([`crate::outputs`]). One task that owns the MQTT
//! connection, listens to the service's events (frames, decisions with their face crop, gate outcomes, camera
//! states) and turns them into retained states and events, and HA's commands into live settings,
//! enrollments and access levels.
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
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::discovery::{discovery_messages, Device, EntityKey, Topics};
use super::link::{mqtt_options, Connection, Link};
use super::HaError;
use crate::config::MqttConfig;
use crate::decide::{Decision, Verdict};
use crate::gallery::PersonInfo;
use crate::outputs::ServiceEvent;
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

/// The running bridge task.
pub struct Bridge {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Bridge {
    /// Starts the bridge on the service's `events`; it connects in the background (and keeps retrying,
    /// with a log line per failure). Fails only on options that can never work (no host, unreadable CA
    /// file). It runs until the event stream closes or [`Bridge::shutdown`].
    pub fn start(
        opts: BridgeOptions,
        devices: Vec<DeviceSetup>,
        people: Arc<dyn People>,
        sink: Arc<dyn SettingsSink>,
        events: broadcast::Receiver<ServiceEvent>,
    ) -> Result<Bridge, HaError> {
        let topics = Topics::new(&opts.mqtt);
        let options = mqtt_options(&opts.mqtt, &opts.client_id, &topics.availability())?;
        let conn = Connection::start(&opts.mqtt, options);
        let stop = CancellationToken::new();
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
        let task = tokio::spawn(run(st, events, stop.clone()));
        Ok(Bridge { stop, task })
    }

    /// Handles the events already sent, publishes `offline`, disconnects cleanly and waits for the task.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }

    /// Waits for the bridge to end by itself (the event stream closed).
    pub async fn finished(self) {
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

async fn run(
    mut st: State,
    mut events: broadcast::Receiver<ServiceEvent>,
    stop: CancellationToken,
) {
    st.refresh_people().await;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            link = st.conn.links.recv() => match link {
                Some(l) => st.on_link(l).await,
                None => return,
            },
            ev = events.recv() => match ev {
                Ok(ev) => st.on_event(ev).await,
                Err(RecvError::Lagged(n)) => tracing::warn!(
                    missed = n,
                    "Home Assistant output fell behind: events and face images among them are not sent"
                ),
                Err(RecvError::Closed) => break,
            },
            _ = stop.cancelled() => {
                loop {
                    match events.try_recv() {
                        Ok(ev) => st.on_event(ev).await,
                        Err(TryRecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    }
                }
                break;
            }
            _ = tick.tick() => st.on_tick().await,
        }
    }
    st.shutdown().await;
}

impl State {
    fn state_topic(&self, dev: usize, key: EntityKey) -> String {
        self.topics
            .state(&self.devices[dev].setup.device, key.spec())
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
            let topic = self.state_topic(i, EntityKey::Camera);
            self.cache.insert(topic, b"starting".to_vec());
            let topic = self.state_topic(i, EntityKey::FacePresent);
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
            Link::Message {
                topic,
                payload,
                retain,
            } => self.on_message(&topic, &payload, retain).await,
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
            super::discovery::device_config_filter(&self.topics),
        ]
    }

    async fn on_message(&mut self, topic: &str, payload: &[u8], retain: bool) {
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
        if let Some(ds) = super::discovery::device_slug_in_config_topic(&self.topics, topic) {
            // A device config retained by an earlier run: clear the device if it is no longer configured.
            if !payload.is_empty() && self.ours(payload) && self.device_index(&ds).is_none() {
                self.remove_device(&ds).await;
            }
            return;
        }
        if let Some(ps) = super::discovery::person_slug_in_config_topic(&self.topics, topic) {
            // A person config retained by an earlier run: remove it if the person is gone. Only configs
            // whose topics are under this facegate's base topic (another instance may share the broker).
            if self.ours(payload) && !self.persons.contains_key(&ps) {
                self.remove_person(&ps).await;
            }
            return;
        }
        if retain {
            // A command is an act of someone now; a retained one was published at some earlier time (by
            // mistake, or to replay on every start). Never act on it.
            tracing::warn!(
                topic,
                "ignored a RETAINED command: commands must not be retained (clear it with an empty retained \
                 message on that topic)"
            );
            return;
        }
        self.on_command(topic, payload).await;
    }

    /// Whether a retained discovery config is this facegate's: its state topic is under our base topic
    /// (another instance may share the broker).
    fn ours(&self, config: &[u8]) -> bool {
        serde_json::from_slice::<serde_json::Value>(config)
            .ok()
            .and_then(|v| v["state_topic"].as_str().map(str::to_string))
            .is_some_and(|t| t.starts_with(&format!("{}/", self.topics.base_topic)))
    }

    /// Clears a device taken out of the options from HA: empty retained configs now (HA drops the entities),
    /// its retained states a little later (as for a removed person, see `people.rs`).
    async fn remove_device(&mut self, slug: &str) {
        tracing::info!(
            device = slug,
            "device no longer in the options: clearing its Home Assistant entities"
        );
        let device = Device {
            slug: slug.to_string(),
            name: slug.to_string(),
        };
        let due = Instant::now() + people::CLEAR_STATES_AFTER;
        for m in super::discovery::removal_messages(&self.topics, &device) {
            self.publish(&m.topic, m.payload, true).await;
        }
        for spec in super::discovery::ENTITIES {
            let state = self.topics.state(&device, spec);
            if !self.clear_later.iter().any(|(_, t)| *t == state) {
                self.clear_later.push((due, state));
            }
        }
    }

    async fn on_event(&mut self, ev: ServiceEvent) {
        let camera = match &ev {
            ServiceEvent::Frame { camera, .. }
            | ServiceEvent::Decision { camera, .. }
            | ServiceEvent::Outcome { camera, .. }
            | ServiceEvent::Camera { camera, .. } => camera,
        };
        let Some(i) = self.device_index(&camera.slug) else {
            tracing::warn!(device = %camera.slug, "event for an unknown device");
            return;
        };
        match ev {
            ServiceEvent::Frame { report, .. } => self.on_report(i, &report).await,
            ServiceEvent::Decision {
                decision,
                face_jpeg,
                ..
            } => self.on_decision(i, &decision, face_jpeg).await,
            ServiceEvent::Camera { state, .. } => {
                let topic = self.state_topic(i, EntityKey::Camera);
                self.set_state(topic, state.text().into_bytes()).await;
            }
            ServiceEvent::Outcome {
                decision, outcomes, ..
            } => {
                for outcome in outcomes {
                    let topic = self.state_topic(i, EntityKey::GateAction);
                    let payload = payloads::gate_event(
                        &outcome,
                        decision.person.as_deref(),
                        decision.track_id,
                    )
                    .to_string()
                    .into_bytes();
                    self.event(topic, payload).await;
                }
            }
        }
    }

    async fn on_decision(&mut self, i: usize, decision: &Decision, jpeg: Option<bytes::Bytes>) {
        if let Some(bytes) = jpeg {
            let topic = self.state_topic(i, EntityKey::LastFace);
            self.force_state(topic, bytes.to_vec()).await;
        }
        let topic = self.state_topic(i, EntityKey::LastPerson);
        let state = payloads::last_person(decision).to_string().into_bytes();
        self.set_state(topic, state).await;
        let topic = self.state_topic(i, EntityKey::Access);
        let payload = payloads::access_event(decision).to_string().into_bytes();
        self.event(topic, payload).await;
        self.devices[i].last_was_unknown = matches!(decision.verdict, Verdict::Unknown);
        self.seen(decision).await;
    }

    async fn on_report(&mut self, i: usize, report: &FrameReport) {
        let present = if report.faces.is_empty() { "OFF" } else { "ON" };
        let topic = self.state_topic(i, EntityKey::FacePresent);
        self.set_state(topic, present.as_bytes().to_vec()).await;
        let d = &mut self.devices[i];
        d.frames += 1;
        d.latency_sum += report.latency_s;
        for ev in &report.events {
            if let PipelineEvent::Enrollment {
                name,
                ok,
                samples,
                reason,
            } = ev
            {
                let topic = self.state_topic(i, EntityKey::Enrollment);
                let payload = payloads::enrollment_event(name, *ok, *samples, reason.as_deref());
                self.event(topic, payload.to_string().into_bytes()).await;
                if *ok {
                    self.refresh_people().await;
                }
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
            let topic = self.state_topic(i, EntityKey::Fps);
            self.set_state(topic, format!("{fps:.1}").into_bytes())
                .await;
            if let Some(ms) = latency {
                let topic = self.state_topic(i, EntityKey::Latency);
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
