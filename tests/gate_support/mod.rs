//! The boards `tests/ha_gate.rs` binds facegate's gate to, each with an independent record of what it
//! executed: the simulated board (its own device model's log of received commands) or the real host firmware
//! (a second native-API client observing its states: the lock going `unlocked`, the target-floor select
//! taking a floor).
#![allow(dead_code)]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::common::service::unix_now;
use crate::esphome_support::{self, fast_sim, Firmware};
use facegate::esphome::entities::{key_for, EntityState, LockState};
use facegate::esphome::sim::SimBoard;
use facegate::esphome::{Client, LinkStatus};

/// lock-host.yaml's and lift-host.yaml's API ports.
pub const LOCK_PORT: u16 = 16053;
pub const LIFT_PORT: u16 = 16054;

/// The tokio runtime the simulated boards and the firmware observers run on.
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// What a firmware observer saw the board do: (unix seconds, "unlock" | "call N").
type Seen = Arc<Mutex<Vec<(f64, String)>>>;

pub enum Board {
    Sim(SimBoard),
    Firmware {
        fw: Firmware,
        port: u16,
        observer: Client,
        seen: Seen,
    },
}

impl Board {
    /// A simulated lock + lift board, plaintext or Noise (the tests' key).
    pub fn sim(noise: bool) -> Board {
        let key = noise.then(esphome_support::key);
        Board::Sim(rt().block_on(SimBoard::start(fast_sim(key), 0)).unwrap())
    }

    /// The real host firmware `lock-host` or `lift-host`, with its observer connected.
    pub fn firmware(name: &str) -> Board {
        let port = if name == "lift-host" {
            LIFT_PORT
        } else {
            LOCK_PORT
        };
        wait_port_free(port);
        let fw = Firmware::start(name, port);
        let observer = rt().block_on(fw.client(esphome_support::board(port, None)));
        let seen = Seen::default();
        let (mut rx, s) = (observer.subscribe(), seen.clone());
        let (lock, target) = (key_for("door_lock"), key_for("target_floor"));
        rt().spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => {
                        let what = match ev.state {
                            EntityState::Lock(LockState::Unlocked) if ev.key == lock => {
                                "unlock".to_string()
                            }
                            EntityState::Lock(LockState::Locked) if ev.key == lock => {
                                "relock".to_string()
                            }
                            EntityState::Text(f) if ev.key == target => format!("call {f}"),
                            _ => continue,
                        };
                        s.lock().unwrap().push((unix_now(), what));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    Err(_) => {}
                }
            }
        });
        Board::Firmware {
            fw,
            port,
            observer,
            seen,
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            Board::Sim(s) => s.port(),
            Board::Firmware { port, .. } => *port,
        }
    }

    /// The board drops off the network (simulator) or its process dies (firmware).
    pub fn stop(&mut self) {
        match self {
            Board::Sim(s) => s.stop(),
            Board::Firmware { fw, .. } => fw.kill(),
        }
    }

    /// Back on the same port (the firmware in its boot state); returns once the observer is connected again.
    pub fn restart(&mut self) {
        match self {
            Board::Sim(s) => rt().block_on(s.restart()).unwrap(),
            Board::Firmware { fw, observer, .. } => {
                fw.restart();
                let mut w = observer.status_watch();
                let reconnected = async {
                    loop {
                        if let LinkStatus::Connected { generation } = *w.borrow_and_update() {
                            if generation >= 2 {
                                return;
                            }
                        }
                        w.changed().await.unwrap();
                    }
                };
                let back = rt().block_on(async {
                    tokio::time::timeout(Duration::from_secs(20), reconnected).await
                });
                assert!(
                    back.is_ok(),
                    "the observer never reconnected to the firmware"
                );
            }
        }
    }

    /// What the board executed in `[from, to]` (unix seconds): "unlock", "call N".
    pub fn executed(&self, from: f64, to: f64) -> Vec<(f64, String)> {
        let all: Vec<(f64, String)> = match self {
            Board::Sim(s) => {
                // Received commands, on the unix clock.
                let (now_i, now_u) = (Instant::now(), unix_now());
                s.board
                    .received()
                    .into_iter()
                    .map(|r| (now_u - (now_i - r.at).as_secs_f64(), r.what))
                    .collect()
            }
            Board::Firmware { seen, .. } => seen.lock().unwrap().clone(),
        };
        all.into_iter()
            .filter(|(t, w)| *t >= from && *t <= to && (w == "unlock" || w == "call 1"))
            .collect()
    }

    /// Whether `what` ("unlock", "call 1") was already in effect on the board at `t` (unix seconds): the lock
    /// still open from an earlier grant, the target floor already set. A firmware board shows no state change
    /// for a command that changes nothing, so its observer cannot see it executed again. The simulator logs
    /// commands, not states: always false there.
    pub fn in_effect_at(&self, what: &str, t: f64) -> bool {
        let Board::Firmware { seen, .. } = self else {
            return false;
        };
        let seen = seen.lock().unwrap();
        let mut before = seen.iter().filter(|(at, _)| *at < t);
        let last = if what == "unlock" {
            before.rfind(|(_, w)| w == "unlock" || w == "relock")
        } else {
            before.rfind(|(_, w)| w.starts_with("call "))
        };
        last.is_some_and(|(_, w)| w == what)
    }

    /// The lock is locked / the cabin is not moving, as the board itself reports.
    pub fn at_rest(&self) -> bool {
        match self {
            Board::Sim(s) => {
                s.board.lock_state() == LockState::Locked
                    && s.board
                        .snapshot()
                        .contains(&(key_for("lift_moving"), EntityState::Binary(false)))
            }
            Board::Firmware { observer, port, .. } if *port == LOCK_PORT => {
                observer.state(key_for("door_lock")) == Some(EntityState::Lock(LockState::Locked))
            }
            Board::Firmware { observer, .. } => {
                observer.state(key_for("lift_moving")) == Some(EntityState::Binary(false))
            }
        }
    }

    /// The cabin's floor, as the board reports it.
    pub fn floor(&self) -> Option<i32> {
        match self {
            Board::Sim(s) => Some(s.board.floor()),
            Board::Firmware { observer, .. } => match observer.state(key_for("current_floor")) {
                Some(EntityState::Number(f)) => Some(f.round() as i32),
                _ => None,
            },
        }
    }
}

/// Waits (up to 3 min) until nothing listens on the firmware's fixed `port`: another test binary run on the
/// same machine (tests/esphome_firmware.rs) may be using it, and our observer must not talk to its board.
fn wait_port_free(port: u16) {
    let end = Instant::now() + Duration::from_secs(180);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < end,
            "port {port} stays busy: another firmware test is running"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Prints the tail of facegate's log when the test fails (its temp dir goes with it).
pub struct LogOnPanic(pub std::path::PathBuf);

impl Drop for LogOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.0).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "--- facegate log (last 60 lines) ---\n{}",
                lines[lines.len().saturating_sub(60)..].join("\n")
            );
        }
    }
}
