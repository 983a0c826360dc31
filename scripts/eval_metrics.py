"""Metrics of the access-control protocol used by scripts/eval_accuracy.py (numpy only).

Distances are Euclidean between 128-d embeddings; a probe is accepted when its distance is strictly below a
threshold. Every function returns plain numbers (or dicts of them) together with the counts behind them, so a
reader can see how coarse each figure is (e.g. with 150 probes, FAR <= 0.1 % means zero false accepts).

Run `python scripts/eval_metrics.py` to check the metric code on synthetic data with known answers.
"""

import math

import numpy as np


def best_match_distances(probe, gallery):
    """Distance from one probe embedding to each enrolled person: min over that person's enrolled embeddings.

    gallery: {person: array (n_i, 128)}. Returns {person: distance}.
    """
    return {p: float(np.min(np.linalg.norm(embs - probe, axis=1))) for p, embs in gallery.items()}


def centroid_distances(probe, gallery):
    """Distance from one probe embedding to each enrolled person's mean embedding (an alternative rule)."""
    return {p: float(np.linalg.norm(embs.mean(axis=0) - probe)) for p, embs in gallery.items()}


def robust_centroid(embs):
    """facegate's gallery centroid (src/gallery/matcher.rs): the mean; with 3 or more embeddings, those further
    from that mean than twice the median distance (sorted[n // 2]) are dropped and the mean taken again."""
    mean = embs.mean(axis=0)
    if len(embs) < 3:
        return mean
    d = np.linalg.norm(embs - mean, axis=1)
    median = np.sort(d)[len(d) // 2]
    kept = embs[d <= 2.0 * median]
    return mean if len(kept) in (0, len(embs)) else kept.mean(axis=0)


SCALED_NORM = math.sqrt(2.0)


def scaled(e):
    """facegate's `matcher::scaled`: the embedding(s) scaled to length sqrt(2) (rows, for a 2-d array)."""
    e = np.asarray(e, dtype=np.float64)
    n = np.linalg.norm(e, axis=-1, keepdims=True)
    return np.where(n > 0, e * (SCALED_NORM / np.where(n > 0, n, 1.0)), 0.0)


def robust_centroid_distances(probe, gallery):
    """Distance to each person's robust centroid (`DistanceRule::Centroid` with `normalize` off)."""
    return {p: float(np.linalg.norm(robust_centroid(e) - probe)) for p, e in gallery.items()}


def facegate_distances(probe, gallery):
    """facegate's default matcher (`MatchParams::default()`): probe and enrolled embeddings scaled to length
    sqrt(2), distance to the robust centroid of the scaled embeddings."""
    return robust_centroid_distances(scaled(probe), {p: scaled(e) for p, e in gallery.items()})


def gallery_distances(probe, gallery):
    """facegate's `DistanceRule::Min`: the smaller of nearest-embedding and robust-centroid distance."""
    near = best_match_distances(probe, gallery)
    return {p: min(near[p], float(np.linalg.norm(robust_centroid(e) - probe))) for p, e in gallery.items()}


def roc_auc(genuine, impostor):
    """P(a genuine distance < an impostor distance), ties count 1/2 (Mann-Whitney U on distances)."""
    g = np.asarray(genuine, dtype=np.float64)
    i = np.asarray(impostor, dtype=np.float64)
    if len(g) == 0 or len(i) == 0:
        return float("nan")
    allv = np.concatenate([g, i])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv), dtype=np.float64)
    sorted_v = allv[order]
    # Average ranks over ties.
    idx = 0
    while idx < len(sorted_v):
        j = idx
        while j + 1 < len(sorted_v) and sorted_v[j + 1] == sorted_v[idx]:
            j += 1
        ranks[order[idx : j + 1]] = (idx + j) / 2.0 + 1.0
        idx = j + 1
    # Rank-sum of impostors: larger impostor distances = better separation.
    r_imp = ranks[len(g) :].sum()
    u = r_imp - len(i) * (len(i) + 1) / 2.0
    return float(u / (len(g) * len(i)))


def threshold_at_far(impostor, far):
    """The largest threshold t (accept iff d < t) that accepts at most floor(far * n) impostor distances.

    Returns (t, allowed_false_accepts). t is the (k+1)-th smallest impostor distance, or +inf when k >= n.
    """
    imp = np.sort(np.asarray(impostor, dtype=np.float64))
    k = int(math.floor(far * len(imp) + 1e-9))
    if k >= len(imp):
        return float("inf"), k
    return float(imp[k]), k


def tar_at_far(genuine, impostor, far):
    """Verification TAR at a target FAR: dict with tar, the threshold, the achieved FAR and the counts."""
    t, k = threshold_at_far(impostor, far)
    g = np.asarray(genuine, dtype=np.float64)
    i = np.asarray(impostor, dtype=np.float64)
    return {
        "tar": float(np.mean(g < t)) if len(g) else float("nan"),
        "threshold": t,
        "far_achieved": float(np.mean(i < t)) if len(i) else float("nan"),
        "false_accepts_allowed": k,
        "genuine_pairs": int(len(g)),
        "impostor_pairs": int(len(i)),
    }


def open_set_outcomes(probes, threshold):
    """Access-control outcome of every probe at one threshold (nearest person, accepted iff d < threshold).

    probes: list of dicts {"truth": person or None (impostor), "best": person or None (no face),
    "distance": float (inf when no face), optional "ambiguous": True when the second-nearest person is within
    the matcher's margin (then the probe is never accepted, whatever the threshold)}. Returns counts: genuine probes accepted as themselves, genuine
    probes accepted as someone else (a false accept), impostor probes accepted (a false accept).
    """
    ok = wrong = imp_acc = 0
    for p in probes:
        accepted = p["best"] is not None and not p.get("ambiguous") and p["distance"] < threshold
        if p["truth"] is None:
            imp_acc += accepted
        elif accepted and p["best"] == p["truth"]:
            ok += 1
        elif accepted:
            wrong += 1
    return ok, wrong, imp_acc


def open_set_at_far(probes, far):
    """FRR at the largest threshold whose open-set FAR <= far.

    FAR = (impostor probes accepted as anyone + genuine probes accepted as a wrong person) / all probes with a
    face. FRR = genuine probes not accepted as themselves / all genuine probes (a probe where no face was found
    is a rejection: the door stays shut). Also returns the FRR over genuine probes with a face only.
    With the nearest-person rule the false-accept count only grows with the threshold, so the threshold is
    just the (k+1)-th smallest distance among the probes that would be false accepts.
    """
    with_face = [p for p in probes if p["best"] is not None]
    n_fa_possible = len(with_face)
    k = int(math.floor(far * n_fa_possible + 1e-9))
    fa_dists = sorted(
        p["distance"]
        for p in with_face
        if not p.get("ambiguous") and (p["truth"] is None or p["best"] != p["truth"])
    )
    t = float(fa_dists[k]) if k < len(fa_dists) else float("inf")
    if t == float("inf"):
        # Nothing could be falsely accepted: any threshold works; report the largest genuine distance + eps.
        gen = [p["distance"] for p in with_face if p["truth"] is not None]
        t = (max(gen) + 1e-6) if gen else float("inf")
    return open_set_at_threshold(probes, t) | {"false_accepts_allowed": k}


def open_set_at_threshold(probes, t):
    """Open-set FAR / FRR at a given threshold, with the counts."""
    ok, wrong, imp_acc = open_set_outcomes(probes, t)
    n_gen = sum(1 for p in probes if p["truth"] is not None)
    n_gen_face = sum(1 for p in probes if p["truth"] is not None and p["best"] is not None)
    n_imp_face = sum(1 for p in probes if p["truth"] is None and p["best"] is not None)
    n_face = n_gen_face + n_imp_face
    return {
        "threshold": t,
        "far": (wrong + imp_acc) / n_face if n_face else float("nan"),
        "frr": 1.0 - ok / n_gen if n_gen else float("nan"),
        "frr_detected_only": 1.0 - ok / n_gen_face if n_gen_face else float("nan"),
        "false_accepts": wrong + imp_acc,
        "impostors_accepted": imp_acc,
        "genuine_accepted_as_wrong_person": wrong,
        "genuine_accepted": ok,
        "genuine_probes": n_gen,
        "genuine_probes_with_face": n_gen_face,
        "impostor_probes": n_imp_face,
    }


def rank1(probes):
    """Closed-set rank-1 accuracy over genuine probes with a face: nearest enrolled person is the right one."""
    gen = [p for p in probes if p["truth"] is not None and p["best"] is not None]
    if not gen:
        return {"rank1": float("nan"), "probes": 0}
    return {"rank1": sum(p["best"] == p["truth"] for p in gen) / len(gen), "probes": len(gen)}


def _self_test():
    rng = np.random.default_rng(7)
    # AUC: perfect, inverted, random, ties.
    assert roc_auc([0.1, 0.2], [0.5, 0.6, 0.7]) == 1.0
    assert roc_auc([0.5, 0.6], [0.1, 0.2]) == 0.0
    assert roc_auc([0.3], [0.3]) == 0.5
    assert abs(roc_auc([0.1, 0.4], [0.2, 0.5]) - 0.75) < 1e-12
    g = rng.normal(0.4, 0.1, 4000)
    i = rng.normal(0.8, 0.1, 4000)
    # Two normals with unit-free separation d = 0.4 / (0.1 * sqrt(2)): AUC = Phi(d / 1) = Phi(2.828) = 0.99766.
    assert abs(roc_auc(g, i) - 0.99766) < 0.002, roc_auc(g, i)
    # AUC equals the brute-force pair count.
    gs, is_ = g[:300], i[:300]
    brute = np.mean((gs[:, None] < is_[None, :]) + 0.5 * (gs[:, None] == is_[None, :]))
    assert abs(roc_auc(gs, is_) - brute) < 1e-12
    # TAR at FAR: 1000 impostors 0.001..1.000, k = 1 allowed -> threshold = 2nd smallest = 0.002.
    imp = np.arange(1, 1001) / 1000.0
    r = tar_at_far([0.0005, 0.0015, 0.5], imp, 1e-3)
    assert r["threshold"] == 0.002 and r["false_accepts_allowed"] == 1, r
    assert abs(r["tar"] - 2 / 3) < 1e-12 and abs(r["far_achieved"] - 0.001) < 1e-12, r
    # Fewer than 1000 impostors: zero false accepts allowed, threshold = smallest impostor.
    r = tar_at_far([0.1, 0.3], [0.2, 0.9], 1e-3)
    assert r["threshold"] == 0.2 and r["tar"] == 0.5 and r["far_achieved"] == 0.0, r
    # Best-match distances.
    gal = {"a": np.array([[0.0, 0.0], [1.0, 0.0]]), "b": np.array([[0.0, 3.0]])}
    d = best_match_distances(np.array([0.9, 0.0]), gal)
    assert abs(d["a"] - 0.1) < 1e-12 and abs(d["b"] - math.hypot(0.9, 3.0)) < 1e-12, d
    assert abs(centroid_distances(np.array([0.5, 0.0]), gal)["a"]) < 1e-12
    # Open set: genuine a (0.2 ok), genuine b best=a at 0.5 (wrong), impostor at 0.4, impostor no face,
    # genuine c with no face.
    probes = [
        {"truth": "a", "best": "a", "distance": 0.2},
        {"truth": "a", "best": "a", "distance": 0.45},
        {"truth": "b", "best": "a", "distance": 0.5},
        {"truth": None, "best": "b", "distance": 0.4},
        {"truth": None, "best": None, "distance": float("inf")},
        {"truth": "c", "best": None, "distance": float("inf")},
    ]
    r = open_set_at_far(probes, 1e-3)
    # 4 probes with a face, k = 0: threshold = smallest false-accept distance = 0.4 (impostor).
    assert r["threshold"] == 0.4 and r["false_accepts"] == 0 and r["genuine_accepted"] == 1, r
    assert abs(r["frr"] - 3 / 4) < 1e-12 and abs(r["frr_detected_only"] - 2 / 3) < 1e-12, r
    r = open_set_at_threshold(probes, 0.6)
    assert r["false_accepts"] == 2 and r["impostors_accepted"] == 1, r
    assert r["genuine_accepted_as_wrong_person"] == 1 and abs(r["far"] - 2 / 4) < 1e-12, r
    # FAR 0.5 allows k = 2 of 4: threshold = +inf side -> largest genuine distance + eps.
    r = open_set_at_far(probes, 0.5)
    assert r["false_accepts"] == 2 and r["genuine_accepted"] == 2, r
    assert rank1(probes) == {"rank1": 2 / 3, "probes": 3}
    # An ambiguous impostor is never accepted: the threshold moves up to the wrong-person genuine at 0.5.
    probes[3]["ambiguous"] = True
    r = open_set_at_far(probes, 1e-3)
    assert r["threshold"] == 0.5 and r["genuine_accepted"] == 2 and r["false_accepts"] == 0, r
    assert open_set_at_threshold(probes, 9.0)["impostors_accepted"] == 0
    # Robust centroid: one outlier of four is dropped (mean of the rest), fewer than 3 = plain mean.
    embs = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0]])
    assert np.allclose(robust_centroid(embs), [0.1 / 3, 0.1 / 3]), robust_centroid(embs)
    assert np.allclose(robust_centroid(embs[[0, 3]]), [2.5, 2.5])
    gd = gallery_distances(np.array([0.0, 0.0]), {"x": embs})
    assert gd["x"] == 0.0
    # A synthetic identity experiment end to end: 20 people, clusters of radius ~0.25, centres ~1.4 apart.
    centres = rng.normal(0, 0.1, (22, 128))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True) / 1.0
    def sample(c, n):
        return centres[c] + rng.normal(0, 0.25 / math.sqrt(128), (n, 128))
    gallery = {c: sample(c, 3) for c in range(20)}
    ps = []
    for c in range(22):
        for e in sample(c, 5):
            dists = best_match_distances(e, gallery)
            best = min(dists, key=dists.get)
            ps.append({"truth": c if c < 20 else None, "best": best, "distance": dists[best]})
    r = open_set_at_far(ps, 1e-3)
    assert r["frr"] == 0.0 and r["false_accepts"] == 0, r
    assert rank1(ps)["rank1"] == 1.0
    print("eval_metrics self-test: ok")


if __name__ == "__main__":
    _self_test()
