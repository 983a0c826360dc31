#!/usr/bin/env bash
# Builds a REAL ESPHome firmware for the `host` platform (a Linux binary serving the native API) from one of
# firmware/*-host.yaml, offline: `esphome compile --only-generate` writes the C++ sources and flags, and g++
# compiles them (the PlatformIO download that `esphome compile` needs is not available here).
# Cached under $FACEGATE_CACHE/firmware/<name>-<hash of the YAML files + ESPHome version>; prints the binary path.
# Usage: scripts/firmware-build-host.sh VENV firmware/lock-host.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
venv="$1"; yaml="$2"
name="$(basename "$yaml" .yaml)"
version="$("$venv/bin/esphome" version | awk '{print $2}')"
hash="$( (cat "$yaml" firmware/common/*.yaml; echo "$version") | sha256sum | cut -c1-16)"
out="$FACEGATE_CACHE/firmware/$name-$hash"
if [ -x "$out/firmware" ]; then echo "$out/firmware"; exit 0; fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r firmware/. "$work/"
cp firmware/secrets.example.yaml "$work/secrets.yaml"
(cd "$work" && "$venv/bin/esphome" -q compile --only-generate "$name.yaml" >&2)
build="$(ls -d "$work"/.esphome/build/*/ | head -1)"
# The -D/-W/-f/-std flags ESPHome generated for this build (platformio.ini build_flags).
flags="$(awk '/^build_flags =/{f=1;next} f&&/^ /{print;next} f{f=0}' "$build/platformio.ini" | sed -n '/-/p' | tr -d '\r' | xargs)"
objs="$work/obj"; mkdir -p "$objs"
i=0
pids=()
while IFS= read -r src; do
  i=$((i+1))
  case "$src" in *.c) cc=gcc; std="" ;; *) cc=g++; std="" ;; esac
  cflags="$flags"
  [ "$cc" = gcc ] && cflags="$(echo "$flags" | sed 's/-std=gnu++[0-9]*//; s/-fno-exceptions//')"
  $cc -O1 -w $cflags -I"$build/src" -c "$src" -o "$objs/$i.o" &
  pids+=($!)
  if [ "${#pids[@]}" -ge "$(nproc)" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done < <(find "$build/src" -name '*.cpp' -o -name '*.c')
for p in "${pids[@]}"; do wait "$p"; done
mkdir -p "$out.tmp"
g++ -o "$out.tmp/firmware" "$objs"/*.o -lpthread
rm -rf "$out"; mv "$out.tmp" "$out"
echo "$out/firmware"
