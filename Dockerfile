# syntax=docker/dockerfile:1.7
#
# wazuh-misp container image.
#
#   docker build -t wazuh-misp:0.1.0 .
#   docker run --rm -p 9108:9108 -e WAZUH_MISP__KAFKA__BROKERS=broker:9092 wazuh-misp:0.1.0
#
# Builder: rdkafka (features ssl, default libz) builds librdkafka from source with its
# ./configure + make (cmake is only used if the cmake-build feature is turned on;
# libsasl2-dev only if the gssapi feature is). OpenSSL is linked dynamically against
# bookworm's libssl3, which the distroless cc-debian12 runtime ships; zlib is linked
# statically (LIBZ_SYS_STATIC=1) because distroless does not ship libz.
# The ldd check below fails the build if anything else is linked dynamically.

ARG RUST_VERSION=1
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM rust:${RUST_VERSION}-bookworm AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Versions come from the pinned bookworm base; pinning them again only breaks rebuilds.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libssl-dev libsasl2-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0 \
    LIBZ_SYS_STATIC=1
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin wazuh-misp \
 && install -D -m 0755 target/release/wazuh-misp /out/usr/local/bin/wazuh-misp \
 && strip --strip-debug /out/usr/local/bin/wazuh-misp
# Only libraries present in distroless/cc-debian12 may be linked dynamically.
RUN ldd /out/usr/local/bin/wazuh-misp \
 && if ldd /out/usr/local/bin/wazuh-misp | grep -vE 'linux-vdso|ld-linux|lib(c|m|dl|rt|pthread|gcc_s|ssl|crypto)\.so'; then \
      echo "unexpected dynamic dependency (not in the runtime image)" >&2; exit 1; \
    fi \
 && /out/usr/local/bin/wazuh-misp --help >/dev/null \
 && install -d -o 65532 -g 65532 -m 0750 /out/var/lib/wazuh-misp \
 && install -D -m 0644 config/default.toml /out/etc/wazuh-misp/config.toml

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="wazuh-misp" \
      org.opencontainers.image.description="Enrich Wazuh alerts on Kafka with MISP threat intelligence" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/usr/local/bin/wazuh-misp /usr/local/bin/wazuh-misp
COPY --from=builder /out/etc/wazuh-misp/config.toml /etc/wazuh-misp/config.toml
COPY --from=builder --chown=65532:65532 /out/var/lib/wazuh-misp /var/lib/wazuh-misp
# distroless :nonroot already runs as 65532; stated explicitly for other runtimes.
USER 65532:65532
EXPOSE 9108
VOLUME ["/var/lib/wazuh-misp"]
ENTRYPOINT ["/usr/local/bin/wazuh-misp"]
CMD ["run", "--config", "/etc/wazuh-misp/config.toml"]
