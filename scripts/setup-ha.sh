#!/usr/bin/env bash
# Installs the real Home Assistant side of the MQTT tests: mosquitto (the broker HA users run) from apt, and
# Home Assistant core 2024.3.3 (the newest that runs on Python 3.11) in a venv under the cache. A plain
# `pip install homeassistant==2024.3.3` drifts onto newer transitive deps that break HA (../shared/TESTBED.md),
# so uv resolves as of the release date, plus the requirements HA loads at start (it runs with --skip-pip).
# Idempotent and quiet when done: a stamp holds exactly what was installed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

if ! command -v mosquitto >/dev/null || ! command -v mosquitto_sub >/dev/null; then
  echo "== apt: mosquitto mosquitto-clients"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients >/dev/null
fi

venv="$FACEGATE_CACHE/ha-venv"
want="homeassistant==2024.3.3 paho-mqtt==1.6.1 home-assistant-frontend==20240307.0 psutil-home-assistant
securetar janus Pillow PyTurboJPEG SQLAlchemy==2.0.27 fnv-hash-fast"
cutoff="2024-03-30T00:00:00Z"
stamp="$venv/.facegate-stamp"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$cutoff $want" ]; then
  echo "== home assistant venv: $(echo $want | tr '\n' ' ')"
  python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
  "$venv/bin/pip" install -q uv
  # shellcheck disable=SC2086
  VIRTUAL_ENV="$venv" "$venv/bin/uv" pip install -q --python "$venv/bin/python" \
    --exclude-newer "$cutoff" $want
  echo "$cutoff $want" > "$stamp"
fi
