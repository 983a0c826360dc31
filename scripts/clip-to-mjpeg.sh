#!/usr/bin/env bash
# Turns a video into an MJPEG file (concatenated JPEGs, what `facegate replay` and the capture tests read).
#   scripts/clip-to-mjpeg.sh IN OUT [FPS]
# Without FPS every source frame is kept (frame indexes then match the clip's, as the blink labels count them).
# The result is cached under $FACEGATE_CACHE/clips, keyed by the input's path, size, mtime and the options, so
# a test run converts each clip once per machine; OUT gets a copy (a hard link when on the same filesystem).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 IN OUT [FPS]" >&2
  exit 2
fi
in="$1" out="$2" fps="${3:-}"
[ -f "$in" ] || { echo "$0: no such video: $in" >&2; exit 1; }
command -v ffmpeg >/dev/null || "$here/setup-media.sh"

quality=3
key="$(realpath "$in")|$(stat -c '%s|%Y' "$in")|fps=$fps|q=$quality"
cache="$FACEGATE_CACHE/clips"
mkdir -p "$cache"
cached="$cache/$(printf '%s' "$key" | sha256sum | cut -c1-24).mjpeg"
if [ ! -s "$cached" ]; then
  filter=()
  [ -n "$fps" ] && filter=(-vf "fps=$fps")
  tmp="$cached.tmp.$$"
  # Full-range YUV 4:2:0 is what the mjpeg encoder writes without -strict; -q:v 3 keeps faces sharp.
  ffmpeg -nostdin -hide_banner -loglevel error -y -i "$in" "${filter[@]}" -an -pix_fmt yuvj420p \
    -c:v mjpeg -q:v "$quality" -f mjpeg "$tmp"
  mv "$tmp" "$cached"
fi
rm -f "$out"
ln "$cached" "$out" 2>/dev/null || cp "$cached" "$out"
