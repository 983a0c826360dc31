#!/usr/bin/env bash
# Installs what capture needs: ffmpeg, which the capture tests use to turn the evaluation videos in
# ../shared/faces into MJPEG files and image folders at test time (media is never committed), and libclang,
# which the `v4l` crate's build (bindgen over the kernel's videodev2.h) loads. Idempotent and quiet when done:
# a stamp holds exactly what was installed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

want="ffmpeg libclang-dev"
stamp="$FACEGATE_CACHE/apt-media.stamp"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! command -v ffmpeg >/dev/null; then
  echo "== apt: $want"
  apt-get update -qq
  # --no-install-recommends: the codecs are all in the ffmpeg package; recommends pull in X11 and sound servers.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $want >/dev/null
  echo "$want" > "$stamp"
fi
