#!/usr/bin/env bash
# The whole system on this machine, with no hardware and no setup: builds facegate, puts the face
# models in place (sha256-checked: copied from ../shared/models when it is there, else downloaded from their
# pinned upstream), then runs `facegate demo`: an embedded MQTT broker, simulated ESPHome lock and lift boards,
# the bundled public-domain portraits enrolled and played as a camera film, narrated, with a summary at the end.
# Exits non-zero if any expected outcome did not happen. Extra arguments go to `facegate demo` (e.g. --hold to
# keep the live view and broker up at the end, --mqtt-host HOST to use your own broker).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# On a fresh machine: the build's system packages (pkg-config, libclang for the V4L2 bindings).
scripts/setup-build.sh

models="$FACEGATE_CACHE/models"
echo "== models -> $models"
if [ -d "$FACEGATE_SHARED/models" ]; then
  scripts/fetch-models.sh "$models" "$FACEGATE_SHARED/models" >/dev/null
else
  scripts/fetch-models.sh "$models" >/dev/null
fi

# The dev profile is optimised in this crate (opt-level 2, dependencies 3: about 130 ms per frame here) and is
# the build the tests use, so running the demo and then the tests compiles everything once, not twice.
echo "== cargo build"
cargo build --locked --quiet --bin facegate
bin="$CARGO_TARGET_DIR/debug/facegate"

echo "== facegate demo $*"
FACEGATE_MODELS="$models" exec "$bin" demo "$@"
