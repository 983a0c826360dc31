# syntax=docker/dockerfile:1
# The facegate add-on image. The Supervisor builds it on the user's machine (`docker buildx build` with
# BUILD_VERSION and BUILD_ARCH; no build.yaml, so BUILD_FROM keeps the default below), and the release
# workflow (.github/workflows/release.yaml) builds and publishes it per architecture.
#
#   compiled  the release binary, compiled from this source (the default; what users and the release get);
#   prebuilt  a binary already built outside, from addon/prebuilt/facegate (scripts/image-build.sh --binary:
#             the tests put the binary they built there instead of compiling facegate a second time);
#   runtime   Debian trixie slim + bash, curl, jq (the start script and the health check), tzdata (TZ for
#             access schedules), CA certificates (MQTT over TLS);
#   models    every model file of models/manifest.toml, sha256-checked: the committed ones copied, the others
#             downloaded from their pinned upstream commits (or taken from addon/prebuilt/models when there,
#             an offline copy);
#   final     runtime + binary + models + addon/run.sh as the CMD and addon/healthcheck.sh as the HEALTHCHECK.
#
# Why Debian slim and not Home Assistant's base image: facegate is one glibc binary that needs no s6 services,
# and with `init: true` (the default) Docker's own init is PID 1 and hands the Supervisor's environment
# (SUPERVISOR_TOKEN, TZ) straight to the CMD; under s6-overlay v3 the CMD would need with-contenv for that.
# It is also what can be reproduced faithfully without a registry (scripts/setup-image.sh: debootstrap).

ARG BUILD_FROM=docker.io/library/debian:trixie-slim
ARG BINARY=compiled

FROM docker.io/library/rust:1.95-slim-trixie AS compiled
# bindgen (the v4l crate's build) loads libclang; pkg-config for the build scripts.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libclang-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The dependencies first, in a layer of their own that only Cargo.toml/Cargo.lock change: a stand-in crate
# with the same targets (empty library, empty main, the declared bench and test files) builds every dependency.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches tests \
    && echo 'fn main() {}' > src/main.rs && : > src/lib.rs \
    && for b in $(sed -n '/^\[\[bench\]\]/,/^name/s/^name = "\(.*\)"/\1/p' Cargo.toml); do echo 'fn main() {}' > benches/$b.rs; done \
    && echo 'fn main() {}' > tests/capture_v4l2.rs \
    && cargo build --release --locked --bin facegate \
    && rm -rf src benches tests target/release/facegate* target/release/deps/facegate-* target/release/deps/libfacegate-* \
       target/release/.fingerprint/facegate-*
# Then facegate itself. Everything the source includes at compile time (include_bytes!/include_str!: the
# model manifest, the demo's media) is copied; tests/addon_manifest.rs checks that list.
COPY src ./src
COPY models ./models
COPY demo ./demo
# Declared in Cargo.toml, so they must exist for cargo to read the manifest; not built.
COPY benches ./benches
COPY tests ./tests
RUN cargo build --release --locked --bin facegate \
    && install -D target/release/facegate /out/usr/bin/facegate

FROM scratch AS prebuilt
# Only a README in git; scripts/image-build.sh --binary puts the binary there.
COPY addon/prebuilt/ /out/usr/bin/

FROM ${BINARY} AS binary

FROM ${BUILD_FROM} AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends bash ca-certificates curl jq tzdata \
    && rm -rf /var/lib/apt/lists/*

FROM runtime AS models
COPY models /src/models
COPY scripts/fetch-models.sh /src/scripts/fetch-models.sh
COPY addon/prebuilt/ /src/prebuilt/
RUN bash /src/scripts/fetch-models.sh /opt/facegate/models /src/prebuilt/models

FROM runtime
ARG BUILD_ARCH=amd64
ARG BUILD_VERSION=dev
COPY --from=binary /out/usr/bin/facegate /usr/bin/facegate
COPY --from=models /opt/facegate/models /opt/facegate/models
COPY addon/run.sh /run.sh
COPY addon/healthcheck.sh /healthcheck.sh
# (Modes come from the build context: no chmod, which would copy the binary into one more layer.)
RUN /usr/bin/facegate --version
# Models load in a few seconds; a camera that is gone makes /health say "degraded" (see healthcheck.sh).
HEALTHCHECK --start-period=60s --interval=30s --timeout=10s --retries=3 CMD ["/healthcheck.sh"]
LABEL io.hass.name="facegate" \
      io.hass.description="Face-recognition access control for Home Assistant" \
      io.hass.type="addon" \
      io.hass.arch="${BUILD_ARCH}" \
      io.hass.version="${BUILD_VERSION}" \
      io.hass.url="https://github.com/facegate/facegate" \
      org.opencontainers.image.title="facegate" \
      org.opencontainers.image.source="https://github.com/facegate/facegate" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${BUILD_VERSION}"
CMD ["/run.sh"]
