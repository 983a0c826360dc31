//! Bad input from a board: garbage, truncated frames, oversized lengths, unknown message types. Each is a
//! clear error (or, for unknown types, ignored), never a panic, and the client reconnects cleanly. The
//! parser is fuzzed with a bounded, seeded random loop.

mod esphome_support;

use std::time::{Duration, Instant};

use esphome_support::*;
use facegate::esphome::frame::{self, FrameError, RawMessage, MAX_PAYLOAD};
use facegate::esphome::msg::Incoming;
use facegate::esphome::{Client, EspError, LinkStatus, LockDriver, OutcomeKind};

#[test]
fn parser_gives_clear_errors() {
    assert_eq!(
        frame::decode_plain(b"GET / HTTP/1.1\r\n"),
        Err(FrameError::BadIndicator(b'G', 0))
    );
    // Oversized: length 1 MiB (varint 0x80 0x80 0x40).
    let e = frame::decode_plain(&[0, 0x80, 0x80, 0x40, 7]).unwrap_err();
    assert_eq!(
        e,
        FrameError::TooLarge {
            len: 1 << 20,
            max: MAX_PAYLOAD
        }
    );
    assert!(e.to_string().contains("exceeds"));
    // A varint that never ends.
    assert_eq!(
        frame::decode_plain(&[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
        Err(FrameError::BadVarint)
    );
    // Type beyond u16.
    assert_eq!(
        frame::decode_plain(&[0, 0, 0xff, 0xff, 0x04]),
        Err(FrameError::BadType(81_919))
    );
    // Truncated frames just need more bytes.
    let f = frame::encode_plain(59, &[8, 2]);
    assert_eq!(frame::decode_plain(&f[..f.len() - 1]), Ok(None));
    assert_eq!(frame::decode_noise_frame(&[1, 0]), Ok(None));
    assert_eq!(
        frame::decode_noise_inner(&[0, 1, 0]),
        Err(FrameError::ShortInner)
    );
    assert_eq!(
        frame::decode_noise_inner(&[0, 1, 0, 9, 1]),
        Err(FrameError::InnerLength {
            declared: 9,
            actual: 1
        })
    );
    // Unknown message types decode to Other (ignored by the client); a known type with bad protobuf errs.
    let m = Incoming::decode(&RawMessage {
        msg_type: 999,
        payload: vec![1, 2, 3],
    })
    .unwrap();
    assert!(matches!(m, Incoming::Other(999)));
    let e = Incoming::decode(&RawMessage {
        msg_type: 59,
        payload: vec![0xff, 0xff],
    })
    .unwrap_err();
    assert!(matches!(e, EspError::Decode { msg_type: 59, .. }), "{e}");
}

/// xorshift64*: a seeded generator, so a failure is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn fuzz_parser_never_panics_and_never_overreads() {
    let mut rng = Rng(0x5eed_face_6a7e);
    let valid: Vec<Vec<u8>> = vec![
        frame::encode_plain(59, &[8, 1, 16, 2]),
        frame::encode_plain(2, &vec![b'x'; 300]),
        frame::encode_noise_frame(&frame::encode_noise_inner(53, b"\x08\x01\x12\x011").unwrap())
            .unwrap(),
    ];
    for i in 0..200_000 {
        let mut buf: Vec<u8> = if i % 2 == 0 {
            (0..rng.below(40)).map(|_| rng.next() as u8).collect()
        } else {
            let mut v = valid[rng.below(valid.len())].clone();
            for _ in 0..1 + rng.below(4) {
                let p = rng.below(v.len());
                v[p] = rng.next() as u8;
            }
            v.truncate(rng.below(v.len() + 1));
            v
        };
        if i % 3 == 0 && !buf.is_empty() {
            buf[0] = (i % 2) as u8; // valid indicator more often, to reach deeper code
        }
        if let Ok(Some((m, n))) = frame::decode_plain(&buf) {
            assert!(n <= buf.len() && m.payload.len() <= MAX_PAYLOAD);
            let _ = Incoming::decode(&m);
        }
        if let Ok(Some((body, n))) = frame::decode_noise_frame(&buf) {
            assert!(n <= buf.len() && body.len() + 3 == n);
            if let Ok(m) = frame::decode_noise_inner(body) {
                let _ = Incoming::decode(&m);
            }
        }
        let _ = Incoming::decode(&RawMessage {
            msg_type: rng.below(140) as u16,
            payload: buf,
        });
    }
}

/// A board that answers with `garbage` on its first two connections: a clear error from `connect`, the
/// same error reported by the background client's status, then a clean reconnect that works.
async fn hostile_then_good(garbage: Vec<u8>, expect: &str) {
    let s = sim(None).await;
    let f = front(s.port(), 2, garbage).await;
    let e = Client::connect(board(f.port, None))
        .await
        .err()
        .expect("hostile board must fail");
    assert!(
        e.to_string().contains(expect),
        "expected {expect:?} in: {e}"
    );
    let c = Client::start(board(f.port, None));
    let mut seen = Vec::new();
    let t0 = Instant::now();
    while !matches!(c.status(), LinkStatus::Connected { .. }) {
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "never reconnected: {seen:?}"
        );
        if seen.last() != Some(&c.status()) {
            seen.push(c.status());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(
        seen.iter()
            .any(|s| matches!(s, LinkStatus::Failed { error } if error.contains(expect))),
        "{seen:?}"
    );
    assert_eq!(c.status(), LinkStatus::Connected { generation: 1 });
    let lock = LockDriver::new(c.clone(), "front", "door_lock");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        lock.unlock(Instant::now()).await.outcome,
        OutcomeKind::Confirmed
    );
    c.disconnect().await;
}

#[tokio::test]
async fn garbage_from_the_board_is_a_clear_error() {
    hostile_then_good(
        b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
        "unexpected indicator byte 0x48",
    )
    .await;
}

#[tokio::test]
async fn truncated_frame_is_a_clear_error() {
    let mut f = frame::encode_plain(2, &[8, 1, 16, 14, 26, 4, b'a', b'b']);
    f.truncate(5);
    hostile_then_good(f, "truncated frame").await;
}

#[tokio::test]
async fn oversized_length_is_a_clear_error() {
    hostile_then_good(
        vec![0, 0xff, 0xff, 0xff, 0x0f, 2],
        "exceeds the 65536-byte limit",
    )
    .await;
}

#[tokio::test]
async fn unknown_message_types_are_ignored_and_the_session_continues() {
    // An unknown message (type 999) before the real hello response: skipped, the session comes up.
    let s = sim(None).await;
    let mut junk = frame::encode_plain(999, b"future message");
    junk.extend(frame::encode_plain(998, &[]));
    let f = front_with(s.port(), 0, vec![], junk).await;
    let c = Client::connect(board(f.port, None)).await.unwrap();
    assert_eq!(c.entities().len(), 11);
    let lock = LockDriver::new(c.clone(), "front", "door_lock");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        lock.unlock(Instant::now()).await.outcome,
        OutcomeKind::Confirmed
    );
    assert_eq!(c.status(), LinkStatus::Connected { generation: 1 });
}
