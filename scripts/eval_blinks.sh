#!/usr/bin/env bash
# Blink precision / recall per clip of ../shared/faces/blink against blink_events_approx.csv (±3 frames), for
# the natural-blink clips (the targets: recall >= 90 %, <= 1 false blink per minute, asserted) and the posed
# ones (reported only). The clips are converted to MJPEG at run time (scripts/clip-to-mjpeg.sh), never committed.
#   scripts/eval_blinks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
command -v ffmpeg >/dev/null || scripts/setup-media.sh
FACEGATE_EVAL_POSED=1 cargo test --test blinks -- --nocapture 2>&1 | grep -E '^(\||natural|test result|.*blinks at)'
