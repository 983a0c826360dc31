//! Open-set matching of a face embedding against the enrolled people, in memory.
//!
//! Each person is all their enrolled embeddings plus a robust centroid (the mean after dropping embeddings
//! far from the rest, so one bad enrollment photo does not drag it). A probe is that person only when it is
//! close enough (distance <= threshold) AND clearly closer to them than to anyone else (the second-best other
//! person is more than `margin` further away). Anything else is unknown: for a door, a refusal is cheap and a
//! wrong guess is not.

use serde::Serialize;

use crate::vision::Embedding;

/// How the distance from a probe to a person is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DistanceRule {
    /// Distance to the nearest enrolled embedding.
    Nearest,
    /// Distance to the robust centroid.
    Centroid,
    /// The smaller of the two.
    Min,
}

/// Open-set decision parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MatchParams {
    /// Largest distance that can be a match.
    pub threshold: f32,
    /// The second-best other person must be at least this much further than the best.
    pub margin: f32,
    pub rule: DistanceRule,
    /// Compare embeddings scaled to the common length [`SCALED_NORM`] (cosine distance on dlib's familiar
    /// scale) instead of as the network gives them. The embedding's length varies by about 5 % from photo to
    /// photo without saying who it is; measured on both identity sets, ignoring it separates people better
    /// (colour set: ROC AUC 0.9967 -> 0.9977, FRR at zero false accepts 5.5 % -> 4.1 %; the same holds for
    /// face_recognition's embeddings).
    pub normalize: bool,
}

/// Length embeddings are scaled to when [`MatchParams::normalize`] is on: sqrt(2), close to the typical
/// length of dlib's embeddings (1.43 on average over the 581 faces of the accuracy evaluation), so distances
/// stay on the scale dlib's users know (0.6 = "same person" in dlib's own docs).
pub const SCALED_NORM: f32 = std::f32::consts::SQRT_2;

/// `e` scaled to length [`SCALED_NORM`] (a zero vector stays zero).
pub fn scaled(e: &Embedding) -> Embedding {
    let n = e.0.iter().map(|v| v * v).sum::<f32>().sqrt();
    let k = if n > 0.0 { SCALED_NORM / n } else { 0.0 };
    Embedding(e.0.iter().map(|v| v * k).collect())
}

/// Defaults measured on `../shared/faces` with `scripts/eval_accuracy.py` (enroll 3 photos per person, probe
/// the rest; two held-out people and every street-scene face as impostors; docs/MEASUREMENTS.md): with scaled
/// embeddings ([`MatchParams::normalize`]) and the centroid rule, the first false accept comes at distance
/// 0.536 on the colour set and 0.550 on the grey low-res set; 0.53 stays below both, so no impostor is accepted
/// on either set, and rejects 5.5 % (4/73) of the colour set's genuine probes, none of the grey set's (a
/// refused resident tries again; a false accept opens the door to a stranger, so the threshold sits below the
/// first false accept, not at it). The margin 0.02 turns the grey set's closest wrong-person matches into
/// "unknown".
pub const DEFAULT_THRESHOLD: f32 = 0.53;
/// See [`DEFAULT_THRESHOLD`].
pub const DEFAULT_MARGIN: f32 = 0.02;

impl Default for MatchParams {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            margin: DEFAULT_MARGIN,
            rule: DistanceRule::Centroid,
            normalize: true,
        }
    }
}

/// One enrolled person as the matcher sees them.
#[derive(Clone, Debug)]
pub struct PersonModel {
    pub name: String,
    pub access_level: String,
    pub embeddings: Vec<Embedding>,
    pub centroid: Embedding,
    /// The embeddings [`scaled`] and their robust centroid, for [`MatchParams::normalize`].
    pub scaled: Vec<Embedding>,
    pub scaled_centroid: Embedding,
}

impl PersonModel {
    /// Build a person from their embeddings (at least one), computing the robust centroid.
    pub fn new(name: String, access_level: String, embeddings: Vec<Embedding>) -> Self {
        let centroid = robust_centroid(&embeddings);
        let scaled_embs: Vec<Embedding> = embeddings.iter().map(scaled).collect();
        let scaled_centroid = robust_centroid(&scaled_embs);
        Self {
            name,
            access_level,
            embeddings,
            centroid,
            scaled: scaled_embs,
            scaled_centroid,
        }
    }

    /// Distance from a probe to this person under `rule`, on the embeddings as given.
    pub fn distance(&self, probe: &Embedding, rule: DistanceRule) -> f32 {
        rule_distance(&self.embeddings, &self.centroid, probe, rule)
    }

    /// Distance from an already [`scaled`] probe to this person's scaled embeddings under `rule`.
    pub fn scaled_distance(&self, probe: &Embedding, rule: DistanceRule) -> f32 {
        rule_distance(&self.scaled, &self.scaled_centroid, probe, rule)
    }
}

fn rule_distance(
    embeddings: &[Embedding],
    centroid: &Embedding,
    probe: &Embedding,
    rule: DistanceRule,
) -> f32 {
    let nearest = || {
        embeddings
            .iter()
            .map(|e| e.distance(probe))
            .fold(f32::INFINITY, f32::min)
    };
    match rule {
        DistanceRule::Nearest => nearest(),
        DistanceRule::Centroid => centroid.distance(probe),
        DistanceRule::Min => nearest().min(centroid.distance(probe)),
    }
}

/// Mean of the embeddings after dropping outliers: with 3 or more, those further from the plain mean than
/// twice the median distance are left out and the mean is taken again.
pub fn robust_centroid(embeddings: &[Embedding]) -> Embedding {
    let mean = |set: &[&Embedding]| -> Embedding {
        let dim = set.first().map_or(0, |e| e.0.len());
        let mut m = vec![0f32; dim];
        for e in set {
            for (a, b) in m.iter_mut().zip(&e.0) {
                *a += b;
            }
        }
        m.iter_mut().for_each(|a| *a /= set.len().max(1) as f32);
        Embedding(m)
    };
    let all: Vec<&Embedding> = embeddings.iter().collect();
    let first = mean(&all);
    if all.len() < 3 {
        return first;
    }
    let dists: Vec<f32> = all.iter().map(|e| e.distance(&first)).collect();
    let mut sorted = dists.clone();
    sorted.sort_by(f32::total_cmp);
    let median = sorted[sorted.len() / 2];
    let kept: Vec<&Embedding> = all
        .iter()
        .zip(&dists)
        .filter(|(_, d)| **d <= 2.0 * median)
        .map(|(e, _)| *e)
        .collect();
    if kept.is_empty() || kept.len() == all.len() {
        first
    } else {
        mean(&kept)
    }
}

/// Why a probe got the answer it got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchOutcome {
    /// Clearly one enrolled person.
    Match,
    /// Nobody is close enough.
    TooFar,
    /// Close to someone, but a second person is nearly as close.
    Ambiguous,
    /// Nobody is enrolled.
    EmptyGallery,
}

/// The answer for one probe.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MatchResult {
    /// The matched person, or `None` for unknown.
    pub person: Option<String>,
    /// Distance to the nearest person (matched or not); `None` when the gallery is empty.
    pub distance: Option<f32>,
    /// The nearest person even when the answer is unknown (for logs and tuning, never for access).
    pub nearest: Option<String>,
    /// Distance to the second-nearest person, if there is one.
    pub second_distance: Option<f32>,
    pub outcome: MatchOutcome,
}

/// Every enrolled person, ready for matching.
#[derive(Clone, Debug)]
pub struct Matcher {
    people: Vec<PersonModel>,
    pub params: MatchParams,
}

impl Matcher {
    pub fn new(people: Vec<PersonModel>, params: MatchParams) -> Self {
        Self { people, params }
    }

    pub fn people(&self) -> &[PersonModel] {
        &self.people
    }

    /// Access level of an enrolled person.
    pub fn access_level(&self, name: &str) -> Option<&str> {
        self.people
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.access_level.as_str())
    }

    /// Open-set identification of one embedding.
    pub fn identify(&self, probe: &Embedding) -> MatchResult {
        self.identify_with(probe, &self.params)
    }

    /// [`Matcher::identify`] with other parameters (the live match threshold Home Assistant sets).
    pub fn identify_with(&self, probe: &Embedding, params: &MatchParams) -> MatchResult {
        let mut best: Option<(&PersonModel, f32)> = None;
        let mut second: Option<f32> = None;
        let probe_scaled = params.normalize.then(|| scaled(probe));
        for p in &self.people {
            let d = match &probe_scaled {
                Some(s) => p.scaled_distance(s, params.rule),
                None => p.distance(probe, params.rule),
            };
            // A NaN distance (a broken embedding) compares false with everything: make it infinitely far.
            let d = if d.is_nan() { f32::INFINITY } else { d };
            match best {
                Some((_, b)) if d >= b => second = Some(second.map_or(d, |s| s.min(d))),
                _ => {
                    second = best.map(|(_, b)| second.map_or(b, |s| s.min(b)));
                    best = Some((p, d));
                }
            }
        }
        let Some((p, d)) = best else {
            return MatchResult {
                person: None,
                distance: None,
                nearest: None,
                second_distance: None,
                outcome: MatchOutcome::EmptyGallery,
            };
        };
        // Within the threshold only by a real comparison: a NaN threshold is never a match.
        let within = matches!(
            d.partial_cmp(&params.threshold),
            Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
        );
        let outcome = if !within {
            MatchOutcome::TooFar
        } else if second.is_some_and(|s| s - d < params.margin) {
            MatchOutcome::Ambiguous
        } else {
            MatchOutcome::Match
        };
        MatchResult {
            person: (outcome == MatchOutcome::Match).then(|| p.name.clone()),
            distance: Some(d),
            nearest: Some(p.name.clone()),
            second_distance: second,
            outcome,
        }
    }
}

#[cfg(test)]
#[path = "matcher_tests.rs"]
mod tests;
