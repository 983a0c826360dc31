#!/usr/bin/env bash
# The add-on image's recipe (Dockerfile) without a container engine, into ROOT:
#   build   cargo build --locked --profile PROFILE, installed as ROOT/usr/bin/facegate   (Dockerfile stage "build")
#   models  scripts/fetch-models.sh ROOT/opt/facegate/models [LOCAL_DIR]: the same sha256-checked provisioning;
#           LOCAL_DIR (e.g. ../shared/models) stands in for the download where there is no internet ("models")
#   final   addon/run.sh as ROOT/run.sh, and a Supervisor-style ROOT/data/options.json     (final stage + /data)
# The image itself is built and run by scripts/image-build.sh and tests/addon_image.rs; this native form stays
# for quick runs of the start script against a test build.
#   start   ROOT/run.sh with the paths pointed into ROOT (exec: its exit code is the add-on's)
#
# usage: scripts/addon-native.sh ROOT --options FILE [--profile release|dev | --binary FILE] [--models-from DIR]
#                                 [--no-start]
# --binary installs an already-built facegate instead of building (the tests: `cargo test` holds the target
# directory's lock while tests run, so a cargo build inside one would wait forever).
# The environment is passed on to run.sh: SUPERVISOR_URL and SUPERVISOR_TOKEN (the MQTT service), FACEGATE_LOG.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

usage() {
  echo "usage: $0 ROOT --options FILE [--profile release|dev | --binary FILE] [--models-from DIR] [--no-start]" >&2
  exit 2
}
[ $# -ge 1 ] || usage
root="$1"
shift
options=""
profile="release"
binary=""
models_from=""
start=1
while [ $# -gt 0 ]; do
  case "$1" in
    --options) options="${2:?}"; shift 2 ;;
    --profile) profile="${2:?}"; shift 2 ;;
    --binary) binary="${2:?}"; shift 2 ;;
    --models-from) models_from="${2:?}"; shift 2 ;;
    --no-start) start=0; shift ;;
    *) usage ;;
  esac
done
[ -n "$options" ] || usage
[ -r "$options" ] || { echo "cannot read the options file $options" >&2; exit 2; }
mkdir -p "$root"
root="$(cd "$root" && pwd)"

if [ -n "$binary" ]; then
  echo "== build: using $binary" >&2
else
  echo "== build ($profile)" >&2
  (cd "$repo" && cargo build --locked --profile "$profile" --bin facegate)
  dir="$profile"
  [ "$profile" = "dev" ] && dir="debug"
  binary="${CARGO_TARGET_DIR:-$repo/target}/$dir/facegate"
fi
install -D "$binary" "$root/usr/bin/facegate"

echo "== models" >&2
bash "$repo/scripts/fetch-models.sh" "$root/opt/facegate/models" $models_from >&2

echo "== final" >&2
install -D -m 755 "$repo/addon/run.sh" "$root/run.sh"
install -D -m 600 "$options" "$root/data/options.json"

[ "$start" -eq 1 ] || exit 0
echo "== start" >&2
export FACEGATE_OPTIONS="$root/data/options.json"
export FACEGATE_BIN="$root/usr/bin/facegate"
export FACEGATE_MODELS="$root/opt/facegate/models"
export FACEGATE_RUNTIME_DIR="$root/run/facegate"
exec "$root/run.sh"
