#!/usr/bin/env bash
# Installs a current Home Assistant (2026.2.3) for the tests that prove facegate's MQTT discovery on today's HA.
# HA 2024.4+ needs a newer Python than this machine's 3.11, so it lives in a Debian trixie chroot (Python 3.13)
# under the cache, installed with HA's own package_constraints.txt (../shared/TESTBED.md).
#
# Idempotent and quiet when done: stamps hold exactly what each stage installed, a stage that changed is
# redone, an interrupted first build is thrown away and restarted. Every command that needs /proc or /dev in
# the chroot runs in a private mount namespace (`unshare --mount`), so those mounts vanish with the process,
# even when it is killed: nothing stays mounted under the cache, and the chroot is only ever deleted after
# checking that nothing is mounted below it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

HA_VERSION="2026.2.3"
SUITE="trixie"
MIRROR="${FACEGATE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
root="${FACEGATE_HA_CURRENT_ROOT:-$FACEGATE_CACHE/ha-current}"
# Debian packages in the chroot: Python with venv, and a compiler for the few wheels HA's pins lack for 3.13.
apt_want="python3 python3-venv python3-dev gcc libc6-dev ca-certificates"
# Home Assistant plus the requirements of what it always loads (frontend, backup, hardware, recorder, ...) and
# of the MQTT integration; versions come from HA's package_constraints.txt. HA runs with --skip-pip.
pip_want="homeassistant==$HA_VERSION paho-mqtt home-assistant-frontend psutil-home-assistant securetar
Pillow PyTurboJPEG SQLAlchemy fnv-hash-fast"

# Unmounts whatever is mounted at or below $1 in this namespace (deepest first); fails if anything stays.
unmount_below() {
  local dir
  dir=$(realpath -m "$1")
  local m
  for m in $(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  if awk -v d="$dir" '$2 == d || index($2, d "/") == 1 {found=1} END {exit !found}' /proc/mounts; then
    echo "error: something is still mounted under $dir; not deleting it" >&2
    return 1
  fi
}

# Deletes a chroot tree, never while anything is mounted inside it.
safe_rm() {
  [ -e "$1" ] || return 0
  unmount_below "$1"
  rm -rf --one-file-system "$1"
}

# Runs a command inside the chroot with /proc and /dev mounted in a private mount namespace, a clean
# environment (no PIP_FIND_LINKS pointing at host paths) and the host's CA bundle (copied in).
in_root() {
  unshare --mount --propagation private -- /bin/sh -c '
    set -e
    r="$1"; shift
    mount -t proc proc "$r/proc"
    mount --rbind /dev "$r/dev"
    exec chroot "$r" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      HOME=/root LANG=C.UTF-8 SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
      PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
      PIP_DEFAULT_TIMEOUT=180 UV_HTTP_TIMEOUT=180 "$@"
  ' sh "$root" "$@"
}

# Stage 1: the Debian trixie root file system, built in a side directory and renamed when complete.
base_stamp="$root/.facegate-base"
if [ ! -f "$base_stamp" ] || [ "$(cat "$base_stamp")" != "$SUITE $MIRROR" ]; then
  echo "== home assistant $HA_VERSION: debootstrap $SUITE into $root"
  command -v debootstrap >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  safe_rm "$root.partial"
  safe_rm "$root"
  # debootstrap mounts /proc and /sys in the target itself: its own namespace takes them away with it.
  unshare --mount --propagation private -- \
    debootstrap --variant=minbase "$SUITE" "$root.partial" "$MIRROR" >"$root.debootstrap.log" 2>&1 || {
    echo "debootstrap failed; last lines of $root.debootstrap.log:" >&2
    tail -20 "$root.debootstrap.log" >&2
    exit 1
  }
  unmount_below "$root.partial"
  mv "$root.partial" "$root"
  echo "$SUITE $MIRROR" >"$base_stamp"
fi

# The host's extra CA certificates (a TLS-inspecting proxy may sign registry traffic), every run: cheap, and a
# changed host CA must not break a later pip install.
mkdir -p "$root/usr/local/share/ca-certificates"
if [ -d /usr/local/share/ca-certificates ]; then
  cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

# Stage 2: Debian packages inside the chroot.
apt_stamp="$root/.facegate-apt"
if [ ! -f "$apt_stamp" ] || [ "$(cat "$apt_stamp")" != "$apt_want" ]; then
  echo "== home assistant $HA_VERSION: apt in the chroot: $apt_want"
  # `dpkg --configure -a` first: finishes whatever an interrupted earlier run left half-installed.
  in_root /bin/sh -c "DEBIAN_FRONTEND=noninteractive dpkg --configure -a && apt-get update -qq && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends $apt_want >/dev/null && update-ca-certificates >/dev/null && apt-get clean"
  echo "$apt_want" >"$apt_stamp"
fi

# Stage 3: Home Assistant in a venv at /opt/ha inside the chroot, pinned by its own package_constraints.txt
# (read from the wheel before installing, so every dependency resolves to what that release was tested with).
ha_stamp="$root/opt/ha/.facegate-stamp"
if [ ! -f "$ha_stamp" ] || [ "$(cat "$ha_stamp")" != "$pip_want" ]; then
  echo "== home assistant $HA_VERSION: venv in the chroot: $(echo $pip_want | tr '\n' ' ')"
  in_root /bin/sh -c "
    set -e
    rm -rf /opt/ha /opt/ha-dl
    python3 -m venv /opt/ha
    /opt/ha/bin/pip install -q uv
    mkdir -p /opt/ha-dl
    /opt/ha/bin/pip download -q --no-deps -d /opt/ha-dl homeassistant==$HA_VERSION
    /opt/ha/bin/python -c 'import sys, zipfile; sys.stdout.write(zipfile.ZipFile(sys.argv[1]).read(\"homeassistant/package_constraints.txt\").decode())' \
      /opt/ha-dl/homeassistant-$HA_VERSION-*.whl > /opt/ha/constraints.txt
    VIRTUAL_ENV=/opt/ha /opt/ha/bin/uv pip install -q --python /opt/ha/bin/python \
      -c /opt/ha/constraints.txt $(echo $pip_want | tr '\n' ' ')
    rm -rf /opt/ha-dl /root/.cache
  "
  echo "$pip_want" >"$ha_stamp"
fi

# Config dirs of HA instances the tests shared (statics, never dropped) stay in the chroot's /tmp: drop those
# untouched for two hours (a running HA writes its log and storage much more often).
find "$root/tmp" -mindepth 1 -maxdepth 1 -name 'ha-*' -type d -mmin +120 -exec rm -rf --one-file-system {} + 2>/dev/null || true
