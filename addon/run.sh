#!/usr/bin/env bash
# Start script of the facegate add-on (the image's CMD; scripts/addon-native.sh runs it natively).
#  1. Checks the options (/data/options.json): a bad option stops here with a message naming it.
#  2. When mqtt.host is empty, asks the Supervisor for its MQTT service (the Mosquitto add-on) and fills in
#     host, port, username and password.
#  3. Says in the log what a fresh install still needs: a USB camera that is not there (the default
#     /dev/video0 on a machine without one) and the time zone access schedules follow (TZ, from the Supervisor).
#  4. Writes the effective options (readable by root only) and replaces itself with `facegate run`.
# The image runs this under Docker's init (`init: true`), which passes the Supervisor's environment on.
# Overridable for tests and native runs: FACEGATE_OPTIONS, FACEGATE_BIN, FACEGATE_RUNTIME_DIR, SUPERVISOR_URL.
set -euo pipefail

options="${FACEGATE_OPTIONS:-/data/options.json}"
facegate="${FACEGATE_BIN:-/usr/bin/facegate}"
runtime="${FACEGATE_RUNTIME_DIR:-/run/facegate}"
supervisor="${SUPERVISOR_URL:-http://supervisor}"

log() { echo "[facegate add-on] $*" >&2; }

if [ ! -r "$options" ]; then
  log "cannot read the options file $options"
  exit 1
fi
# Every problem at once, each naming its option (the same validation `facegate run` does).
"$facegate" config check --options "$options" >/dev/null

# A v4l2 camera whose device is missing: facegate starts anyway (its status in Home Assistant says
# "disconnected" and it retries, so a camera plugged in later is picked up), but the log says what to set.
jq -r '.cameras | to_entries[] | select(.value.source.type == "v4l2")
       | "\(.key)\t\(.value.name)\t\(.value.source.device // "")"' "$options" |
  while IFS=$'\t' read -r i name device; do
    if [ ! -c "$device" ]; then
      log "camera '$name': $device is not a video device here; plug in a USB camera, or set option cameras[$i].source (type http with the url of an MJPEG stream or JPEG snapshot, or v4l2 with the device of your camera)"
    fi
  done
if [ -n "${TZ:-}" ]; then
  log "time zone $TZ (access schedules follow it)"
else
  log "TZ is not set: access schedules follow UTC"
fi

host="$(jq -r '.mqtt.host // ""' "$options")"
umask 077
mkdir -p "$runtime"
effective="$runtime/options.json"
if [ -n "$host" ]; then
  log "MQTT broker from the options: $host:$(jq -r '.mqtt.port // 1883' "$options")"
  cp "$options" "$effective"
else
  if [ -z "${SUPERVISOR_TOKEN:-}" ]; then
    log "option mqtt.host is empty and there is no Supervisor to ask (SUPERVISOR_TOKEN is not set); set mqtt.host"
    exit 1
  fi
  if ! answer="$(curl -sS --max-time 10 -H "Authorization: Bearer $SUPERVISOR_TOKEN" "$supervisor/services/mqtt" 2>&1)"; then
    log "option mqtt.host is empty and the Supervisor cannot be reached ($answer); set mqtt.host"
    exit 1
  fi
  field() { jq -r "$1" <<<"$answer" 2>/dev/null || true; }
  # {"result": "ok", "data": {"host", "port", "ssl", "protocol", "username", "password", "addon"}}, or
  # {"result": "error", "message": "Service not enabled"} when no broker add-on provides the service.
  if [ "$(field '.result')" != "ok" ] || [ -z "$(field '.data.host // ""')" ]; then
    log "option mqtt.host is empty and the Supervisor has no MQTT broker to offer ($(field '.message // "no broker in its answer"')); install the Mosquitto broker add-on or set mqtt.host"
    exit 1
  fi
  if [ "$(field '.data.ssl')" = "true" ]; then
    log "the Supervisor's broker wants TLS; facegate connects without it unless mqtt.ca_file is set"
  fi
  jq --argjson d "$(jq '.data' <<<"$answer")" \
    '.mqtt.host = $d.host | .mqtt.port = ($d.port // 1883)
     | .mqtt.username = ($d.username // "") | .mqtt.password = ($d.password // "")' \
    "$options" >"$effective"
  log "MQTT broker from the Supervisor: $(jq -r '"\(.data.host):\(.data.port) (user \(.data.username // ""))"' <<<"$answer")"
fi

exec "$facegate" run --options "$effective"
