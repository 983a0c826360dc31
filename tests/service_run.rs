//! `facegate run` as a whole (the real binary, real models, a replay camera of a real clip from
//! ../shared/faces, the simulated lock board, a real mosquitto; no Home Assistant needed):
//! - issue 11 item 11, "a locked database drops a grant": another process holds an exclusive write lock on the
//!   database while an enrolled person is granted; the board must still unlock in time (the audit log is an
//!   output that listens, not a step before actuation), and the audit row with the confirmed outcome must
//!   arrive once the lock is released.
//! - one shutdown: SIGTERM ends the process well within the add-on's 20 s `timeout`, with `offline` retained
//!   on the availability topic and the board connection closed.

mod common;
mod esphome_support;
mod gate_support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ha::{stop_child, Broker};
use common::service::{self, start_facegate, unix_now, wait_log};
use gate_support::Board;
use serde_json::{json, Value};

/// Dana (d0, frames 60/70/78: never replayed) enrolled at level `resident` into the gallery `db`.
fn gallery(db: &Path, work: &Path) {
    std::fs::create_dir(work).unwrap();
    service::clip_frames(work, "blink/liveportrait_driving_d0.mp4", "e", 60, 19, None);
    let picks: Vec<_> = [0, 10, 18]
        .iter()
        .map(|i| work.join(format!("e{i:04}.jpg")))
        .collect();
    service::enroll(db, "Dana", "resident", &picks);
}

/// Every access event published under `base`, with the time it arrived (unix seconds).
fn watch_access(broker: &Broker, base: &str) -> Arc<Mutex<Vec<(f64, Value)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (client, mut conn) = broker.client(&format!("watch-{base}"));
    client
        .subscribe(format!("{base}/+/access/state"), rumqttc::QoS::AtLeastOnce)
        .unwrap();
    let keep = seen.clone();
    std::thread::spawn(move || {
        let _client = client;
        for ev in conn.iter() {
            match ev {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    if let Ok(v) = serde_json::from_slice::<Value>(&p.payload) {
                        keep.lock().unwrap().push((unix_now(), v));
                    }
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    });
    seen
}

/// A gate with the simulated lock board, a replay of `frames`, base topic `base`.
fn setup(dir: &Path, broker: &Broker, board: &Board, base: &str) -> std::path::PathBuf {
    let db = dir.join("facegate.db");
    gallery(&db, &dir.join("enroll"));
    let gate = json!({"name": "Gate", "board": {"host": "127.0.0.1", "port": board.port()},
                      "lock": "door_lock"});
    service::options(
        dir,
        broker,
        "Gate cam",
        base,
        gate,
        json!([{"name": "resident", "actuate": true}]),
    )
}

#[test]
fn a_locked_database_delays_the_audit_row_never_the_unlock() {
    let broker = Broker::start();
    let board = Board::sim(false);
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    // An empty scene first (the lock is taken during it), then the enrolled person, then empty again.
    service::grey_frames(&frames, "a", 40, 512, 512);
    service::clip_frames(
        &frames,
        "blink/liveportrait_driving_d0.mp4",
        "b",
        1,
        30,
        None,
    );
    service::grey_frames(&frames, "c", 30, 512, 512);
    let options = setup(dir.path(), &broker, &board, "fglocked");
    let db = dir.path().join("facegate.db");
    let log = dir.path().join("facegate.log");
    let _show = gate_support::LogOnPanic(log.clone());
    let access = watch_access(&broker, "fglocked");
    let mut fg = start_facegate(&options, &log);
    wait_log(&log, "ESPHome board connected", 1, Duration::from_secs(60));
    wait_log(&log, "facegate running", 1, Duration::from_secs(60));

    // Another process takes the database's write lock and keeps it.
    let locker = rusqlite::Connection::open(&db).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let locked_at = unix_now();
    eprintln!("database locked");

    let end = Instant::now() + Duration::from_secs(90);
    let grant = loop {
        let g = access
            .lock()
            .unwrap()
            .iter()
            .find(|(_, v)| v["event_type"] == "granted" && v["at"].as_f64() > Some(locked_at))
            .cloned();
        if let Some(g) = g {
            break g.1;
        }
        assert!(
            Instant::now() < end,
            "no grant while the database was locked"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let decided = grant["at"].as_f64().unwrap();
    assert_eq!(grant["person"], "Dana");
    // Keep the lock well past the audit connection's 5 s busy timeout.
    let held_until = decided + 8.0;
    while unix_now() < held_until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let unlocks = board.executed(decided - 0.5, unix_now());
    eprintln!(
        "board executed while the database was locked: {unlocks:?} (decision at {decided:.3})"
    );
    assert!(
        !unlocks.is_empty(),
        "the grant was not actuated while the database was locked"
    );
    let lag = unlocks[0].0 - decided;
    assert!(lag < 2.0, "the unlock came {lag:.3} s after the decision");
    let track = grant["track"].as_u64().unwrap();

    // Released: the row (with the confirmed outcome) arrives.
    locker.execute_batch("ROLLBACK").unwrap();
    let released = Instant::now();
    let row = loop {
        let rows = service::audit_rows(&db);
        if let Some(r) = rows
            .iter()
            .find(|r| r["track"] == track && !r["outcome"].is_null())
        {
            break r.clone();
        }
        assert!(
            released.elapsed() < Duration::from_secs(15),
            "no audit row after the lock was released: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "audit row {} s after the release: {row}",
        released.elapsed().as_secs_f64()
    );
    assert_eq!(row["verdict"], "granted");
    assert_eq!(row["person"], "Dana");
    let outcomes: Vec<Value> = serde_json::from_str(row["outcome"].as_str().unwrap()).unwrap();
    assert_eq!(outcomes.len(), 1, "{row}");
    assert_eq!(outcomes[0]["result"], "confirmed", "{row}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("audit log: cannot write"),
        "the failing audit log was not reported"
    );
    stop_child(&mut fg, Duration::from_secs(20));
}

#[test]
fn sigterm_stops_within_the_addon_timeout_and_leaves_offline() {
    let broker = Broker::start();
    let board = Board::sim(false);
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    service::clip_frames(
        &frames,
        "blink/liveportrait_driving_d0.mp4",
        "b",
        1,
        30,
        None,
    );
    service::grey_frames(&frames, "c", 10, 512, 512);
    let options = setup(dir.path(), &broker, &board, "fgterm");
    let log = dir.path().join("facegate.log");
    let _show = gate_support::LogOnPanic(log.clone());
    let mut fg = start_facegate(&options, &log);
    wait_log(&log, "ESPHome board connected", 1, Duration::from_secs(60));
    // Running, with decisions being made (a grant actuating, usually) when the signal comes.
    let got = common::ha::collect(&broker, &["fgterm/availability"], Duration::from_secs(1));
    assert_eq!(got["fgterm/availability"].0, b"online");
    wait_log(&log, "MQTT connected", 1, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(4));
    let asked = Instant::now();
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe {
        libc::kill(fg.id() as i32, libc::SIGTERM);
    }
    let status = loop {
        if let Some(s) = fg.try_wait().unwrap() {
            break s;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(20),
            "still running 20 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = asked.elapsed();
    eprintln!("SIGTERM -> exit in {:.3} s ({status})", took.as_secs_f64());
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(20));
    let got = common::ha::collect(&broker, &["fgterm/availability"], Duration::from_secs(1));
    assert_eq!(
        got["fgterm/availability"],
        (b"offline".to_vec(), true),
        "offline retained"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("stopped cleanly"), "{text}");
    // The board was told goodbye before the process ended.
    assert!(text.contains("ESPHome board connections closed"), "{text}");
    stop_child(&mut fg, Duration::from_secs(1));
}
