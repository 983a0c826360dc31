#!/usr/bin/env bash
# Installs what facegate's build and tests need on a fresh Debian machine. Idempotent and quiet when done.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

stamp="$FACEGATE_CACHE/apt.stamp"
# jq and curl: the add-on start script (addon/run.sh), run natively by the tests.
want="pkg-config jq curl"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "== apt: $want"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $want >/dev/null
  echo "$want" > "$stamp"
fi
# The build's own system packages (also what `scripts/demo.sh` installs).
scripts/setup-build.sh
rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt
if [ ! -d "$FACEGATE_SHARED/models" ] || [ ! -d "$FACEGATE_SHARED/faces" ]; then
  echo "missing $FACEGATE_SHARED/models or $FACEGATE_SHARED/faces: the tests read real models and photos from there" >&2
  exit 1
fi
# ESPHome (firmware validation, real host-platform firmware, Home Assistant's aioesphomeapi) for the ESPHome tests.
scripts/setup-esphome.sh
# ffmpeg, which turns the evaluation videos into MJPEG files and frame folders for the capture tests.
scripts/setup-media.sh
# mosquitto and Home Assistant 2024.3.3 (venv) for the MQTT discovery tests.
scripts/setup-ha.sh
# The current Home Assistant (2026.2.3 in a Debian trixie chroot, Python 3.13) for tests/ha_current.rs.
scripts/setup-ha-current.sh
# podman, tini, actionlint and the stand-in base image for the add-on image tests (tests/addon_image.rs,
# tests/addon_workflow.rs).
scripts/setup-image.sh
