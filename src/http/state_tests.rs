//! Unit tests of [`super::LiveView`]: buffer reuse and the bounded event ring.

use std::time::Duration;

use super::*;

fn frame(seq: u64, w: u32, h: u32) -> Frame {
    Frame {
        seq,
        captured: Instant::now(),
        pts: Duration::ZERO,
        wall: SystemTime::now(),
        image: RgbImage::from_pixel(w, h, image::Rgb([seq as u8, 0, 0])),
    }
}

fn buffer(view: &LiveView, camera: &str) -> (*const u8, u64, u8) {
    let slot = view.slot(camera).unwrap();
    let st = lock(&slot.state);
    let l = st.latest.as_ref().unwrap();
    (l.image.as_ptr(), l.version, l.image.get_pixel(0, 0)[0])
}

#[test]
fn publishing_reuses_the_frame_buffer_when_nobody_holds_it() {
    let view = LiveView::default();
    let report = FrameReport::default();
    view.publish_frame("cam", &frame(1, 64, 48), &report);
    let (p1, v1, _) = buffer(&view, "cam");
    view.publish_frame("cam", &frame(2, 64, 48), &report);
    let (p2, v2, px) = buffer(&view, "cam");
    assert_eq!(
        (p1, v1 + 1, px),
        (p2, v2, 2),
        "same buffer, new pixels and version"
    );
    // A held frame (an encoder at work) is never overwritten: the next one gets its own buffer.
    let held = lock(&view.slot("cam").unwrap().state)
        .latest
        .clone()
        .unwrap();
    view.publish_frame("cam", &frame(3, 64, 48), &report);
    assert_ne!(buffer(&view, "cam").0, held.image.as_ptr());
    assert_eq!(held.image.get_pixel(0, 0)[0], 2);
    // A new frame size gets a new buffer too.
    drop(held);
    view.publish_frame("cam", &frame(4, 32, 24), &report);
    assert_eq!(view.health()[0].frames, 4);
}

#[test]
fn the_event_ring_keeps_only_the_newest() {
    let view = LiveView::new(8);
    for i in 0..20u64 {
        view.push_event(
            "cam",
            &PipelineEvent::Blink {
                track: i,
                frame: i,
                t: 0.0,
            },
        );
    }
    let events = view.recent_events(100, None);
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, (13..=20).rev().collect::<Vec<_>>());
    assert_eq!(view.recent_events(3, Some("cam")).len(), 3);
    assert!(view.recent_events(3, Some("other")).is_empty());
}
