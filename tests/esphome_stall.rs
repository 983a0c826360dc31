//! Adversarial: the TCP path to the lock board stalls for 8 s right when an unlock is sent, then comes back.
//! The socket write succeeds at once (the bytes sit in a kernel buffer), so "written before the deadline" is
//! not "executed before the deadline". The board must never execute the unlock after the deadline, and the
//! client must relock once it reaches the board again.

mod esphome_support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use esphome_support::*;
use facegate::esphome::entities::LockState;
use facegate::esphome::{Client, LinkStatus, LockDriver, OutcomeKind};

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

#[tokio::test]
async fn unlock_stalled_on_the_path_is_never_executed_late_and_the_door_is_relocked() {
    // A long relock timer on the board, so only facegate's relock can lock the door again in this test.
    let s = facegate::esphome::sim::SimBoard::start(
        facegate::esphome::sim::SimConfig {
            relock: Duration::from_secs(60),
            ..fast_sim(None)
        },
        0,
    )
    .await
    .unwrap();
    let p = stall_proxy(s.port()).await;
    // Default keepalive (ping after 20 s of silence): the stall alone does not make the client reconnect.
    let c = Client::connect(board(p.port, None)).await.unwrap();
    let lock = LockDriver::new(c.clone(), "front", "door_lock");
    wait_for("initial lock state", Duration::from_secs(2), || {
        lock.state().is_some()
    })
    .await;
    assert_eq!(lock.state(), Some(LockState::Locked));

    p.stall.store(true, Ordering::SeqCst);
    let decided = Instant::now();
    let o = lock.unlock(decided).await;
    let reported = decided.elapsed();
    // The path comes back 8 s after the decision.
    tokio::time::sleep_until((decided + Duration::from_secs(8)).into()).await;
    p.stall.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;

    let received = s.board.received();
    let late: Vec<_> = received
        .iter()
        .filter(|r| r.what == "unlock" && r.at > decided + lock.deadline)
        .map(|r| r.at.duration_since(decided))
        .collect();
    assert!(
        late.is_empty(),
        "the board executed the unlock late, {late:?} after the decision: {received:?}"
    );
    assert!(
        received
            .iter()
            .any(|r| r.what == "lock" && r.at > decided + Duration::from_secs(8)),
        "a relock reached the board after the reconnect: {received:?}"
    );
    assert_eq!(s.board.lock_state(), LockState::Locked, "{received:?}");
    assert_eq!(o.outcome, OutcomeKind::Unconfirmed, "{o:?}");
    assert!(
        reported < lock.deadline + Duration::from_millis(300),
        "an unconfirmed unlock is reported at its deadline, not later: {reported:?}"
    );
    assert!(
        matches!(c.status(), LinkStatus::Connected { generation } if generation >= 2),
        "reconnected after the abort: {:?}",
        c.status()
    );
    c.close().await;
}
