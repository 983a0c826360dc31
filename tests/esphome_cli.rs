//! The `facegate esphome ...` debug commands (through `esphome::cli::run`, which the binary calls) against
//! the simulated board, plaintext and Noise: list entities, unlock, lock, call the lift; a wrong key fails.

mod esphome_support;

use esphome_support::*;
use facegate::esphome::cli::{run, BoardArgs, EsphomeArgs, EsphomeCommand};
use facegate::esphome::entities::LockState;
use facegate::esphome::sim::SimBoard;

fn args(port: u16, key: Option<&str>) -> BoardArgs {
    BoardArgs {
        host: "127.0.0.1".into(),
        port,
        key: key.map(String::from),
        json: true,
    }
}

#[test]
fn debug_commands_drive_the_simulated_board() {
    // The board runs on its own runtime; `run` makes its own, as the CLI does.
    let rt = tokio::runtime::Runtime::new().unwrap();
    for key in [None, Some(KEY)] {
        let sim: SimBoard = rt.block_on(sim(key.map(|_| esphome_support::key())));
        let b = args(sim.port(), key);
        let go = |command| run(EsphomeArgs { command });
        go(EsphomeCommand::Entities(b.clone())).expect("entities");
        go(EsphomeCommand::Unlock {
            board: b.clone(),
            entity: "door_lock".into(),
        })
        .expect("unlock");
        assert_eq!(sim.board.lock_state(), LockState::Unlocked);
        go(EsphomeCommand::Lock {
            board: b.clone(),
            entity: "door_lock".into(),
        })
        .expect("lock");
        assert_eq!(sim.board.lock_state(), LockState::Locked);
        go(EsphomeCommand::Lift {
            floor: 1,
            board: b.clone(),
            wait: Some(3),
        })
        .expect("lift");
        assert_eq!(sim.board.floor(), 1);
        let got: Vec<_> = sim.board.received().into_iter().map(|r| r.what).collect();
        assert_eq!(got, ["unlock", "lock", "call 1"]);
    }
    let sim = rt.block_on(sim(Some(esphome_support::key())));
    let e = run(EsphomeArgs {
        command: EsphomeCommand::Entities(args(sim.port(), Some(OTHER_KEY))),
    })
    .unwrap_err();
    assert!(format!("{e:#}").contains("wrong encryption key"), "{e:#}");
    let e = run(EsphomeArgs {
        command: EsphomeCommand::Entities(args(sim.port(), Some("short"))),
    })
    .unwrap_err();
    assert!(format!("{e:#}").contains("invalid encryption key"), "{e:#}");
}

#[test]
fn the_facegate_binary_runs_the_esphome_commands() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim(Some(esphome_support::key())));
    let bin = env!("CARGO_BIN_EXE_facegate");
    let port = sim.port().to_string();
    let out = std::process::Command::new(bin)
        .args([
            "esphome", "entities", "--port", &port, "--key", KEY, "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 11);
    assert_eq!(lines[0]["entity"]["object_id"], "door_lock");
    assert_eq!(lines[0]["state"]["value"], "locked");
    let out = std::process::Command::new(bin)
        .args(["esphome", "unlock", "--port", &port, "--key", KEY, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["action"].as_str(), v["result"].as_str()),
        (Some("unlock"), Some("confirmed"))
    );
    let out = std::process::Command::new(bin)
        .args(["esphome", "lift", "1", "--port", &port, "--key", OTHER_KEY])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong encryption key"));
    assert_eq!(sim.board.received().len(), 1);
}
