# Strata container image: one `strata` binary, every role (`controller`, `broker`, `proxy`,
# `standalone`) picked by the first argument.
#
#   docker build -t strata .                 # builds the binary from source (needs registries)
#   scripts/image.sh                         # offline: host-built binary, debootstrap base
#
# There is one runtime definition (`runtime-base`); the two ways in only differ in where
# /usr/local/bin/ comes from:
#   runtime   (default, last stage)  COPY --from the `build` stage below
#   prebuilt  (--target prebuilt)    bin/ of the build context, which then has to be a
#                                    directory holding bin/strata (scripts/image.sh stages one)
# `prebuilt` sits before `build` on purpose: the legacy builder (no BuildKit) runs every stage
# up to the target, so stopping at `prebuilt` never touches the Rust image.

ARG BASE_IMAGE=debian:bookworm-slim
ARG RUST_IMAGE=rust:1.95-bookworm

FROM ${BASE_IMAGE} AS runtime-base
# Roots for s3:// endpoints over https. The offline base image ships them, so this RUN needs no
# network there; on the official slim image it installs them.
RUN set -eu; \
    if [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    groupadd --system --gid 10001 strata; \
    useradd --system --uid 10001 --gid strata --home-dir /var/lib/strata --create-home \
        --shell /usr/sbin/nologin strata; \
    mkdir -p /etc/strata; \
    chmod 0750 /var/lib/strata
# Only `standalone` reads STRATA_DATA_DIR; the server roles keep no local data.
# Container logs end up in files and log collectors, never a terminal: no colour codes.
ENV STRATA_DATA_DIR=/var/lib/strata/data \
    NO_COLOR=1
WORKDIR /var/lib/strata
USER 10001:10001
# 7070 proxy gRPC, 7071 broker gRPC, 7072 broker HTTP, 7073 proxy HTTP, 7080 admin REST,
# 9092 Kafka (set STRATA_KAFKA_ADVERTISED_ADDR to the address Kafka clients reach it by).
EXPOSE 7070 7071 7072 7073 7080 9092
ENTRYPOINT ["strata"]
# Without arguments the image is a one-process Strata reachable from outside the container
# (the binary's own defaults listen on 127.0.0.1 only).
CMD ["standalone", "--proxy-addr", "0.0.0.0:7070", "--proxy-http-addr", "0.0.0.0:7073", \
     "--admin-addr", "0.0.0.0:7080", "--broker-addr", "0.0.0.0:7071", \
     "--broker-http-addr", "0.0.0.0:7072", "--kafka-addr", "0.0.0.0:9092"]

# The detour through a context stage is for the legacy builder, which without --target builds
# every stage: on the repository root (no bin/) a plain `COPY bin/` would fail the source build.
FROM ${BASE_IMAGE} AS prebuilt-context
COPY . /context/
RUN mkdir -p /context/bin

FROM runtime-base AS prebuilt
COPY --from=prebuilt-context /context/bin/ /usr/local/bin/

FROM ${RUST_IMAGE} AS build
# etcd-client compiles etcd's .proto files with protoc at build time.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends protobuf-compiler \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Debug info is dropped but symbols stay, so panics still print function names.
RUN cargo build --release --locked -p strata \
    && mkdir -p /out/bin \
    && strip --strip-debug -o /out/bin/strata target/release/strata

FROM runtime-base AS runtime
COPY --from=build /out/bin/ /usr/local/bin/
