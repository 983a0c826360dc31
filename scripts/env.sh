# Shared environment for facegate's scripts (sourced, not run).
export FACEGATE_CACHE="${FACEGATE_CACHE:-/var/cache/facegate}"
# Build products live outside the clone so a fresh clone on the same machine rebuilds only facegate itself.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$FACEGATE_CACHE/target}"
export FACEGATE_SHARED="${FACEGATE_SHARED:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/shared}"
mkdir -p "$FACEGATE_CACHE"
