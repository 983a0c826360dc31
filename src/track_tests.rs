use super::*;

fn det(x: f32, y: f32, size: f32) -> Detection {
    let kp = |dx: f32, dy: f32| [x + dx * size, y + dy * size];
    Detection {
        bbox: BBox {
            x,
            y,
            w: size,
            h: size,
        },
        score: 0.9,
        keypoints: [
            kp(0.3, 0.4),
            kp(0.7, 0.4),
            kp(0.5, 0.6),
            kp(0.35, 0.8),
            kp(0.65, 0.8),
        ],
    }
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

#[test]
fn faces_keep_their_tracks_and_tracks_end_after_the_gap() {
    let mut t = Tracker::new(TrackParams::default(), BlinkParams::default());
    let u = t.update(0, ms(0), &[det(10.0, 10.0, 100.0), det(300.0, 10.0, 100.0)]);
    assert_eq!(u.started, vec![0, 1]);
    let ids: Vec<u64> = t.tracks().iter().map(|t| t.id).collect();
    assert_eq!(ids, vec![1, 2]);
    // Listed in the other order and moved a little: same tracks.
    let u = t.update(
        1,
        ms(100),
        &[det(305.0, 12.0, 100.0), det(14.0, 10.0, 100.0)],
    );
    assert!(u.started.is_empty() && u.ended.is_empty());
    assert_eq!(t.tracks()[u.assigned[0]].id, 2);
    assert_eq!(t.tracks()[u.assigned[1]].id, 1);
    // A fast step with little overlap still follows by keypoints; a different size does not.
    let u = t.update(2, ms(200), &[det(60.0, 10.0, 100.0)]);
    assert_eq!(t.tracks()[u.assigned[0]].id, 1);
    assert_eq!(t.tracks()[u.assigned[0]].frames, 3);
    // Track 2 missing for less than the gap survives, then ends.
    let u = t.update(3, ms(800), &[det(62.0, 10.0, 100.0)]);
    assert!(u.ended.is_empty());
    let u = t.update(4, ms(1000), &[det(64.0, 10.0, 100.0)]);
    assert_eq!(u.ended.iter().map(|t| t.id).collect::<Vec<_>>(), vec![2]);
    let u = t.update(5, ms(1100), &[det(64.0, 10.0, 40.0)]);
    assert_eq!(u.started.len(), 1);
    assert_eq!(t.tracks()[u.assigned[0]].id, 3);
}

#[test]
fn votes_weigh_frames_and_need_a_clear_share() {
    let mut v = Votes::default();
    assert_eq!(v.identity(), None);
    v.add(Some("ann".into()), Some(0.40), 1.0);
    v.add(None, Some(0.60), 0.2);
    v.add(Some("ann".into()), Some(0.44), 1.0);
    let id = v.identity().unwrap();
    assert_eq!(id.person.as_deref(), Some("ann"));
    assert!((id.confidence - 2.0 / 2.2).abs() < 1e-6);
    assert!((id.distance.unwrap() - 0.42).abs() < 1e-6);
    // Heavy unknown frames push the share below the bar: unknown.
    v.add(None, Some(0.7), 1.0);
    v.add(Some("bob".into()), Some(0.5), 0.5);
    let id = v.identity().unwrap();
    assert_eq!(id.person, None);
    assert!((id.confidence - 1.2 / 3.7).abs() < 1e-6);
}
