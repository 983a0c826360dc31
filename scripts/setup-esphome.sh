#!/usr/bin/env bash
# Installs ESPHome (the firmware tool) and aioesphomeapi (Home Assistant's own native-API client) into a venv
# under the cache, then builds the real host-platform firmware from firmware/*-host.yaml, cached by a hash of
# the YAML. Idempotent: a second run with nothing changed does nothing. Prints the firmware paths at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

venv="$FACEGATE_CACHE/esphome-venv"
want="esphome==2026.6.5 aioesphomeapi"
stamp="$venv/.facegate-stamp"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "== esphome venv: $want"
  python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >/dev/null
  "$venv/bin/pip" install -q $want
  echo "$want" > "$stamp"
fi

# Validate every firmware config (offline, ~1 s each) with the example secrets, in a scratch copy.
check="$(mktemp -d)"
trap 'rm -rf "$check"' EXIT
cp -r firmware/. "$check/"
cp firmware/secrets.example.yaml "$check/secrets.yaml"
for f in firmware/*.yaml; do
  case "$f" in *secrets*) continue ;; esac
  (cd "$check" && "$venv/bin/esphome" -q config "$(basename "$f")" >/dev/null) \
    || { echo "esphome config failed: $f" >&2; exit 1; }
done

# Real host-platform firmware (cached by a hash of the YAML; ~25 s each on an idle machine when not cached).
for name in lock-host lift-host; do
  scripts/firmware-build-host.sh "$venv" "firmware/$name.yaml" >/dev/null
done
