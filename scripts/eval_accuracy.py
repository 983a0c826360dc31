#!/usr/bin/env python3
"""Accuracy of facegate against the face_recognition (dlib) library, on the access-control protocol.

Run with the reference venv (numpy, pillow, face_recognition):

    /var/cache/facegate/pyref/bin/python scripts/eval_accuracy.py [--facegate target/release/facegate] [--json]

Protocol (the same for both systems, the same images, this one script):
- Identity sets: ../shared/faces/identities (13 people) and, reported separately,
  ../shared/faces/identities_gray_lowres (42 subjects). Tight crops are padded before detection: each side
  gets a black border of half the image's width (left/right) and height (top/bottom), so a 150x150 crop
  becomes 300x300; padded RGB PNG copies go to a temporary directory that is deleted afterwards.
- Held-out people: the LAST TWO person folders in alphabetical order are never enrolled; all their images are
  impostor probes (identities: Mindy_Kaling, Simon_Helberg; gray: Webcam_karan096_s1, Webcam_karan096_s2).
- Every other person: the first 3 images (sorted by file name) are enrolled, the rest are genuine probes.
  When an image holds several faces, the largest box is that image's face.
- Every face found in ../shared/faces/negatives/people_scenes is an impostor probe too, EXCEPT the
  faceapijs_bbt*.jpg scenes: they show the Big Bang Theory cast, i.e. people enrolled from identities, so
  they are not impostors (and are left out of both sets). Non-images (the .mp4) are skipped.
- Per probe and enrolled person: the best-match distance (min Euclidean distance over that person's enrolled
  embeddings; the "centroid" rule uses the mean embedding instead).
  Verification: genuine = probe vs its own person, impostor = probe vs every other enrolled person -> ROC AUC,
  TAR at FAR = 1e-3. Access control (open set, nearest person, accept iff distance < t): the largest t with
  FAR <= 0.1 % where FAR counts impostor probes accepted as anyone and genuine probes accepted as the wrong
  person, and FRR counts genuine probes not accepted as themselves (no face found = rejected).
  Rank-1: nearest enrolled person is the right one (genuine probes with a face).
- Detection: share of (padded) identity images with a face; faces found over negatives/no_person.

face_recognition is run as its README does: face_locations (HOG, upsample 1) then face_encodings
(num_jitters=1, default 5-point landmarks). Its results are cached by image bytes under --cache.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_metrics as M  # noqa: E402

IMAGE_EXT = {".jpg", ".jpeg", ".png"}
ENROLL_PER_PERSON = 3
HELD_OUT = 2
FAR_TARGET = 1e-3
# facegate's gallery defaults (src/gallery/matcher.rs MatchParams::default): embeddings scaled to length sqrt(2),
# distance to the robust centroid, match iff distance <= DEFAULT_THRESHOLD and the second-nearest person is at
# least DEFAULT_MARGIN further.
# Here "accept iff d < t" (no tie ever happened at a threshold). Keep these in step with matcher.rs.
GALLERY_THRESHOLD = 0.53
GALLERY_MARGIN = 0.02


def images_in(folder):
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXT)


def pad_copy(src, dst):
    """Black border of half the width on the left and right, half the height on top and bottom; RGB PNG."""
    im = Image.open(src).convert("RGB")
    w, h = im.size
    px, py = w // 2, h // 2
    out = Image.new("RGB", (w + 2 * px, h + 2 * py), (0, 0, 0))
    out.paste(im, (px, py))
    dst.parent.mkdir(parents=True, exist_ok=True)
    out.save(dst, format="PNG")


def identity_set(root, tmp):
    """[(person, padded path, original name)], the held-out people, for one identity folder."""
    people = sorted(d.name for d in Path(root).iterdir() if d.is_dir())
    held = people[-HELD_OUT:]
    items = []
    for person in people:
        for src in images_in(Path(root) / person):
            dst = Path(tmp) / Path(root).name / person / (src.stem + ".png")
            pad_copy(src, dst)
            items.append((person, str(dst), src.name))
    return items, held


def scene_images(shared):
    scenes = [
        str(p)
        for p in images_in(Path(shared) / "faces/negatives/people_scenes")
        if not p.name.startswith("faceapijs_bbt")
    ]
    no_person = [str(p) for p in images_in(Path(shared) / "faces/negatives/no_person")]
    return scenes, no_person


# ---------------------------------------------------------------- systems: image paths -> faces per image


def run_face_recognition(paths, cache_dir):
    import face_recognition

    cache_path = Path(cache_dir) / "face_recognition_v1.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    out, t0, fresh = {}, time.time(), 0
    for path in paths:
        key = hashlib.sha1(Path(path).read_bytes()).hexdigest()
        if key not in cache:
            img = face_recognition.load_image_file(path)
            locs = face_recognition.face_locations(img)  # HOG, upsample 1
            encs = face_recognition.face_encodings(img, locs, num_jitters=1)
            cache[key] = [
                {"box": [left, top, right - left, bottom - top], "embedding": [float(v) for v in e]}
                for (top, right, bottom, left), e in zip(locs, encs)
            ]
            fresh += 1
        out[path] = cache[key]
    if fresh:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_text(json.dumps(cache))
    print(f"face_recognition: {len(paths)} images ({fresh} computed) in {time.time() - t0:.1f} s", file=sys.stderr)
    return out


def run_facegate(paths, binary, batch=64):
    """`facegate embed --json` over all images (one JSON object per line per image)."""
    out, errors, t0 = {}, {}, time.time()
    for i in range(0, len(paths), batch):
        chunk = paths[i : i + batch]
        res = subprocess.run([binary, "embed", "--json", *chunk], capture_output=True, text=True)
        for line in res.stdout.splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            obj = json.loads(line)
            if obj.get("error"):
                errors[obj["image"]] = obj["error"]
            out[obj["image"]] = obj.get("faces") or []
        missing = [p for p in chunk if p not in out]
        if missing:
            raise SystemExit(f"facegate gave no line for {missing[:3]}... (exit {res.returncode}): {res.stderr[-2000:]}")
    print(f"facegate: {len(paths)} images in {time.time() - t0:.1f} s, {len(errors)} per-file errors", file=sys.stderr)
    for p, e in list(errors.items())[:5]:
        print(f"  facegate error {p}: {e}", file=sys.stderr)
    return out


# ---------------------------------------------------------------- protocol


def largest(faces):
    if not faces:
        return None
    f = max(faces, key=lambda f: f["box"][2] * f["box"][3])
    return np.asarray(f["embedding"], dtype=np.float64)


def evaluate(items, held, scenes, results, rule, min_face=0):
    """All metrics of one system on one identity set."""
    dist_fn = {"nearest": M.best_match_distances, "centroid": M.centroid_distances,
               "gallery": M.facegate_distances, "robust": M.robust_centroid_distances,
               "min": M.gallery_distances}[rule]
    by_person = {}
    for person, path, _ in items:
        by_person.setdefault(person, []).append(path)
    gallery, enroll_missing, probe_list = {}, 0, []
    for person, paths in by_person.items():
        if person in held:
            probe_list += [(None, p) for p in paths]
            continue
        embs = [largest(results[p]) for p in paths[:ENROLL_PER_PERSON]]
        enroll_missing += sum(e is None for e in embs)
        embs = [e for e in embs if e is not None]
        if embs:
            gallery[person] = np.stack(embs)
        probe_list += [(person, p) for p in paths[ENROLL_PER_PERSON:]]
    probe_embs = [(truth, largest(results[p])) for truth, p in probe_list]
    scene_faces = [f for s in scenes for f in results[s] if min(f["box"][2], f["box"][3]) >= min_face]
    probe_embs += [(None, np.asarray(f["embedding"], dtype=np.float64)) for f in scene_faces]
    genuine, impostor, probes = [], [], []
    for truth, e in probe_embs:
        if e is None:
            probes.append({"truth": truth, "best": None, "distance": float("inf")})
            continue
        d = dist_fn(e, gallery)
        best = min(d, key=d.get)
        second = min((v for k, v in d.items() if k != best), default=float("inf"))
        ambiguous = rule in ("gallery", "robust", "min") and second - d[best] < GALLERY_MARGIN
        probes.append({"truth": truth, "best": best, "distance": d[best], "ambiguous": ambiguous})
        for person, v in d.items():
            (genuine if person == truth else impostor).append(v)
    n_scene_faces = len(scene_faces)
    return {
        "rule": rule,
        "enrolled_people": len(gallery),
        "enrolled_images": sum(len(v) for v in gallery.values()),
        "enroll_images_without_face": enroll_missing,
        "held_out_people": held,
        "impostor_probes_held_out": sum(1 for t, _ in probe_list if t is None),
        "impostor_probes_scene_faces": n_scene_faces,
        "min_scene_face_px": min_face,
        "roc_auc": M.roc_auc(genuine, impostor),
        "genuine_pairs": len(genuine),
        "impostor_pairs": len(impostor),
        "tar_at_far_1e-3": M.tar_at_far(genuine, impostor, FAR_TARGET),
        "open_set_at_far_0.1%": M.open_set_at_far(probes, FAR_TARGET),
        "open_set_at_0.6": M.open_set_at_threshold(probes, 0.6),
        "open_set_at_gallery_default": M.open_set_at_threshold(probes, GALLERY_THRESHOLD),
        "rank1": M.rank1(probes),
    }


def detection(items, no_person, results):
    found = sum(1 for _, p, _ in items if results[p])
    return {
        "identity_images": len(items),
        "identity_images_with_face": found,
        "detection_rate": found / len(items),
        "missed": [name for _, p, name in items if not results[p]],
        "no_person_images": len(no_person),
        "no_person_false_faces": sum(len(results[p]) for p in no_person),
    }


# ---------------------------------------------------------------- output


def fmt_pct(x):
    return "n/a" if x != x else f"{100 * x:.2f}%"


def print_tables(report):
    for ds, systems in report["datasets"].items():
        print(f"\n== {ds}")
        names = list(systems)
        rows = [("system / rule", lambda r, d: "")]
        rows = [
            ("enrolled people / images", lambda r, d: f"{r['enrolled_people']} / {r['enrolled_images']}"),
            ("enroll images without face", lambda r, d: str(r["enroll_images_without_face"])),
            ("impostor probes held-out / scene faces",
             lambda r, d: f"{r['impostor_probes_held_out']} / {r['impostor_probes_scene_faces']}"),
            ("ROC AUC (gen / imp pairs)", lambda r, d: f"{r['roc_auc']:.5f} ({r['genuine_pairs']}/{r['impostor_pairs']})"),
            ("TAR @ FAR 1e-3 (thr)", lambda r, d: f"{fmt_pct(r['tar_at_far_1e-3']['tar'])} (<{r['tar_at_far_1e-3']['threshold']:.4f})"),
            ("  achieved FAR", lambda r, d: fmt_pct(r["tar_at_far_1e-3"]["far_achieved"])),
            ("open-set FRR @ FAR<=0.1%", lambda r, d: fmt_pct(r["open_set_at_far_0.1%"]["frr"])),
            ("  threshold (accept if d <)", lambda r, d: f"{r['open_set_at_far_0.1%']['threshold']:.4f}"),
            ("  FAR achieved (FA / probes)", lambda r, d: "{} ({}/{})".format(
                fmt_pct(r["open_set_at_far_0.1%"]["far"]), r["open_set_at_far_0.1%"]["false_accepts"],
                r["open_set_at_far_0.1%"]["genuine_probes_with_face"] + r["open_set_at_far_0.1%"]["impostor_probes"])),
            ("  genuine accepted / probes", lambda r, d: "{}/{}".format(
                r["open_set_at_far_0.1%"]["genuine_accepted"], r["open_set_at_far_0.1%"]["genuine_probes"])),
            ("  FRR over probes with a face", lambda r, d: fmt_pct(r["open_set_at_far_0.1%"]["frr_detected_only"])),
            ("open-set @ d<0.6: FRR / FAR (FA)", lambda r, d: "{} / {} ({})".format(
                fmt_pct(r["open_set_at_0.6"]["frr"]), fmt_pct(r["open_set_at_0.6"]["far"]),
                r["open_set_at_0.6"]["false_accepts"])),
            (f"open-set @ d<{GALLERY_THRESHOLD}: FRR / FAR (FA)", lambda r, d: "{} / {} ({})".format(
                fmt_pct(r["open_set_at_gallery_default"]["frr"]), fmt_pct(r["open_set_at_gallery_default"]["far"]),
                r["open_set_at_gallery_default"]["false_accepts"])),
            ("rank-1 (probes)", lambda r, d: f"{fmt_pct(r['rank1']['rank1'])} ({r['rank1']['probes']})"),
            ("detection rate (images)", lambda r, d: "{} ({}/{})".format(
                fmt_pct(d["detection_rate"]), d["identity_images_with_face"], d["identity_images"])),
            ("false faces on no_person", lambda r, d: f"{d['no_person_false_faces']} ({d['no_person_images']} images)"),
        ]
        cols = [f"{n}" for n in names]
        width = max(len(r[0]) for r in rows) + 2
        colw = 28
        print("".ljust(width) + "".join(c.ljust(colw) for c in cols))
        for label, fn in rows:
            cells = [fn(systems[n]["accuracy"], systems[n]["detection"]) for n in names]
            print(label.ljust(width) + "".join(c.ljust(colw) for c in cells))
        shown = set()
        for n in names:
            system = n.split(" (")[0]
            missed = systems[n]["detection"]["missed"]
            if missed and system not in shown:
                shown.add(system)
                print(f"  {system} found no face in: {', '.join(missed[:12])}{' ...' if len(missed) > 12 else ''}")


def main():
    repo = Path(__file__).resolve().parent.parent
    target = os.environ.get("CARGO_TARGET_DIR", str(repo / "target"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    shared = os.environ.get("FACEGATE_SHARED") or next(
        (str(c) for c in (repo.parent / "shared", repo.parent.parent / "shared") if (c / "faces").is_dir()), None)
    ap.add_argument("--shared", default=shared, help="folder with faces/ (default $FACEGATE_SHARED or ../shared)")
    ap.add_argument("--facegate", default=str(Path(target) / "release/facegate"), help="facegate binary")
    ap.add_argument("--systems", default="facegate,face_recognition")
    ap.add_argument("--datasets", default="identities,identities_gray_lowres")
    ap.add_argument("--rules", default="nearest,gallery",
                    help="matching rules: nearest (plain nearest neighbour), gallery (facegate's default matcher: "
                    "embeddings scaled to length sqrt(2), robust centroid, margin 0.02), robust (the same without "
                    "scaling), min (min of nearest and robust centroid, unscaled, margin 0.02), centroid (plain mean)")
    ap.add_argument("--min-face", type=int, default=0,
                    help="ignore scene faces whose box is smaller than this many pixels (both systems)")
    ap.add_argument("--cache", default="/var/cache/facegate/eval", help="face_recognition result cache")
    ap.add_argument("--common", action="store_true",
                    help="keep only identity images where every system found a face (embedding-only comparison)")
    ap.add_argument("--json", action="store_true", help="print the whole report as JSON instead of tables")
    ap.add_argument("--save-results", help="write every system's faces per image (boxes, embeddings) to this JSON")
    ap.add_argument("--load-results", help="read faces per image from a --save-results file instead of running")
    args = ap.parse_args()

    systems = args.systems.split(",")
    scenes, no_person = scene_images(args.shared)
    report = {"protocol": __doc__.split("Protocol")[1].split("face_recognition is run")[0].strip(),
              "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "datasets": {}}
    with tempfile.TemporaryDirectory(prefix="facegate-eval-") as tmp:
        sets = {ds: identity_set(Path(args.shared) / "faces" / ds, tmp) for ds in args.datasets.split(",")}
        paths = [p for items, _ in sets.values() for _, p, _ in items] + scenes + no_person
        results = {}
        tag = lambda path: path.replace(tmp, "<tmp>")  # noqa: E731  (temporary folder names differ per run)
        loaded = json.loads(Path(args.load_results).read_text()) if args.load_results else {}
        for s in systems:
            if s in loaded:
                results[s] = {p: loaded[s][tag(p)] for p in paths}
            elif s == "face_recognition":
                results[s] = run_face_recognition(paths, args.cache)
            elif s == "facegate":
                results[s] = run_facegate(paths, args.facegate)
            else:
                raise SystemExit(f"unknown system {s}")
        if args.save_results:
            Path(args.save_results).write_text(
                json.dumps({s: {tag(p): faces for p, faces in r.items()} for s, r in results.items()}))
        for ds, (items, held) in sets.items():
            if args.common:
                # Only identity images in which every system found a face: compares the embeddings on the same
                # faces, leaving detection out (detection is reported separately, on all images).
                items = [it for it in items if all(results[s][it[1]] for s in systems)]
            report["datasets"][ds] = {}
            for s in systems:
                det = detection(items, no_person, results[s])
                for rule in args.rules.split(","):
                    acc = evaluate(items, held, scenes, results[s], rule, args.min_face)
                    report["datasets"][ds][f"{s} ({rule})"] = {"accuracy": acc, "detection": det}
    if args.json:
        print(json.dumps(report, indent=1, default=float))
    else:
        print(f"facegate accuracy evaluation, {report['date_utc']} UTC")
        print_tables(report)


if __name__ == "__main__":
    main()
