//! Open-set rules on synthetic embeddings whose distances are known exactly.

use super::*;
use crate::vision::EMBEDDING_DIM;

/// An embedding that is `v` along axis `axis` (and `extra` along axis 127), zero elsewhere.
fn at(axis: usize, v: f32, extra: f32) -> Embedding {
    let mut e = vec![0f32; EMBEDDING_DIM];
    e[axis] = v;
    e[127] += extra;
    Embedding(e)
}

fn person(name: &str, embs: Vec<Embedding>) -> PersonModel {
    PersonModel::new(name.into(), "resident".into(), embs)
}

fn matcher(people: Vec<PersonModel>) -> Matcher {
    Matcher::new(
        people,
        MatchParams {
            threshold: 0.5,
            margin: 0.1,
            rule: DistanceRule::Min,
            normalize: false,
        },
    )
}

#[test]
fn close_probe_matches_its_person() {
    // A around axis 0, B around axis 1: A and B are sqrt(2) apart.
    let m = matcher(vec![
        person("A", vec![at(0, 1.0, 0.0), at(0, 1.0, 0.1)]),
        person("B", vec![at(1, 1.0, 0.0), at(1, 1.0, 0.1)]),
    ]);
    let r = m.identify(&at(0, 1.0, 0.3));
    assert_eq!(r.outcome, MatchOutcome::Match);
    assert_eq!(r.person.as_deref(), Some("A"));
    // Nearest A embedding is (1, .., 0.1): 0.2 away; centroid (1, .., 0.05): 0.25 away.
    assert!((r.distance.unwrap() - 0.2).abs() < 1e-6);
    // B: nearest is (0,1,..,0.1) -> sqrt(1 + 1 + 0.04).
    assert!((r.second_distance.unwrap() - 2.04f32.sqrt()).abs() < 1e-5);
}

#[test]
fn far_probe_is_unknown_but_reports_nearest() {
    let m = matcher(vec![person("A", vec![at(0, 1.0, 0.0)])]);
    let r = m.identify(&at(0, 1.0, 0.6));
    assert_eq!(r.outcome, MatchOutcome::TooFar);
    assert_eq!(r.person, None);
    assert_eq!(r.nearest.as_deref(), Some("A"));
    assert!((r.distance.unwrap() - 0.6).abs() < 1e-6);
    // Exactly at the threshold still matches.
    assert_eq!(m.identify(&at(0, 1.0, 0.5)).outcome, MatchOutcome::Match);
}

#[test]
fn nearly_equidistant_second_person_is_ambiguous() {
    // A and B are 0.3 along different axes.
    let m = matcher(vec![
        person("A", vec![at(0, 0.3, 0.0)]),
        person("B", vec![at(1, 0.3, 0.0)]),
    ]);
    // Probe (0.05, 0, ..): A at 0.25, B at sqrt(0.0025 + 0.09) = 0.304: within the 0.1 margin.
    let mut p = vec![0f32; EMBEDDING_DIM];
    p[0] = 0.05;
    let r = m.identify(&Embedding(p));
    assert_eq!(r.outcome, MatchOutcome::Ambiguous);
    assert_eq!(r.person, None);
    assert_eq!(r.nearest.as_deref(), Some("A"));
    // Probe (0.2, 0, ..): A at 0.1, B at sqrt(0.04 + 0.09) = 0.36: clear.
    let mut p = vec![0f32; EMBEDDING_DIM];
    p[0] = 0.2;
    assert_eq!(m.identify(&Embedding(p)).person.as_deref(), Some("A"));
}

#[test]
fn several_embeddings_of_one_person_are_not_a_rival() {
    // Two of A's own embeddings equally close must not make the answer ambiguous.
    let m = matcher(vec![
        person("A", vec![at(0, 1.0, 0.1), at(0, 1.0, -0.1)]),
        person("B", vec![at(1, 1.0, 0.0)]),
    ]);
    let r = m.identify(&at(0, 1.0, 0.0));
    assert_eq!(r.outcome, MatchOutcome::Match);
    // The centroid (1, .., 0) is exactly the probe: Min takes it.
    assert!(r.distance.unwrap() < 1e-6);
}

#[test]
fn empty_gallery_is_unknown() {
    let r = matcher(vec![]).identify(&at(0, 1.0, 0.0));
    assert_eq!(r.outcome, MatchOutcome::EmptyGallery);
    assert_eq!((r.person, r.distance), (None, None));
}

#[test]
fn centroid_ignores_an_outlier() {
    let good: Vec<Embedding> = [-0.02, -0.01, 0.0, 0.01, 0.02]
        .iter()
        .map(|d| at(0, 1.0, *d))
        .collect();
    let mut with_outlier = good.clone();
    with_outlier.push(at(1, 1.0, 0.0));
    let c = robust_centroid(&with_outlier);
    assert!(c.distance(&at(0, 1.0, 0.0)) < 1e-6, "{:?}", &c.0[..2]);
    // Fewer than 3: the plain mean.
    let c = robust_centroid(&[at(0, 1.0, 0.0), at(1, 1.0, 0.0)]);
    assert_eq!((c.0[0], c.0[1]), (0.5, 0.5));
}

#[test]
fn rules_differ_as_documented() {
    let p = person("A", vec![at(0, 1.0, 0.0), at(1, 1.0, 0.0)]);
    let probe = at(0, 1.0, 0.0);
    assert_eq!(p.distance(&probe, DistanceRule::Nearest), 0.0);
    // Centroid (0.5, 0.5): sqrt(0.25 + 0.25).
    assert!((p.distance(&probe, DistanceRule::Centroid) - 0.5f32.sqrt()).abs() < 1e-6);
    assert_eq!(p.distance(&probe, DistanceRule::Min), 0.0);
}

#[test]
fn normalized_matching_ignores_embedding_length() {
    let people = vec![
        person("A", vec![at(0, 1.0, 0.0)]),
        person("B", vec![at(1, 1.0, 0.0)]),
    ];
    let m = Matcher::new(people, MatchParams::default());
    assert!(m.params.normalize);
    // Three times as long, same direction: distance 0 once scaled; raw it would be 2.0 (too far).
    let r = m.identify(&at(0, 3.0, 0.0));
    assert_eq!(r.person.as_deref(), Some("A"));
    assert!(r.distance.unwrap().abs() < 1e-6);
    // Orthogonal unit directions are sqrt(2) * sqrt(2) = 2 apart on the scaled sphere.
    assert!((r.second_distance.unwrap() - 2.0).abs() < 1e-5);
    // Scaling keeps the direction and sets the length; the zero vector stays zero.
    let s = scaled(&at(2, -5.0, 0.0));
    assert!((s.0[2] + SCALED_NORM).abs() < 1e-6);
    assert!(scaled(&Embedding(vec![0.0; EMBEDDING_DIM]))
        .0
        .iter()
        .all(|v| *v == 0.0));
}

#[test]
fn a_nan_distance_is_never_a_match() {
    // A probe with a NaN component (a broken embedding) is at NaN distance from everyone: NaN compares false
    // with everything, so "d > threshold" alone would let it through as a match.
    let mut bad = at(0, 1.0, 0.0);
    bad.0[5] = f32::NAN;
    for rule in [
        DistanceRule::Min,
        DistanceRule::Centroid,
        DistanceRule::Nearest,
    ] {
        let m = Matcher::new(
            vec![
                person("A", vec![at(0, 1.0, 0.0)]),
                person("B", vec![at(1, 1.0, 0.0)]),
            ],
            MatchParams {
                threshold: 0.5,
                margin: 0.1,
                rule,
                normalize: false,
            },
        );
        let r = m.identify(&bad);
        assert_ne!(r.outcome, MatchOutcome::Match, "{rule:?}: {r:?}");
        assert_eq!(r.person, None, "{rule:?}");
        // A person whose stored embedding is broken matches no probe either.
        let m = matcher(vec![person("C", vec![bad.clone()])]);
        let r = m.identify(&at(0, 1.0, 0.0));
        assert_eq!(r.person, None, "{r:?}");
    }
}
