#!/usr/bin/env bash
# Speed and memory against the reference, in one run on this machine:
#  1. builds the release binary;
#  2. for each thread count, `facegate bench` and onnxruntime's YuNet (scripts/bench_yunet_ort.py) on the same
#     frames, one right after the other, and prints two ratios to onnxruntime's session.run (the network
#     alone): facegate's YuNet network alone on the same padded tensor ("network WxH" row: like for like),
#     and facegate's whole detect call (scaling, BGR conversion, network, decode, NMS: "detect" row);
#  3. peak memory (max RSS, /usr/bin/time -v) of `facegate identify` on a few photos against a small gallery.
# Usage: scripts/bench_reference.sh [RUNS]   (env: THREADS="1 2", ROUNDS=1, PY=python with onnxruntime,
#        FACEGATE_BIN)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
RUNS="${1:-50}"
THREADS="${THREADS:-1 2}"
ROUNDS="${ROUNDS:-1}"
PY="${PY:-$FACEGATE_CACHE/pyref/bin/python}"
FACES="$FACEGATE_SHARED/faces"
IMG="$FACES/misc/face_recognition/examples_obama-720p.jpg"
BIN="${FACEGATE_BIN:-$CARGO_TARGET_DIR/release/facegate}"
# The bench child and identify find the models through the default search path plus the shared folder.
export FACEGATE_MODELS="${FACEGATE_MODELS:-$FACEGATE_SHARED/models}"

# FACEGATE_BIN=PATH measures that binary instead of building (the shared target dir may hold another tree's).
[ -n "${FACEGATE_BIN:-}" ] || cargo build --release --locked --quiet
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# ROUNDS > 1 alternates the two ROUNDS times (RUNS timed runs each) so both see the same mix of load from
# other jobs; the table then gives the median of the rounds' medians and the minimum over all runs.
for r in $(seq "$ROUNDS"); do
  for t in $THREADS; do
    echo "== round $r, $t thread(s): facegate bench, then onnxruntime YuNet" >&2
    "$BIN" bench --json --thread-counts "$t" --runs "$RUNS" --image "$IMG" > "$tmp/facegate_${t}_$r.json"
    "$PY" scripts/bench_yunet_ort.py --json --threads "$t" --runs "$RUNS" --image "$IMG" \
      --models "$FACEGATE_SHARED/models" > "$tmp/ort_${t}_$r.json"
  done
done

"$PY" - "$tmp" "$ROUNDS" $THREADS <<'EOF'
import json, statistics, sys
tmp, rounds, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3:]


def merge(stats):
    """One round's stats as they are; several rounds: median of the medians / p95s, minimum of the minimums."""
    med = lambda key: statistics.median(s[key] for s in stats)
    return {"median_ms": med("median_ms"), "p95_ms": med("p95_ms"), "min_ms": min(s["min_ms"] for s in stats)}


def load(t):
    fgs = [json.load(open(f"{tmp}/facegate_{t}_{r}.json"))["children"][0] for r in range(1, rounds + 1)]
    orts = [json.load(open(f"{tmp}/ort_{t}_{r}.json")) for r in range(1, rounds + 1)]
    child = fgs[0]
    for i, size in enumerate(child["sizes"]):
        sizes = [c["sizes"][i] for c in fgs]
        for j, (name, _) in enumerate(size["stages"]):
            size["stages"][j][1] = merge([z["stages"][j][1] for z in sizes])
        for key in ("detect_network", "pipeline"):
            size[key] = merge([z[key] for z in sizes])
    ort = orts[0]
    for i, res in enumerate(ort["results"]):
        res["run"] = merge([o["results"][i]["run"] for o in orts])
    child["peak_rss_mib"] = max(c["peak_rss_mib"] for c in fgs)
    return child, ort


# Two ratios, both against onnxruntime's session.run (the network alone, on the padded input tensor):
#   network: facegate's YuNet forward pass alone on the same padded tensor (like for like);
#   detect:  facegate's whole detect call (scale down, BGR floats, network, decode, NMS).
# Ratios of medians, and of minimums (the fastest run of each: less sensitive to other load on the machine).
print(f"{'thr':>3} {'frame':>9} | {'stage':<16} {'median ms':>9} {'p95 ms':>8} {'min ms':>7} | "
      f"{'ort YuNet med':>13} {'p95':>6} {'min':>6} | {'med / ort':>9} {'min / ort':>9}")
for t in threads:
    child, ort = load(t)
    for size in child["sizes"]:
        o = next(r for r in ort["results"] if (r["width"], r["height"]) == (size["width"], size["height"]))
        assert list(o["input"]) == list(size["network_input"]), (o["input"], size["network_input"])
        net = f"network {size['network_input'][0]}x{size['network_input'][1]}"
        rows = size["stages"][:1] + [[net, size["detect_network"]]] + size["stages"][1:]
        for name, st in rows + [["PIPELINE", size["pipeline"]]]:
            extra = ""
            if name in ("detect", net):
                r = o["run"]
                ratio, rmin = st["median_ms"] / r["median_ms"], st["min_ms"] / r["min_ms"]
                extra = (f"{r['median_ms']:>13.2f} {r['p95_ms']:>6.2f} {r['min_ms']:>6.2f} | "
                         f"{ratio:>8.2f}x {rmin:>8.2f}x")
            print(f"{t:>3} {size['width']}x{size['height']:<4} | {name:<16} {st['median_ms']:>9.2f} "
                  f"{st['p95_ms']:>8.2f} {st['min_ms']:>7.2f} | {extra}")
    print(f"    peak RSS of the bench child: {child['peak_rss_mib']:.1f} MiB; rayon threads {child['rayon_threads']}; "
          f"models loaded in {child['load_ms']:.0f} ms; onnxruntime {ort['onnxruntime']}")
EOF

echo "== peak memory of facegate identify" >&2
K="$FACES/misc/face_recognition"
"$BIN" enroll --db "$tmp/gallery.db" --name obama "$K/examples_knn_examples_train_obama_obama.jpg" \
  "$K/examples_knn_examples_train_obama_obama2.jpg" > /dev/null
"$BIN" enroll --db "$tmp/gallery.db" --name biden "$K/examples_knn_examples_train_biden_biden.jpg" \
  "$K/examples_knn_examples_train_biden_biden2.jpg" > /dev/null
probes=("$K/examples_obama-1080p.jpg" "$K/examples_obama-720p.jpg" "$K/examples_obama-480p.jpg"
  "$K/examples_biden.jpg" "$K/examples_two_people.jpg" "$K/examples_knn_examples_test_obama_and_biden.jpg"
  "$K/examples_knn_examples_test_kit_with_rose.jpg" "$FACES/negatives/people_scenes/coco_000000005001.jpg")
/usr/bin/time -v "$BIN" identify --db "$tmp/gallery.db" "${probes[@]}" > "$tmp/identify.txt" 2> "$tmp/time.txt" || {
  cat "$tmp/time.txt" >&2; exit 1; }
rss_kb="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/time.txt")"
wall="$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$tmp/time.txt")"
echo "facegate identify: ${#probes[@]} images (incl. 1920x1080), gallery 2 people x 2 images:" \
  "max RSS $((rss_kb / 1024)) MiB (${rss_kb} KiB), wall ${wall} (target < 300 MB)"
