#!/usr/bin/env bash
# podman with facegate's own image storage under the cache ($FACEGATE_CACHE/podman), so base stand-ins and
# build layers survive between CI runs on one machine and never mix with the machine's other images.
# Usage: scripts/podman.sh ARGS... (exactly podman's arguments).
set -euo pipefail
source "$(dirname "$0")/env.sh"
store="$FACEGATE_CACHE/podman"
mkdir -p "$store/storage" "$store/run"
# overlay (kernel overlayfs as root): layers shared, not copied per build step as with vfs.
exec podman --root "$store/storage" --runroot "$store/run" --storage-driver overlay "$@"
