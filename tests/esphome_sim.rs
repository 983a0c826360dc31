//! The native-API client, drivers and simulated board together: plaintext and Noise, wrong keys and
//! mismatched encryption, reconnects, keepalive, and the "never late" deadline.

mod esphome_support;

use std::time::{Duration, Instant};

use esphome_support::*;
use facegate::esphome::entities::{key_for, LockState};
use facegate::esphome::noise::Key;
use facegate::esphome::{
    Client, EntityKind, EspError, LiftDriver, LinkStatus, LockDriver, OutcomeKind,
};

const OBJECT_IDS: [&str; 11] = [
    "door_lock",
    "door_contact",
    "lock_status",
    "current_floor",
    "lift_moving",
    "target_floor",
    "call_floor_0",
    "call_floor_1",
    "lift_status",
    "floor_0_limit",
    "floor_1_limit",
];

async fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Lists, unlocks (confirmed), sees the relock, calls the lift (confirmed) and sees it arrive.
async fn exercise(client: &Client) {
    let ents = client.entities();
    let ids: Vec<_> = ents.iter().map(|e| e.object_id.as_str()).collect();
    assert_eq!(ids, OBJECT_IDS);
    for e in &ents {
        assert_eq!(e.key, key_for(&e.object_id), "{}", e.object_id);
    }
    assert_eq!(client.entity("target_floor").unwrap().options, ["0", "1"]);
    assert_eq!(client.entity("door_lock").unwrap().kind, EntityKind::Lock);
    assert_eq!(client.device().name, "facegate-sim");

    let lock = LockDriver::new(client.clone(), "front", "door_lock");
    wait_for("initial lock state", Duration::from_secs(2), || {
        lock.state().is_some()
    })
    .await;
    assert_eq!(lock.state(), Some(LockState::Locked));
    let o = lock.unlock(Instant::now()).await;
    assert_eq!(o.outcome, OutcomeKind::Confirmed, "{o:?}");
    assert!(
        o.sent_ms.unwrap() < 500.0 && o.confirmed_ms.unwrap() < 1500.0,
        "{o:?}"
    );
    assert_eq!(lock.state(), Some(LockState::Unlocked));
    // Relocks on the board by itself (600 ms in the fast simulator).
    let t0 = Instant::now();
    wait_for("relock", Duration::from_secs(3), || {
        lock.state() == Some(LockState::Locked)
    })
    .await;
    assert!(
        t0.elapsed() >= Duration::from_millis(400),
        "relocked too early: {:?}",
        t0.elapsed()
    );

    let lift = LiftDriver::new(client.clone(), "lift");
    assert_eq!(lift.current_floor(), Some(0));
    let o = lift.call(1, Instant::now()).await;
    assert_eq!(o.outcome, OutcomeKind::Confirmed, "{o:?}");
    assert!(
        lift.wait_arrival(1, Duration::from_secs(3)).await,
        "lift never reached floor 1"
    );
    assert_eq!(
        (lift.current_floor(), lift.moving()),
        (Some(1), Some(false))
    );
    let o = lift.call(0, Instant::now()).await;
    assert_eq!(o.outcome, OutcomeKind::Confirmed, "{o:?}");
    assert!(lift.wait_arrival(0, Duration::from_secs(3)).await);
}

#[tokio::test]
async fn plaintext_board_lists_unlocks_relocks_and_moves_the_lift() {
    let s = sim(None).await;
    let c = Client::connect(board(s.port(), None)).await.unwrap();
    exercise(&c).await;
    c.disconnect().await;
    assert_eq!(c.status(), LinkStatus::Stopped);
}

#[tokio::test]
async fn noise_board_works_with_the_right_key() {
    let s = sim(Some(key())).await;
    let c = Client::connect(board(s.port(), Some(key()))).await.unwrap();
    exercise(&c).await;
    c.disconnect().await;
}

#[tokio::test]
async fn wrong_key_and_encryption_mismatches_are_clear_errors() {
    let noisy = sim(Some(key())).await;
    let other = Key::from_base64(OTHER_KEY).unwrap();
    let e = Client::connect(board(noisy.port(), Some(other)))
        .await
        .err()
        .expect("wrong key must fail");
    assert!(matches!(e, EspError::Handshake(_)), "{e}");
    assert!(
        e.to_string().contains("Handshake MAC failure")
            && e.to_string().contains("wrong encryption key"),
        "{e}"
    );

    let e = Client::connect(board(noisy.port(), None))
        .await
        .err()
        .expect("plaintext to Noise must fail");
    assert!(matches!(e, EspError::RequiresEncryption), "{e}");

    let plain = sim(None).await;
    let e = Client::connect(board(plain.port(), Some(key())))
        .await
        .err()
        .expect("Noise to plaintext must fail");
    assert!(e.to_string().contains("plaintext"), "{e}");
    // Nothing was executed by any of these attempts.
    assert!(noisy.board.received().is_empty() && plain.board.received().is_empty());
}

#[tokio::test]
async fn board_going_away_and_coming_back_is_resubscribed_with_fresh_state() {
    let s = sim(Some(key())).await;
    let c = Client::connect(board(s.port(), Some(key()))).await.unwrap();
    let lock = LockDriver::new(c.clone(), "front", "door_lock");
    assert_eq!(c.wait_connected(Duration::from_secs(1)).await.unwrap(), 1);
    assert_eq!(
        lock.unlock(Instant::now()).await.outcome,
        OutcomeKind::Confirmed
    );

    s.stop();
    wait_for("link down", Duration::from_secs(2), || {
        !matches!(c.status(), LinkStatus::Connected { .. })
    })
    .await;
    // While away the board relocks and someone calls the lift locally: the client must learn both.
    tokio::time::sleep(Duration::from_millis(800)).await;
    s.board.call(1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(s.board.lock_state(), LockState::Locked);
    assert_eq!(
        lock.state(),
        Some(LockState::Unlocked),
        "stale until reconnected"
    );
    s.restart().await.unwrap();
    assert_eq!(c.wait_connected(Duration::from_secs(3)).await.unwrap(), 2);
    wait_for("fresh states", Duration::from_secs(2), || {
        lock.state() == Some(LockState::Locked)
    })
    .await;
    let lift = LiftDriver::new(c.clone(), "lift");
    wait_for("fresh floor", Duration::from_secs(2), || {
        lift.current_floor() == Some(1)
    })
    .await;
    // Re-subscribed: a new command is confirmed by a state update on the new session.
    assert_eq!(
        lock.unlock(Instant::now()).await.outcome,
        OutcomeKind::Confirmed
    );
    c.disconnect().await;
}

#[tokio::test]
async fn answers_the_boards_pings_over_an_idle_period() {
    // The board pings after 300 ms of silence and drops us 300 ms later if unanswered; we send no pings
    // of our own, so staying connected for 4 s (~7 ping rounds) proves the replies.
    let mut cfg = fast_sim(None);
    cfg.ping_after = Duration::from_millis(300);
    cfg.drop_after = Duration::from_millis(300);
    let s = facegate::esphome::sim::SimBoard::start(cfg, 0)
        .await
        .unwrap();
    let mut bc = board(s.port(), None);
    bc.keepalive = None;
    let c = Client::connect(bc).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(c.status(), LinkStatus::Connected { generation: 1 });
    let lock = LockDriver::new(c.clone(), "front", "door_lock");
    assert_eq!(
        lock.unlock(Instant::now()).await.outcome,
        OutcomeKind::Confirmed
    );
}

#[tokio::test]
async fn own_keepalive_detects_a_hung_board_and_reconnects() {
    let s = sim(None).await;
    let f = front(s.port(), 0, vec![]).await;
    let mut bc = board(f.port, None);
    bc.keepalive = Some(Duration::from_millis(300));
    bc.keepalive_timeout = Duration::from_millis(300);
    let c = Client::connect(bc).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        c.status(),
        LinkStatus::Connected { generation: 1 },
        "pings answered: no reconnect"
    );
    f.freeze.store(true, std::sync::atomic::Ordering::SeqCst);
    wait_for("hang detected", Duration::from_secs(2), || {
        matches!(c.status(), LinkStatus::Failed { .. })
    })
    .await;
    f.freeze.store(false, std::sync::atomic::Ordering::SeqCst);
    // A reconnect attempt may have started while still frozen: it times out (3 s) and the next one works.
    let generation = c.wait_connected(Duration::from_secs(8)).await.unwrap();
    assert!(generation >= 2, "{generation}");
}

#[tokio::test]
async fn unlock_decided_while_unreachable_is_never_executed_after_the_deadline() {
    let s = sim(None).await;
    s.stop();
    let c = Client::start(board(s.port(), None));
    let lock = LockDriver::new(c.clone(), "front", "door_lock");
    let decided = Instant::now();
    let unlock = async {
        let o = lock.unlock(decided).await;
        (o, decided.elapsed())
    };
    let ((o, reported_after), _) = tokio::join!(unlock, async {
        // The board comes back 3 s after the decision: 1 s too late.
        tokio::time::sleep(Duration::from_secs(3)).await;
        s.restart().await.unwrap();
    });
    assert!(
        matches!(&o.outcome, OutcomeKind::Dropped { reason } if reason.contains("2000 ms")),
        "{o:?}"
    );
    assert_eq!(o.sent_ms, None);
    // Reported as dropped at the deadline, not when the board came back.
    assert!(
        reported_after >= Duration::from_secs(2) && reported_after < Duration::from_millis(2500),
        "{reported_after:?}"
    );
    c.wait_connected(Duration::from_secs(3)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        s.board.received().is_empty(),
        "executed late: {:?}",
        s.board.received()
    );
    assert_eq!(s.board.lock_state(), LockState::Locked);
    c.disconnect().await;
}

#[tokio::test]
async fn unlock_decided_while_unreachable_is_sent_when_the_board_returns_in_time() {
    let s = sim(None).await;
    s.stop();
    let c = Client::start(board(s.port(), None));
    let lock = LockDriver::new(c.clone(), "front", "door_lock");
    let decided = Instant::now();
    let (o, _) = tokio::join!(lock.unlock(decided), async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        s.restart().await.unwrap();
    });
    assert_eq!(o.outcome, OutcomeKind::Confirmed, "{o:?}");
    let sent = o.sent_ms.unwrap();
    assert!((800.0..2000.0).contains(&sent), "{sent}");
    let r = s.board.received();
    assert_eq!(r.len(), 1);
    assert!(r[0].at.duration_since(decided) < Duration::from_secs(2));
}

#[tokio::test]
async fn a_granted_decision_unlocks_and_calls_the_lift_and_others_never_actuate() {
    use facegate::decide::{Action, Decision, Verdict};
    use facegate::esphome::GateActuator;
    let s = sim(Some(key())).await;
    let c = Client::connect(board(s.port(), Some(key()))).await.unwrap();
    let gate = GateActuator {
        gate: "front".into(),
        lock: Some(LockDriver::new(c.clone(), "front", "door_lock")),
        lift: Some(LiftDriver::new(c.clone(), "front")),
    };
    let decision = |verdict| Decision {
        gate: "front".into(),
        track_id: 7,
        person: Some("alice".into()),
        confidence: 0.9,
        liveness: 0.95,
        verdict,
        why: "test".into(),
        at: std::time::SystemTime::now(),
    };
    for v in [
        Verdict::Denied {
            reason: "schedule".into(),
        },
        Verdict::Unknown,
        Verdict::Spoof,
        Verdict::NotifyOnly,
    ] {
        assert!(gate.act(&decision(v)).await.is_empty());
    }
    assert!(s.board.received().is_empty());
    let actions = vec![
        Action::Unlock {
            lock: "door_lock".into(),
        },
        Action::CallLift { floor: 1 },
    ];
    let out = gate.act(&decision(Verdict::Granted { actions })).await;
    assert_eq!(out.len(), 2);
    assert!(
        out.iter().all(|o| o.outcome == OutcomeKind::Confirmed),
        "{out:?}"
    );
    let json = serde_json::to_value(&out[0]).unwrap();
    assert_eq!(json["action"], "unlock");
    assert_eq!(json["lock"], "door_lock");
    assert_eq!(json["result"], "confirmed");
    let mut got: Vec<_> = s.board.received().into_iter().map(|r| r.what).collect();
    got.sort();
    assert_eq!(got, ["call 1", "unlock"]);
    // A gate without a lift board reports the action as dropped, never silently.
    let lock_only = GateActuator {
        lift: None,
        ..gate.clone()
    };
    let out = lock_only
        .act(&decision(Verdict::Granted {
            actions: vec![Action::CallLift { floor: 0 }],
        }))
        .await;
    assert!(
        matches!(&out[0].outcome, OutcomeKind::Dropped { reason } if reason.contains("no lift")),
        "{out:?}"
    );
}

#[tokio::test]
async fn a_wrong_key_in_the_background_is_reported_and_retried_without_panicking() {
    let s = sim(Some(key())).await;
    let c = Client::start(board(s.port(), Some(Key::from_base64(OTHER_KEY).unwrap())));
    wait_for("failure status", Duration::from_secs(2), || {
        matches!(c.status(), LinkStatus::Failed { error } if error.contains("wrong encryption key"))
    })
    .await;
    // Commands meanwhile are dropped at their deadline, never sent with a broken session.
    let lock = LockDriver {
        deadline: Duration::from_millis(300),
        ..LockDriver::new(c.clone(), "front", "door_lock")
    };
    assert!(matches!(
        lock.unlock(Instant::now()).await.outcome,
        OutcomeKind::Dropped { .. }
    ));
    assert!(s.board.received().is_empty());
    c.disconnect().await;
    assert_eq!(c.status(), LinkStatus::Stopped);
}

#[test]
fn gates_and_boards_from_the_service_config() {
    use facegate::config::{BoardConfig as BoardOptions, GateConfig, LiftConfig};
    let opts = BoardOptions {
        host: "lock.local".into(),
        port: 6053,
        encryption_key: facegate::config::Secret::new(KEY),
    };
    let b = facegate::esphome::BoardConfig::from_config(&opts).unwrap();
    assert_eq!(
        (b.addr(), b.key.clone()),
        ("lock.local:6053".to_string(), Some(key()))
    );
    let plain = BoardOptions {
        encryption_key: facegate::config::Secret::new(""),
        ..opts.clone()
    };
    assert_eq!(
        facegate::esphome::BoardConfig::from_config(&plain)
            .unwrap()
            .key,
        None
    );
    let bad = BoardOptions {
        encryption_key: facegate::config::Secret::new("AAAA"),
        ..opts.clone()
    };
    assert!(matches!(
        facegate::esphome::BoardConfig::from_config(&bad),
        Err(EspError::BadKey(_))
    ));

    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let gate = GateConfig {
        name: "lift lobby".into(),
        board: Some(opts),
        lock: Some("door_lock".into()),
        lift: Some(LiftConfig {
            target_floor: "tf".into(),
            current_floor: "cf".into(),
            floors: vec![0, 1],
        }),
    };
    let client = Client::start(b);
    let a = facegate::esphome::GateActuator::from_config(&gate, Some(client));
    assert_eq!(a.gate, "lift lobby");
    assert_eq!(a.lock.as_ref().unwrap().object_id, "door_lock");
    let lift = a.lift.as_ref().unwrap();
    assert_eq!((lift.target.as_str(), lift.current.as_str()), ("tf", "cf"));
    let none = facegate::esphome::GateActuator::from_config(&gate, None);
    assert!(none.lock.is_none() && none.lift.is_none());
}
