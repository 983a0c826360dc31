#!/usr/bin/env bash
# Soak: `facegate replay` loops a clip for a long stretch of media time while its memory (VmRSS) and open file
# descriptors are sampled; prints the samples and fails when either grew after the warm-up.
#   scripts/soak.sh [MEDIA_SECONDS=3600] [FPS=5] [CLIP=liveportrait_driving_d10] [SAMPLE_EVERY_S=20]
# FPS is the rate the clip is played at: a lower rate covers an hour of media time in fewer frames (each frame
# still runs the whole pipeline: detection, FaceMesh, embedding, anti-spoof, tracking, decisions).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
media_s="${1:-3600}" fps="${2:-5}" clip="${3:-liveportrait_driving_d10}" every="${4:-20}"
mjpeg="$(mktemp -d)/$clip.mjpeg"
scripts/clip-to-mjpeg.sh "$FACEGATE_SHARED/faces/blink/$clip.mp4" "$mjpeg"
cargo build --quiet
bin="$CARGO_TARGET_DIR/debug/facegate"
export FACEGATE_MODELS="${FACEGATE_MODELS:-$PWD/models:$FACEGATE_SHARED/models}"
out="$(mktemp)"
"$bin" replay --json --fps "$fps" --loop-for "$media_s" "$mjpeg" >"$out" 2>"$out.err" &
pid=$!
start=$(date +%s)
printf '%8s %10s %6s %8s\n' elapsed_s rss_kb fds events
samples=()
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l || true)
  [ -n "$rss" ] && {
    printf '%8d %10d %6d %8d\n' $(( $(date +%s) - start )) "$rss" "$fds" "$(wc -l <"$out")"
    samples+=("$rss $fds")
  }
  sleep "$every"
done
wait "$pid"
tail -1 "$out.err"
grep -o '"event":"[a-z_]*"' "$out" | sort | uniq -c
# Growth: the last sample against the one after the warm-up (the third), RSS within 5 %, fds equal.
n=${#samples[@]}
if [ "$n" -ge 4 ]; then
  read -r rss0 fd0 <<<"${samples[2]}"
  read -r rss1 fd1 <<<"${samples[$((n - 1))]}"
  echo "after warm-up: rss ${rss0} kB -> ${rss1} kB, fds ${fd0} -> ${fd1}"
  [ "$fd1" -le "$fd0" ] || { echo "open files grew" >&2; exit 1; }
  [ "$rss1" -le $(( rss0 * 105 / 100 )) ] || { echo "memory grew more than 5 %" >&2; exit 1; }
fi
