#!/usr/bin/env bash
# Installs what building facegate needs on a fresh Debian machine, and nothing more (the demo calls this; the
# tests' setup.sh adds their real parts on top): pkg-config, and libclang, which the `v4l` crate's build
# (bindgen over the kernel's videodev2.h) loads. Rust itself must be there (rustup); without it this says so.
# Idempotent and quiet when done: a stamp holds exactly what was installed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

if ! command -v cargo >/dev/null; then
  echo "error: cargo not found. Install Rust first (https://rustup.rs: rustup with the stable toolchain), then rerun." >&2
  exit 1
fi
want="pkg-config libclang-dev"
stamp="$FACEGATE_CACHE/apt-build.stamp"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "== apt: $want"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $want >/dev/null
  echo "$want" > "$stamp"
fi
