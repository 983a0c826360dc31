//! The scenario and the run: the real service ([`Service::start`], as `facegate run` starts it) with the
//! demo's film as its camera, the simulated board as its gate and the broker; the demo only watches what the
//! service does (its event stream, the MQTT messages Home Assistant would receive, the board's own reports,
//! the audit rows it wrote) and narrates it, then checks every expected outcome happened.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;

use super::film::{Film, Reel, Timeline};
use super::live;
use super::media::{Media, Shot, Who};
use super::narrate::Narrator;
use super::setup::{self, Boards, GATE, RESIDENT_FLOOR};
use super::summary::{describe_action, StepResult, Summary, Timings};
use super::{DemoError, DemoOptions};
use crate::audit::Audit;
use crate::capture::{CaptureError, FrameSource};
use crate::decide::{Decision, Verdict};
use crate::outputs::{CameraState, DecisionId, ServiceEvent};
use crate::pipeline::{FrameReport, PipelineEvent};
use crate::service::camera::SourceFactory;
use crate::service::{Service, ServiceOptions};

/// Frames a person stays in view: long enough for the pipeline's unknown decision (taken only after
/// [`crate::pipeline::UNKNOWN_AFTER`] of consistently unknown votes).
const PERSON_FRAMES: u32 = 24;
/// Empty frames after each scene, so the face leaves and its track ends.
const GAP_FRAMES: u32 = 10;

/// One scene: what the camera sees for how long, and the verdict that must come out of it.
struct Scene {
    title: String,
    shot: Shot,
    frames: u32,
    expect: Option<&'static str>,
}

fn scenes() -> Vec<Scene> {
    let scene = |title: String, shot, frames, expect| Scene {
        title,
        shot,
        frames,
        expect,
    };
    vec![
        scene("empty hallway".into(), Shot::Empty, 8, None),
        scene(
            format!("visitor: {} (not enrolled)", Who::Hopper.name()),
            Shot::Live(Who::Hopper),
            PERSON_FRAMES,
            Some("unknown"),
        ),
        scene(
            format!("phone showing {}", Who::Collins.name()),
            Shot::Phone(Who::Collins),
            PERSON_FRAMES,
            Some("spoof"),
        ),
        scene(
            format!("{} in person", Who::Collins.name()),
            Shot::Live(Who::Collins),
            PERSON_FRAMES,
            Some("granted"),
        ),
    ]
}

/// A folder of the demo's own (the database), removed at the end.
struct WorkDir(std::path::PathBuf);

impl WorkDir {
    fn new() -> Result<WorkDir, DemoError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("facegate-demo-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| DemoError::Io("the demo's work folder", e))?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the whole demo; the summary says what was expected and what happened.
pub async fn run(opts: DemoOptions) -> Result<Summary, DemoError> {
    let n = Narrator::new();
    let t0 = Instant::now();
    n.print("facegate demo: face recognition access control, the whole system on this machine");
    n.print("  camera: synthesised frames from two public-domain portraits (demo/NOTICE); lock and lift: a simulated ESPHome board");

    n.say("loading the face models (YuNet, FaceMesh, dlib ResNet, MiniFASNet)");
    let analyzer = Arc::new(tokio::task::block_in_place(|| setup::analyzer(&opts))?);
    let models_s = t0.elapsed().as_secs_f64();
    n.say(format!("models loaded in {models_s:.1} s"));

    let mqtt = setup::mqtt(&opts).await?;
    n.say(format!(
        "MQTT broker: {} ({})",
        mqtt.url,
        if mqtt.embedded {
            "embedded rumqttd"
        } else {
            "given"
        }
    ));
    let boards = setup::boards().await?;
    n.say(format!(
        "simulated ESPHome board (native API, plaintext) with the door lock and the lift on 127.0.0.1:{}",
        boards.board.port()
    ));

    let media = Media::load()?;
    let work = WorkDir::new()?;
    let db = work.0.join("facegate.db");
    let t_enroll = Instant::now();
    let enrolled = tokio::task::block_in_place(|| {
        setup::enroll(&analyzer, &media, Who::Collins, "resident", &db)
    })?;
    let enroll_s = t_enroll.elapsed().as_secs_f64();
    n.say(format!(
        "enrolled {} as a resident (door + lift to floor {RESIDENT_FLOOR}) from {} of {} variants of the bundled photo",
        Who::Collins.name(),
        enrolled.accepted,
        enrolled.offered
    ));

    // The service, as `facegate run` starts it, with the film as its camera.
    let scenes = scenes();
    let reels: Vec<Reel> = scenes
        .iter()
        .map(|s| Reel {
            shot: s.shot,
            frames: s.frames,
            gap: if s.shot == Shot::Empty { 0 } else { GAP_FRAMES },
        })
        .collect();
    let (go, wait_go) = std::sync::mpsc::channel();
    let film = Film::new(&media, &reels, opts.fast, opts.dump_frames.clone(), wait_go);
    let (starts, timeline) = (film.starts(), film.timeline());
    let mut film = Some(film);
    let source: SourceFactory = Box::new(move || {
        film.take()
            .map(|f| Box::new(f) as Box<dyn FrameSource>)
            .ok_or_else(|| CaptureError::Other {
                source_name: "demo film".into(),
                reason: "the film has been played".into(),
            })
    });
    let config = setup::service_config(&db, &mqtt, boards.board.port(), opts.http_port);
    let service = Service::start(
        config.clone(),
        ServiceOptions {
            analyzer: Some(analyzer.clone()),
            sources: HashMap::from([(GATE.to_string(), source)]),
            http_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            ingress_peers: Some(live::localhost()),
            ..ServiceOptions::default()
        },
    )
    .await
    .map_err(|e| DemoError::Service(format!("{e:#}")))?;
    let mut events = service.subscribe();
    let live_url = format!("http://{}/", service.http_addr());
    n.say(format!(
        "facegate service started (the same as `facegate run`): camera \"{GATE}\", gate with lock and lift, \
         passive liveness (mean anti-spoof >= {:.2}; stills cannot blink, so no blink is required), match \
         distance <= {:.2}",
        config.vision.antispoof_threshold, config.vision.match_threshold
    ));
    n.say(format!(
        "live view: {live_url} (camera with overlay and events; {live_url}api/stream.mjpg is the MJPEG stream)"
    ));
    if mqtt
        .watcher
        .wait_for("/availability", "online", Duration::from_secs(10))
        .await
    {
        n.say("Home Assistant discovery announced by the service: device \"Front door\" is online");
    } else {
        n.say("the service did not come online on MQTT within 10 s");
    }
    let _ = go.send(());

    let t_scenes = Instant::now();
    let mut play = Play::new(n, &scenes, starts, &mqtt.watcher);
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ServiceEvent::Camera { state: CameraState::Ended, .. }) => break,
                Ok(ev) => play.on_event(ev),
                Err(RecvError::Lagged(k)) => play.n.say(format!("(narration fell behind: {k} events not shown)")),
                Err(RecvError::Closed) => break,
            },
            _ = tokio::time::sleep(Duration::from_millis(100)) => play.mqtt_heard(),
        }
    }
    play.n.finish();
    play.n.say(format!(
        "the film is over; waiting for the lift to reach floor {RESIDENT_FLOOR} and the door to relock"
    ));
    play.settle(&boards, &mut events).await;
    let scenes_s = t_scenes.elapsed().as_secs_f64();

    // The live view must show the camera: fetch its snapshot as a browser would.
    let snapshot_bytes = match live::fetch(service.http_addr(), "/api/snapshot.jpg").await {
        Ok((200, ctype, len)) if ctype == "image/jpeg" && len > 0 => Some(len),
        Ok((status, ctype, _)) => {
            play.n
                .say(format!("live view snapshot: HTTP {status} {ctype}"));
            None
        }
        Err(e) => {
            play.n.say(format!("live view snapshot: {e}"));
            None
        }
    };
    if opts.hold {
        play.n.print(&format!(
            "holding: live view {live_url}, MQTT {}, board keeps running (Ctrl-C to stop)",
            mqtt.url
        ));
        let _ = tokio::signal::ctrl_c().await;
    }
    // The service stops as `facegate run` does on SIGTERM: last outcomes, audit rows, `offline`.
    service.shutdown().await;
    mqtt.watcher
        .wait_for("/availability", "offline", Duration::from_secs(3))
        .await;
    play.mqtt_heard();
    let mqtt_events = play.heard.clone();
    let audit_rows = Audit::open(&db, 1)
        .and_then(|a| a.recent(1000))
        .map(|r| r.len())
        .unwrap_or(0);
    let Play {
        n,
        steps,
        frames,
        latency_sum,
        ..
    } = play;
    let mut steps = steps;
    for (i, s) in steps.iter_mut().enumerate() {
        s.board_commands = commands_between(&boards, &timeline, i);
    }
    let mut summary = Summary {
        steps,
        lock_states: boards
            .lock_states
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default(),
        lift_floors: boards
            .lift_floors
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default(),
        expected_floor: RESIDENT_FLOOR,
        mqtt_events,
        audit_rows,
        live_view: live_url,
        snapshot_bytes,
        broker: mqtt.url.clone(),
        timings: Timings {
            models_s,
            enroll_s,
            scenes_s,
            total_s: t0.elapsed().as_secs_f64(),
            frames,
            mean_frame_ms: latency_sum * 1000.0 / frames.max(1) as f64,
        },
        failures: Vec::new(),
    };
    summary.check();
    n.print("");
    n.print("summary");
    for line in summary.table() {
        n.print(&line);
    }
    if summary.ok() {
        n.print("demo OK: every expected outcome happened");
    } else {
        for f in &summary.failures {
            n.print(&format!("FAILED: {f}"));
        }
    }
    if let Some(path) = &opts.summary_json {
        let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
        std::fs::write(path, text).map_err(|e| DemoError::Io("the summary file", e))?;
    }
    mqtt.watcher.stop().await;
    Ok(summary)
}

/// Commands the board received while scene `i` played (the last scene: until now).
fn commands_between(boards: &Boards, timeline: &Timeline, i: usize) -> Vec<String> {
    let Some(from) = timeline.started(i) else {
        return Vec::new();
    };
    let to = timeline.started(i + 1);
    let mut v: Vec<_> = boards
        .board
        .board
        .received()
        .into_iter()
        .filter(|r| r.at >= from && to.is_none_or(|t| r.at < t))
        .collect();
    v.sort_by_key(|r| r.at);
    v.into_iter().map(|r| r.what).collect()
}

/// What the demo saw of the service: the scenes' results as its events come in.
struct Play<'a> {
    n: Narrator,
    titles: Vec<String>,
    steps: Vec<StepResult>,
    /// First frame of each scene, and the end.
    starts: Vec<u64>,
    scene: Option<usize>,
    /// Which scene each decision belongs to.
    decisions: HashMap<DecisionId, usize>,
    watcher: &'a super::broker::Watcher,
    /// Access event types heard on MQTT so far, in order.
    heard: Vec<String>,
    frames: u64,
    latency_sum: f64,
}

impl<'a> Play<'a> {
    fn new(
        n: Narrator,
        scenes: &[Scene],
        starts: Vec<u64>,
        watcher: &'a super::broker::Watcher,
    ) -> Play<'a> {
        Play {
            n,
            titles: scenes.iter().map(|s| s.title.clone()).collect(),
            steps: scenes
                .iter()
                .map(|s| StepResult {
                    step: s.title.clone(),
                    expected: s.expect.map(String::from),
                    verdicts: Vec::new(),
                    people: Vec::new(),
                    liveness: Vec::new(),
                    board_commands: Vec::new(),
                    actions: Vec::new(),
                    frames: s.frames,
                })
                .collect(),
            starts,
            scene: None,
            decisions: HashMap::new(),
            watcher,
            heard: Vec::new(),
            frames: 0,
            latency_sum: 0.0,
        }
    }

    fn scene_of(&self, frame: u64) -> usize {
        Film::scene_of(&self.starts, frame).unwrap_or(self.steps.len() - 1)
    }

    fn on_event(&mut self, ev: ServiceEvent) {
        match ev {
            ServiceEvent::Frame { report, .. } => self.frame(&report),
            ServiceEvent::Decision {
                id,
                frame,
                decision,
                ..
            } => self.decided(id, frame, &decision),
            ServiceEvent::Outcome { id, outcomes, .. } => {
                for o in &outcomes {
                    self.n.say(format!("  ESPHome: {}", describe_action(o)));
                }
                if let Some(&i) = self.decisions.get(&id) {
                    self.steps[i].actions.extend(outcomes);
                }
            }
            ServiceEvent::Camera { .. } => {}
        }
    }

    fn frame(&mut self, report: &FrameReport) {
        // (The pipeline's last report when the film ends carries no frame of its own.)
        let ended = report.frame == 0 && self.frames > 0;
        if !ended {
            self.frames += 1;
            self.latency_sum += report.latency_s;
            let scene = self.scene_of(report.frame);
            if self.scene != Some(scene) {
                self.scene = Some(scene);
                let frames = self.starts[scene + 1] - self.starts[scene];
                self.n.finish();
                self.n.say(format!(
                    "scene {}/{}: {}",
                    scene + 1,
                    self.steps.len(),
                    self.titles[scene]
                ));
                self.n.begin(&self.titles[scene], frames);
            }
        }
        for ev in &report.events {
            self.narrate(ev);
        }
        let status = match report.faces.first() {
            None => "nobody in view".to_string(),
            Some(f) => match (&f.person, f.live) {
                (_, None) => "face in view: looking...".into(),
                (_, Some(false)) => "face in view: not live".into(),
                (Some(p), Some(true)) => format!("face in view: {p}"),
                (None, Some(true)) => "face in view: unknown".into(),
            },
        };
        self.n.frame(&status);
    }

    /// What the pipeline noticed, in a sentence (decisions have their own lines).
    fn narrate(&self, ev: &PipelineEvent) {
        let line = match ev {
            PipelineEvent::TrackStart { track, bbox, .. } => {
                format!("  face {track} appears ({:.0}x{:.0} px)", bbox[2], bbox[3])
            }
            PipelineEvent::Liveness {
                track,
                live,
                reason,
                ..
            } => format!(
                "  face {track}: {} ({reason})",
                if *live { "live" } else { "NOT live" }
            ),
            PipelineEvent::Recognition {
                track,
                person,
                distance,
                ..
            } => {
                let d = distance.map_or(String::new(), |d| format!(", distance {d:.2}"));
                match person {
                    Some(p) => format!("  face {track}: recognised as {p}{d}"),
                    None => format!("  face {track}: nobody enrolled{d}"),
                }
            }
            PipelineEvent::TrackEnd { track, frames, .. } => {
                format!("  face {track} left after {frames} frames")
            }
            _ => return,
        };
        self.n.say(line);
    }

    /// A decision of the service, narrated and filed under its scene.
    fn decided(&mut self, id: DecisionId, frame: u64, d: &Decision) {
        let who = d.person.as_deref().unwrap_or("unknown face");
        let line = match &d.verdict {
            Verdict::Granted { .. } => format!("GRANTED: {who} (match confidence {:.2}, live {:.2})", d.confidence, d.liveness),
            Verdict::Unknown => format!("UNKNOWN visitor: nobody enrolled matches (live {:.2}); Home Assistant is told, nothing opens", d.liveness),
            Verdict::Spoof => format!("SPOOF rejected: {} is not a live face (anti-spoof {:.2}: a screen, not a person); nothing opens", d.person.as_deref().unwrap_or("the face"), d.liveness),
            Verdict::NotifyOnly => format!("{who} announced (notify-only level)"),
            Verdict::Denied { reason } => format!("DENIED: {who}: {reason}"),
        };
        self.n.say(line);
        let i = self.scene_of(frame);
        self.decisions.insert(id, i);
        let s = &mut self.steps[i];
        s.verdicts.push(d.verdict.kind().as_str().to_string());
        s.people.push(d.person.clone());
        s.liveness.push(d.liveness);
    }

    /// Narrates the access events the watcher heard on MQTT since the last call.
    fn mqtt_heard(&mut self) {
        let all: Vec<String> = self
            .watcher
            .messages("/access/state")
            .iter()
            .filter_map(|m| serde_json::from_str::<serde_json::Value>(&m.payload).ok())
            .filter_map(|v| v["event_type"].as_str().map(String::from))
            .collect();
        for kind in &all[self.heard.len().min(all.len())..] {
            self.n.say(format!(
                "  MQTT: Home Assistant receives the access event \"{kind}\""
            ));
        }
        self.heard = all;
    }

    /// Until the lift has arrived and the door has relocked (at most 15 s), still taking the service's
    /// events (late outcomes).
    async fn settle(
        &mut self,
        boards: &Boards,
        events: &mut tokio::sync::broadcast::Receiver<ServiceEvent>,
    ) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let board = &boards.board.board;
        let mut arrived = false;
        while Instant::now() < deadline {
            if let Ok(Ok(ev)) =
                tokio::time::timeout(Duration::from_millis(100), events.recv()).await
            {
                self.on_event(ev);
            }
            self.mqtt_heard();
            if !arrived && board.floor() == RESIDENT_FLOOR {
                arrived = true;
                self.n.say(format!(
                    "lift arrived at floor {RESIDENT_FLOOR} (reported by the board)"
                ));
            }
            let locked = board.lock_state() == crate::esphome::entities::LockState::Locked;
            if arrived && locked {
                self.n.say("door relocked by the board");
                return;
            }
        }
        self.n.say("gave up waiting after 15 s");
    }
}
