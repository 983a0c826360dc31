#!/usr/bin/env bash
# Latency and throughput of the live pipeline at 640x480 with one and with three live faces, passive liveness:
# real blink clips are scaled into 640x480 scenes at run time (ffmpeg; never committed), the people are enrolled
# from other frames of their clips, and `facegate replay` runs every frame and prints frame latency (arrival to
# end of processing: median, p95), fps, and the latency of the frames carrying a decision.
#   scripts/eval_latency.sh [PROFILE=debug]     (debug = the dev profile: our crate -O2, dependencies -O3)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
profile="${1:-debug}"
command -v ffmpeg >/dev/null || scripts/setup-media.sh
if [ "$profile" = release ]; then cargo build --quiet --release; else cargo build --quiet; fi
bin="$CARGO_TARGET_DIR/$profile/facegate"
export FACEGATE_MODELS="${FACEGATE_MODELS:-$PWD/models:$FACEGATE_SHARED/models}"
blink="$FACEGATE_SHARED/faces/blink"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }

# One face: d0 (512x512, 25 fps) scaled to 480x480 and centred on a 640x480 frame.
ff -i "$blink/liveportrait_driving_d0.mp4" -vf "scale=480:480,pad=640:480:80:0" -q:v 3 -f mjpeg "$work/one.mjpeg"
# Three faces: d0, d19, d20 scaled to 240x240, two above and one below, on a 640x480 frame (25 fps, as long as
# d0).
ff -i "$blink/liveportrait_driving_d0.mp4" -i "$blink/liveportrait_driving_d19.mp4" \
   -i "$blink/liveportrait_driving_d20.mp4" -filter_complex \
   "[0]scale=240:240,fps=25[a];[1]scale=240:240,fps=25[b];[2]scale=240:240,fps=25[c];[a][b][c]xstack=inputs=3:layout=0_0|240_0|120_240:shortest=1,pad=640:480:80:0[v]" \
   -map "[v]" -q:v 3 -f mjpeg "$work/three.mjpeg"

# Enroll each person from 3 frames of their own clip (other moments than the first second).
db="$work/facegate.db"
for clip in d0 d19 d20; do
  mkdir -p "$work/enroll_$clip"
  ff -ss 1.5 -i "$blink/liveportrait_driving_$clip.mp4" -vf fps=2 -frames:v 3 -q:v 2 "$work/enroll_$clip/%02d.jpg"
  "$bin" enroll --db "$db" --name "$clip" "$work/enroll_$clip"/*.jpg >/dev/null
done

for scene in one three; do
  echo "== $scene face(s), 640x480, passive liveness"
  "$bin" replay --json --fps 25 --db "$db" "$work/$scene.mjpeg" >"$work/$scene.jsonl" 2>"$work/$scene.err"
  grep -o '"verdict":{"kind":"[a-z_]*"' "$work/$scene.jsonl" | sort | uniq -c
  grep '"event":"decision"' "$work/$scene.jsonl" | grep -o '"frame":[0-9]*,"t":[0-9.]*,"decision":{"gate":"[^"]*","track_id":[0-9]*,"person":[^,]*' || true
  tail -1 "$work/$scene.err"
done
