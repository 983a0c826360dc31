#!/usr/bin/env bash
# Builds the add-on image from the Dockerfile with podman, the way the Supervisor builds it (BUILD_ARCH,
# BUILD_VERSION, no BUILD_FROM: the Dockerfile's default base), against local stand-ins of its base images
# (scripts/setup-image.sh) and never pulling (--pull=never).
#
# usage: scripts/image-build.sh [--binary FILE] [--models-from DIR] [--tag NAME]
#   --binary FILE      put FILE in as facegate (the Dockerfile's `prebuilt` stage) instead of compiling it in
#                      the image (`compiled`, the default: a release build inside the rust stand-in)
#   --models-from DIR  take the model files from DIR (sha256-checked) instead of downloading them (offline)
#   --tag NAME         image name (default localhost/facegate-addon:test)
#
# The build context is the working tree's files (tracked and untracked, not ignored) copied to
# $FACEGATE_CACHE/image-context; podman's storage and layer cache live in $FACEGATE_CACHE/podman
# (scripts/podman.sh), so a second build with the same inputs reuses every layer. Prints the build time and
# the image size at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
source scripts/env.sh

binary=""
models_from=""
tag="localhost/facegate-addon:test"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="${2:?}"; shift 2 ;;
    --models-from) models_from="${2:?}"; shift 2 ;;
    --tag) tag="${2:?}"; shift 2 ;;
    *) echo "usage: $0 [--binary FILE] [--models-from DIR] [--tag NAME]" >&2; exit 2 ;;
  esac
done
if [ -n "$binary" ]; then
  [ -x "$binary" ] || { echo "error: --binary $binary is not an executable file" >&2; exit 2; }
  scripts/setup-image.sh
else
  scripts/setup-image.sh --rust
fi
version="$(awk -F'"' '/^version:/ {print $2; exit}' config.yaml)"

# The context: what a checkout of this tree holds, plus the prebuilt parts. Rebuilt every time (a few MB).
ctx="$FACEGATE_CACHE/image-context"
rm -rf --one-file-system "$ctx"
mkdir -p "$ctx"
git -C "$repo" ls-files -z --cached --others --exclude-standard |
  (cd "$repo" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] || [ -L "$f" ] && printf "%s\0" "$f"; done' sh) |
  tar -C "$repo" --null -T - -cf - | tar -C "$ctx" -xf -
if [ -n "$binary" ]; then
  install -m 755 "$binary" "$ctx/addon/prebuilt/facegate"
fi
if [ -n "$models_from" ]; then
  mkdir -p "$ctx/addon/prebuilt/models"
  cp -a "$models_from/." "$ctx/addon/prebuilt/models/"
fi

start=$(date +%s.%N)
# --format docker: the OCI image format has no HEALTHCHECK (podman would drop it).
scripts/podman.sh build --isolation chroot --pull=never --layers --format docker \
  --build-arg BINARY="$([ -n "$binary" ] && echo prebuilt || echo compiled)" \
  --build-arg BUILD_ARCH=amd64 --build-arg BUILD_VERSION="$version" \
  --label io.hass.version="$version" --label io.hass.arch=amd64 --label io.hass.type=addon \
  -t "$tag" -f "$ctx/Dockerfile" "$ctx" >&2
end=$(date +%s.%N)
size=$(scripts/podman.sh image inspect --format '{{.Size}}' "$tag")
# Every build with a new binary leaves the previous image's layers behind: past 6 GB of storage, drop every
# image without a name (older builds and the layer cache; the next build redoes its steps, ~25 s here).
used_gb=$(du -s --block-size=1G "$FACEGATE_CACHE/podman" | cut -f1)
if [ "$used_gb" -gt 6 ]; then
  echo "image storage at ${used_gb} GB: pruning unnamed images" >&2
  scripts/podman.sh image prune -f >/dev/null || true
fi
echo "built $tag in $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}') s; image size $((size / 1000000)) MB"
