#!/usr/bin/env bash
# Runs every facegate test: formatting, lints, unit and integration tests against the real models and photos
# in ../shared. Installs what it needs first (idempotent; caches live in /var/cache/facegate).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
# Benches (criterion) are compiled by clippy above but not run here: their harness rejects test flags.
cargo test --locked --lib --bins --tests -- --test-threads=2
