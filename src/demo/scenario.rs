//! The scenario and the run: scenes played through the pipeline at the camera's frame rate, each decision
//! published on MQTT and carried out on the simulated boards, then the checks.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::live;
use super::media::{self, Media, Shot, Who};
use super::narrate::Narrator;
use super::setup::{self, Boards, GATE, RESIDENT_FLOOR};
use super::summary::{describe_action, verdict_kind, StepResult, Summary, Timings};
use super::{DemoError, DemoOptions};
use crate::audit::Audit;
use crate::capture::Frame;
use crate::decide::{Decision, Policy, Verdict};
use crate::esphome::ActionOutcome;
use crate::http::LiveView;
use crate::pipeline::{FrameReport, Pipeline, PipelineEvent};
use crate::settings::{LiveSettings, SettingsHandle};

/// The camera's frame rate (media time): frame `n` is at `n / FPS` seconds.
const FPS: u64 = 10;
/// Frames a person stays in view: long enough for the pipeline's unknown decision (taken only after
/// [`crate::pipeline::UNKNOWN_AFTER`] of consistently unknown votes).
const PERSON_FRAMES: u32 = 24;

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

/// Empty frames after each scene, so the face leaves and its track ends.
const GAP_FRAMES: u32 = 10;

/// Runs the whole demo; the summary says what was expected and what happened.
pub async fn run(opts: DemoOptions) -> Result<Summary, DemoError> {
    let n = Narrator::new();
    let t0 = Instant::now();
    n.print("facegate demo: face recognition access control, the whole system on this machine");
    n.print("  camera: synthesised frames from two public-domain portraits (demo/NOTICE); lock and lift: simulated ESPHome boards");

    n.say("loading the face models (YuNet, FaceMesh, dlib ResNet, MiniFASNet)");
    let analyzer = Arc::new(tokio::task::block_in_place(|| setup::analyzer(&opts))?);
    let models_s = t0.elapsed().as_secs_f64();
    n.say(format!("models loaded in {models_s:.1} s"));

    let (mqtt, embedded) = setup::mqtt(&opts).await?;
    n.say(format!(
        "MQTT broker: {} ({}); Home Assistant discovery announced for device \"{GATE}\"",
        mqtt.url,
        if embedded {
            "embedded rumqttd"
        } else {
            "given"
        }
    ));

    let boards = setup::boards().await?;
    n.say(format!(
        "simulated ESPHome boards (native API, plaintext): door lock on 127.0.0.1:{}, lift on 127.0.0.1:{}; connected",
        boards.lock_board.port(),
        boards.lift_board.port()
    ));

    let media = Media::load()?;
    let t_enroll = Instant::now();
    let config = setup::service_config();
    let gallery =
        tokio::task::block_in_place(|| setup::enroll(&analyzer, &media, Who::Collins, "resident"))?;
    let enroll_s = t_enroll.elapsed().as_secs_f64();
    n.say(format!(
        "enrolled {} as a resident (door + lift to floor {RESIDENT_FLOOR}) from {} of {} variants of the bundled photo",
        Who::Collins.name(),
        gallery.accepted,
        gallery.offered
    ));
    let (view, server) =
        live::start(opts.http_port, analyzer.clone(), gallery.shared.clone()).await?;
    let live_url = format!("http://{}/", server.local_addr());
    n.say(format!(
        "live view: {live_url} (camera with overlay and events; {live_url}api/stream.mjpg is the MJPEG stream)"
    ));
    let policy = Policy::from_config(&config).map_err(|e| DemoError::Config(format!("{e:?}")))?;
    let settings = SettingsHandle::new(LiveSettings::from_config(&config));
    let mut engine = Pipeline::new(
        GATE.into(),
        analyzer.clone(),
        gallery.shared,
        policy,
        settings,
        config.liveness.clone(),
    );
    let audit = Audit::open_in_memory(1).map_err(|e| DemoError::Config(e.to_string()))?;
    n.say(format!(
        "camera pipeline ready: passive liveness (mean anti-spoof >= {:.2}; stills cannot blink, so no blink is \
         required), match distance <= {:.2}",
        config.vision.antispoof_threshold, config.vision.match_threshold
    ));

    let mut player = Player {
        n,
        opts: &opts,
        media: &media,
        boards: &boards,
        mqtt: &mqtt,
        view: &view,
        audit,
        seq: 0,
        busy: Duration::ZERO,
    };
    let t_scenes = Instant::now();
    let mut steps = Vec::new();
    for (i, s) in scenes().into_iter().enumerate() {
        player.n.say(format!("scene {}/4: {}", i + 1, s.title));
        steps.push(player.scene(&mut engine, &s).await?);
    }
    player.n.say(format!(
        "waiting for the lift to reach floor {RESIDENT_FLOOR} and the door to relock"
    ));
    player.settle(&mut engine).await?;
    let scenes_s = t_scenes.elapsed().as_secs_f64();
    let frames = player.seq;
    let busy = player.busy;
    let audit_rows = player.audit.recent(1000).map(|r| r.len()).unwrap_or(0);
    let n = player.n;

    // The live view must show the camera: fetch its snapshot as a browser would.
    let snapshot_bytes = match live::fetch(server.local_addr(), "/api/snapshot.jpg").await {
        Ok((200, ctype, len)) if ctype == "image/jpeg" && len > 0 => Some(len),
        Ok((status, ctype, _)) => {
            n.say(format!("live view snapshot: HTTP {status} {ctype}"));
            None
        }
        Err(e) => {
            n.say(format!("live view snapshot: {e}"));
            None
        }
    };
    // Give the last MQTT messages a moment to come round to the watcher.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mqtt_events = mqtt
        .watcher
        .messages("/access/state")
        .iter()
        .filter_map(|m| serde_json::from_str::<serde_json::Value>(&m.payload).ok())
        .filter_map(|v| v["event_type"].as_str().map(String::from))
        .collect();
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
            mean_frame_ms: busy.as_secs_f64() * 1000.0 / frames.max(1) as f64,
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
    if opts.hold {
        n.print(&format!(
            "holding: live view {}, MQTT {}, boards keep running (Ctrl-C to stop)",
            summary.live_view, summary.broker
        ));
        let _ = tokio::signal::ctrl_c().await;
    }
    server.shutdown().await;
    mqtt.events.stop().await;
    mqtt.watcher.stop().await;
    Ok(summary)
}

/// Plays frames through the engine and carries out what it decides.
struct Player<'a> {
    n: Narrator,
    opts: &'a DemoOptions,
    media: &'a Media,
    boards: &'a Boards,
    mqtt: &'a setup::Mqtt,
    view: &'a LiveView,
    /// The audit log (in memory for the demo): one row per decision, with what was done.
    audit: Audit,
    seq: u64,
    /// Time spent processing frames.
    busy: Duration,
}

impl Player<'_> {
    async fn scene(&mut self, engine: &mut Pipeline, s: &Scene) -> Result<StepResult, DemoError> {
        let started = Instant::now();
        let mut out = StepResult {
            step: s.title.clone(),
            expected: s.expect.map(String::from),
            verdicts: Vec::new(),
            people: Vec::new(),
            liveness: Vec::new(),
            board_commands: Vec::new(),
            actions: Vec::new(),
            frames: s.frames,
        };
        let canvas = self.media.canvas(s.shot);
        let empty = self.media.canvas(Shot::Empty);
        let gap = if s.shot == Shot::Empty { 0 } else { GAP_FRAMES };
        self.n.begin(&s.title, (s.frames + gap) as u64);
        for i in 0..s.frames + gap {
            let c = if i < s.frames { &canvas } else { &empty };
            let report = self.frame(engine, c).await?;
            for ev in &report.events {
                self.narrate(ev);
                if let PipelineEvent::Decision { decision, .. } = ev {
                    let actions = self.decided(decision).await;
                    out.verdicts
                        .push(verdict_kind(&decision.verdict).to_string());
                    out.people.push(decision.person.clone());
                    out.liveness.push(decision.liveness);
                    out.actions.extend(actions);
                }
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
        self.n.finish();
        out.board_commands = self.commands_since(started);
        Ok(out)
    }

    /// Empty frames until the lift has arrived and the door has relocked (at most 15 s).
    async fn settle(&mut self, engine: &mut Pipeline) -> Result<(), DemoError> {
        let empty = self.media.canvas(Shot::Empty);
        let deadline = Instant::now() + Duration::from_secs(15);
        let boards = self.boards;
        let (lock, lift) = (&boards.lock_board.board, &boards.lift_board.board);
        let mut arrived = false;
        while Instant::now() < deadline {
            self.frame(engine, &empty).await?;
            if !arrived && lift.floor() == RESIDENT_FLOOR {
                arrived = true;
                self.n.say(format!(
                    "lift arrived at floor {RESIDENT_FLOOR} (reported by the lift board)"
                ));
            }
            let locked = lock.lock_state() == crate::esphome::entities::LockState::Locked;
            if arrived && locked {
                self.n.say("door relocked by the lock board");
                return Ok(());
            }
        }
        self.n.say("gave up waiting after 15 s");
        Ok(())
    }

    /// One frame through the engine, paced at the camera's rate unless `--fast`.
    async fn frame(
        &mut self,
        engine: &mut Pipeline,
        canvas: &image::RgbImage,
    ) -> Result<FrameReport, DemoError> {
        let start = Instant::now();
        let image = media::frame(canvas, self.seq);
        if let Some(dir) = &self.opts.dump_frames {
            let path = dir.join(format!("frame-{:04}.png", self.seq));
            image
                .save(&path)
                .map_err(|e| DemoError::Media(format!("{}: {e}", path.display())))?;
        }
        let frame = Frame {
            seq: self.seq,
            captured: start,
            pts: Duration::from_millis(self.seq * 1000 / FPS),
            wall: SystemTime::now(),
            image,
        };
        self.seq += 1;
        let report = tokio::task::block_in_place(|| engine.process(&frame))
            .map_err(|e| DemoError::Vision(e.to_string()))?;
        self.busy += start.elapsed();
        self.view.publish_frame(GATE, &frame, &report);
        if !self.opts.fast {
            let period = Duration::from_millis(1000 / FPS);
            if let Some(rest) = period.checked_sub(start.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
        Ok(report)
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

    /// Narrates a decision, publishes it, carries out its actions, and audits it.
    async fn decided(&mut self, d: &Decision) -> Vec<ActionOutcome> {
        let who = d.person.as_deref().unwrap_or("unknown face");
        let line = match &d.verdict {
            Verdict::Granted { .. } => format!("GRANTED: {who} (match confidence {:.2}, live {:.2})", d.confidence, d.liveness),
            Verdict::Unknown => format!("UNKNOWN visitor: nobody enrolled matches (live {:.2}); Home Assistant is told, nothing opens", d.liveness),
            Verdict::Spoof => format!("SPOOF rejected: {} is not a live face (anti-spoof {:.2}: a screen, not a person); nothing opens", d.person.as_deref().unwrap_or("the face"), d.liveness),
            Verdict::NotifyOnly => format!("{who} announced (notify-only level)"),
            Verdict::Denied { reason } => format!("DENIED: {who}: {reason}"),
        };
        self.n.say(line);
        let payload = event_payload(d);
        match self.mqtt.events.publish(&payload).await {
            Ok(()) => self.n.say(format!(
                "  MQTT: access event \"{}\" published",
                verdict_kind(&d.verdict)
            )),
            Err(e) => self
                .n
                .say(format!("  MQTT: publishing the event failed: {e}")),
        }
        let outcomes = self.boards.actuator.act(d).await;
        for o in &outcomes {
            self.n.say(format!("  ESPHome: {}", describe_action(o)));
        }
        let done = if outcomes.is_empty() {
            "no action".to_string()
        } else {
            outcomes
                .iter()
                .map(describe_action)
                .collect::<Vec<_>>()
                .join("; ")
        };
        match self
            .audit
            .record(d)
            .and_then(|id| self.audit.set_outcome(id, &done))
        {
            Ok(()) => {}
            Err(e) => self
                .n
                .say(format!("  audit log: writing the row failed: {e}")),
        }
        outcomes
    }

    /// Commands the simulated boards received since `t`.
    fn commands_since(&self, t: Instant) -> Vec<String> {
        let mut v: Vec<_> = [&self.boards.lock_board, &self.boards.lift_board]
            .iter()
            .flat_map(|b| b.board.received())
            .filter(|r| r.at >= t)
            .collect();
        v.sort_by_key(|r| r.at);
        v.into_iter().map(|r| r.what).collect()
    }
}

/// The access event as Home Assistant's `event` entity reads it.
fn event_payload(d: &Decision) -> serde_json::Value {
    let action = match &d.verdict {
        Verdict::Granted { actions } => serde_json::to_value(actions).unwrap_or_default(),
        _ => serde_json::Value::Null,
    };
    serde_json::json!({
        "event_type": verdict_kind(&d.verdict),
        "person": d.person,
        "confidence": d.confidence,
        "liveness": d.liveness,
        "gate": d.gate,
        "action": action,
    })
}
