//! Home Assistant's own client library, aioesphomeapi (from scripts/setup-esphome.sh's venv), adopts the
//! simulated board: connects (plaintext and Noise), lists the entities with the object ids and keys the
//! firmware has, subscribes to states and drives the lock and the lift.

mod esphome_support;

use std::process::Command;

use esphome_support::*;
use facegate::esphome::entities::{key_for, LockState};

async fn drive_with_aioesphomeapi(key: Option<&str>) {
    let s = sim(key.map(|_| esphome_support::key())).await;
    let py = venv().join("bin/python");
    let script = repo().join("tests/esphome_aioesphomeapi.py");
    let mut args = vec![
        script.display().to_string(),
        "127.0.0.1".into(),
        s.port().to_string(),
    ];
    args.extend(key.map(String::from));
    let out = tokio::task::spawn_blocking(move || {
        Command::new(py)
            .args(args)
            .output()
            .expect("running python")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "aioesphomeapi failed:\n{}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON from the script");
    assert_eq!(v["name"], "facegate-sim");
    assert_eq!(v["api"], serde_json::json!([1, 14]));
    let ents = v["entities"].as_array().unwrap();
    assert_eq!(ents.len(), 11, "{ents:?}");
    for e in ents {
        let (kind, oid, key) = (
            e[0].as_str().unwrap(),
            e[1].as_str().unwrap(),
            e[2].as_u64().unwrap(),
        );
        assert_eq!(key as u32, key_for(oid), "{kind} {oid}");
    }
    assert!(ents
        .iter()
        .any(|e| e[0] == "LockInfo" && e[1] == "door_lock"));
    assert!(ents
        .iter()
        .any(|e| e[0] == "SelectInfo" && e[1] == "target_floor"));
    assert_eq!(v["floor"], 1.0);
    assert_eq!(v["target"], "1");
    // The board really did it.
    let got: Vec<_> = s.board.received().into_iter().map(|r| r.what).collect();
    assert_eq!(got, ["unlock", "call 1"]);
    assert_eq!(s.board.floor(), 1);
    assert!(matches!(
        s.board.lock_state(),
        LockState::Unlocked | LockState::Locked
    ));
}

#[tokio::test]
async fn aioesphomeapi_adopts_the_plaintext_simulated_board() {
    drive_with_aioesphomeapi(None).await;
}

#[tokio::test]
async fn aioesphomeapi_adopts_the_noise_simulated_board() {
    drive_with_aioesphomeapi(Some(KEY)).await;
}
