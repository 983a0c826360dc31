use super::*;
use crate::vision::BBox;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// An EAR series at 25 fps: open at 0.30 with a little noise, closures as (start frame, frames, depth).
fn series(frames: u64, closures: &[(u64, u64, f32)]) -> Vec<f32> {
    (0..frames)
        .map(|i| {
            let noise = 0.004 * ((i * 7 % 5) as f32 - 2.0);
            match closures.iter().find(|(s, n, _)| (*s..s + n).contains(&i)) {
                Some((_, _, depth)) => 0.30 * depth,
                None => 0.30 + noise,
            }
        })
        .collect()
}

fn blinks(ears: &[f32]) -> Vec<u64> {
    let mut d = BlinkDetector::new(BlinkParams::default());
    ears.iter()
        .enumerate()
        .filter_map(|(i, e)| d.push(i as u64, ms(40 * i as u64), *e).map(|b| b.frame))
        .collect()
}

#[test]
fn blinks_are_closures_then_reopening_against_the_own_baseline() {
    // Two blinks (3 and 2 frames), one long closure (1.2 s: not a blink), a shallow dip (not a blink).
    let ears = series(
        150,
        &[(20, 3, 0.5), (50, 2, 0.6), (80, 30, 0.4), (120, 3, 0.9)],
    );
    assert_eq!(blinks(&ears), vec![20, 50]);
    // The same relative closures on narrow eyes (baseline 0.15) are found the same way.
    let narrow: Vec<f32> = ears.iter().map(|e| e / 2.0).collect();
    assert_eq!(blinks(&narrow), vec![20, 50]);
    // A closure that never reopens is not a blink; neither is NaN or the first frames before a baseline.
    let mut ears = series(40, &[(30, 10, 0.4), (1, 1, 0.3)]);
    ears[10] = f32::NAN;
    assert_eq!(blinks(&ears), Vec::<u64>::new());
}

fn det(x: f32) -> Detection {
    Detection {
        bbox: BBox {
            x,
            y: 10.0,
            w: 100.0,
            h: 120.0,
        },
        score: 0.9,
        keypoints: [
            [x + 30.0, 50.0],
            [x + 70.0, 50.0],
            [x + 50.0, 70.0],
            [x + 35.0, 90.0],
            [x + 65.0, 90.0],
        ],
    }
}

fn cfg() -> LivenessConfig {
    LivenessConfig {
        require_blink: true,
        blink_window_s: 2.0,
        min_frames: 3,
        cooldown_s: 10.0,
    }
}

#[test]
fn verdict_policy_passive_blink_and_still_images() {
    let c = cfg();
    let moving = |i: u64| det(i as f32 * 0.5);
    // Passive only: pending until min_frames, then by the mean score.
    let mut l = Liveness::new(BlinkParams::default());
    l.push(0, ms(0), &moving(0), Some(0.3), 0.9);
    l.push(1, ms(40), &moving(1), Some(0.3), 0.8);
    assert_eq!(
        l.verdict(&c, false, 0.5, ms(0), ms(40)),
        LiveVerdict::Pending
    );
    l.push(2, ms(80), &moving(2), Some(0.3), 0.7);
    assert!(
        matches!(l.verdict(&c, false, 0.5, ms(0), ms(80)), LiveVerdict::Live { score, .. } if (score - 0.8).abs() < 1e-6)
    );
    // A low score is only a spoof once a full window of frames agrees.
    assert_eq!(
        l.verdict(&c, false, 0.85, ms(0), ms(80)),
        LiveVerdict::Pending
    );
    for i in 3..PASSIVE_WINDOW as u64 {
        l.push(i, ms(40 * i), &moving(i), Some(0.3), 0.8);
    }
    assert!(matches!(
        l.verdict(&c, false, 0.85, ms(0), ms(600)),
        LiveVerdict::NotLive { .. }
    ));
    // Blink required: pending inside the window, not live after it, live once a blink is seen in it.
    assert_eq!(
        l.verdict(&c, true, 0.5, ms(0), ms(80)),
        LiveVerdict::Pending
    );
    match l.verdict(&c, true, 0.5, ms(0), ms(2100)) {
        LiveVerdict::NotLive { reason, .. } => assert_eq!(reason, "no blink within 2 s"),
        other => panic!("{other:?}"),
    }
    let ears = series(40, &[(20, 3, 0.5)]);
    let mut l = Liveness::new(BlinkParams::default());
    for (i, e) in ears.iter().enumerate() {
        l.push(
            i as u64,
            ms(40 * i as u64),
            &moving(i as u64),
            Some(*e),
            0.9,
        );
    }
    assert_eq!(l.blink_count(), 1);
    assert!(matches!(
        l.verdict(&c, true, 0.5, ms(0), ms(1600)),
        LiveVerdict::Live { .. }
    ));
    // The same frames with a perfectly still face: a still image, whatever the scores say.
    let mut l = Liveness::new(BlinkParams::default());
    for (i, e) in ears.iter().enumerate() {
        l.push(i as u64, ms(40 * i as u64), &det(0.0), Some(*e), 0.99);
    }
    match l.verdict(&c, false, 0.5, ms(0), ms(1600)) {
        LiveVerdict::NotLive { reason, .. } => {
            assert!(reason.starts_with("still image"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}
