# syntax=docker/dockerfile:1
# The facegate add-on image, in three stages. scripts/addon-native.sh runs the same steps without a container
# engine (the CI has none) and its test starts the result, so this recipe is exercised on every CI run.
#
#   build   the release binary (rusqlite's bundled SQLite needs the C compiler the Rust image has);
#   models  every model file of models/manifest.toml, sha256-checked: the committed ones copied, the
#           GitHub-hosted ones (YuNet, MiniFASNet) downloaded from their pinned upstream commits;
#   final   Home Assistant's Debian base image (glibc, like the build; s6-overlay as PID 1, so config.yaml says
#           init: false; bashio, jq and curl for the start script), pinned to a release.

ARG BUILD_FROM=ghcr.io/home-assistant/base-debian:trixie-2026.06.1

FROM rust:1.95-slim-trixie AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY models ./models
# Declared in Cargo.toml, so they must exist for cargo to read the manifest; not built.
COPY benches ./benches
RUN cargo build --release --locked --bin facegate \
    && install -D target/release/facegate /out/usr/bin/facegate

FROM ${BUILD_FROM} AS models
COPY models /src/models
COPY scripts/fetch-models.sh /src/scripts/fetch-models.sh
RUN bash /src/scripts/fetch-models.sh /opt/facegate/models

FROM ${BUILD_FROM}
COPY --from=build /out/usr/bin/facegate /usr/bin/facegate
COPY --from=models /opt/facegate/models /opt/facegate/models
COPY addon/run.sh /run.sh
RUN chmod a+x /run.sh
CMD ["/run.sh"]
