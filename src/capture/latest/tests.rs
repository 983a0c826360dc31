use std::sync::mpsc;

use super::*;

fn rgb(k: u8) -> Payload {
    Payload::Rgb(RgbImage::from_pixel(4, 2, image::Rgb([k, k, k])))
}

fn now() -> (Instant, SystemTime) {
    (Instant::now(), SystemTime::now())
}

fn disconnected() -> CaptureError {
    CaptureError::Disconnected {
        source_name: "cam".into(),
        reason: "gone".into(),
    }
}

/// A source whose reader is driven step by step from the test: each message is one action.
fn driven() -> (
    LatestSource,
    mpsc::Sender<Option<Payload>>,
    mpsc::Receiver<bool>,
) {
    let (tx, rx) = mpsc::channel::<Option<Payload>>();
    let (done_tx, done_rx) = mpsc::channel();
    let src = LatestSource::spawn("cam", move |mb| {
        for msg in rx {
            let (c, w) = now();
            let alive = match msg {
                Some(p) => mb.frame(p, c, w),
                None => mb.error(disconnected()),
            };
            done_tx.send(alive).unwrap();
        }
    })
    .unwrap();
    (src, tx, done_rx)
}

#[test]
fn the_consumer_gets_the_newest_frame_and_the_rest_are_counted() {
    let (mut src, tx, done) = driven();
    for k in 0..5 {
        tx.send(Some(rgb(k))).unwrap();
        assert!(done.recv().unwrap());
    }
    let f = src.next_frame().unwrap().unwrap();
    assert_eq!((f.seq, f.image.get_pixel(0, 0).0), (4, [4, 4, 4]));
    assert_eq!(src.dropped(), 4);
    tx.send(Some(rgb(9))).unwrap();
    done.recv().unwrap();
    let f = src.next_frame().unwrap().unwrap();
    assert_eq!((f.seq, src.dropped()), (5, 4));
    assert!(f.pts <= f.captured.duration_since(src.shared.started) && f.pts > Duration::ZERO);
    // Nothing new: a bounded wait says so without ending the source.
    let t = Instant::now();
    assert!(src
        .next_frame_timeout(Duration::from_millis(50))
        .unwrap()
        .is_none());
    assert!(t.elapsed() >= Duration::from_millis(50));
    // The reader ends: the source ends.
    drop(tx);
    assert!(src.next_frame().unwrap().is_none());
}

#[test]
fn errors_and_frames_come_out_in_arrival_order() {
    let (mut src, tx, done) = driven();
    tx.send(Some(rgb(1))).unwrap();
    tx.send(None).unwrap();
    tx.send(Some(rgb(2))).unwrap();
    for _ in 0..3 {
        done.recv().unwrap();
    }
    assert_eq!(
        src.next_frame().unwrap_err().to_string(),
        "source cam disconnected: gone"
    );
    let f = src.next_frame().unwrap().unwrap();
    assert_eq!(
        (f.seq, f.image.get_pixel(0, 0).0[0], src.dropped()),
        (1, 2, 1)
    );
    // A frame that came before the error is handed out before it.
    tx.send(Some(rgb(3))).unwrap();
    tx.send(None).unwrap();
    for _ in 0..2 {
        done.recv().unwrap();
    }
    assert_eq!(src.next_frame().unwrap().unwrap().seq, 2);
    assert!(matches!(
        src.next_frame(),
        Err(CaptureError::Disconnected { .. })
    ));
    assert_eq!(src.dropped(), 1);
}

#[test]
fn undecodable_payloads_are_bad_frames() {
    let (mut src, tx, done) = driven();
    let cases = [
        (
            Payload::Jpeg(Vec::new()),
            "frame 0: zero-length frame (0 bytes)",
        ),
        (
            Payload::Jpeg(b"<html>502 Bad Gateway</html>".to_vec()),
            "frame 1: not an image: the content matches no known image format",
        ),
        (
            Payload::Yuyv {
                width: 4,
                height: 2,
                stride: 8,
                data: vec![0; 10],
            },
            "frame 2: YUYV frame of 10 bytes is too short for 4x2 (stride 8): 16 bytes needed",
        ),
    ];
    for (payload, want) in cases {
        tx.send(Some(payload)).unwrap();
        done.recv().unwrap();
        match src.next_frame() {
            Err(CaptureError::BadFrame {
                source_name,
                reason,
            }) => assert_eq!((source_name.as_str(), reason.as_str()), ("cam", want)),
            other => panic!("{want}: got {other:?}"),
        }
    }
    tx.send(Some(rgb(3))).unwrap();
    done.recv().unwrap();
    assert_eq!(src.next_frame().unwrap().unwrap().seq, 3);
}

#[test]
fn dropping_the_source_stops_the_reader() {
    let (stopped_tx, stopped_rx) = mpsc::channel();
    let src = LatestSource::spawn("cam", move |mb| {
        let mut k = 0u8;
        loop {
            let (c, w) = now();
            if !mb.frame(rgb(k), c, w) {
                break;
            }
            k = k.wrapping_add(1);
            if !mb.sleep(Duration::from_millis(5)) {
                break;
            }
        }
        stopped_tx.send(()).unwrap();
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(30));
    drop(src);
    stopped_rx
        .recv_timeout(Duration::from_secs(2))
        .expect("the reader stops within its sleep");
}
