#!/usr/bin/env bash
# Builds Strata's container images with no container registry: the base image comes from
# Debian's package mirror (debootstrap + docker import), the binaries from the host's cargo
# (the host is Debian bookworm too, so glibc matches). Safe to run again: base images are
# reused while their recipe is unchanged, and the rest is a fast docker build.
#
#   scripts/image.sh                 all images below
#   scripts/image.sh --runtime-only  only the base and strata:dev
#
# Images (local tags; docs/deploy.md):
#   strata-base:bookworm       Debian bookworm minbase + ca-certificates, also tagged
#                              debian:bookworm-slim so the Dockerfile resolves offline
#   strata-base-etcd:bookworm  the same + Debian's etcd-server (binary etcd)
#   strata:dev                 the runtime image: Dockerfile target `prebuilt` on strata-base,
#                              also tagged strata:{version} (the Helm chart's default tag)
#   strata-test:dev            the same runtime definition on strata-base-etcd, with strata,
#                              etcd and s3s-fs: the compose quickstart's etcd and S3, and the
#                              container fault tests
# Environment:
#   STRATA_BIN             binary to package (default: target/release/strata, built by cargo)
#   STRATA_IMAGE_TAG       tag of strata and strata-test (default: dev)
#   STRATA_DEBIAN_MIRROR   (default: http://deb.debian.org/debian)
#   STRATA_REBUILD_BASE=1  debootstrap again even if the base images exist
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
start=$(date +%s)
log() { printf '[image %3ss] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }
die() { log "error: $*"; exit 1; }

runtime_only=false
case "${1:-}" in
  --runtime-only) runtime_only=true ;;
  "") ;;
  *) die "unknown argument $1 (see the comment at the top of $0)" ;;
esac

tag=${STRATA_IMAGE_TAG:-dev}
mirror=${STRATA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
# Bump when the base recipe below changes, so existing machines rebuild their base once.
recipe=1
base=strata-base:$suite
base_etcd=strata-base-etcd:$suite
work=$root/target/image
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the docker daemon is not reachable (is it running? are you in the docker group?)"
# The offline path must only ever use local images; the legacy builder never pulls an image
# that is present, and it stops at --target without looking at later stages.
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}

have_base() {
  [ "${STRATA_REBUILD_BASE:-0}" != 1 ] &&
    [ "$(docker image inspect --format '{{ index .Config.Labels "org.strata.base-recipe" }}' "$1" 2>/dev/null)" = "$recipe" ]
}

# Trims what a container never needs; dpkg excludes keep later installs trimmed too.
slim_rootfs() {
  local fs=$1
  $sudo_cmd rm -rf "$fs"/var/lib/apt/lists/* "$fs"/var/cache/apt/* "$fs"/var/cache/debconf/*-old \
    "$fs"/usr/share/doc/* "$fs"/usr/share/man/* "$fs"/usr/share/info/* "$fs"/usr/share/locale/* \
    "$fs"/var/log/* "$fs"/tmp/* "$fs"/usr/sbin/policy-rc.d
  $sudo_cmd tee "$fs/etc/dpkg/dpkg.cfg.d/strata-slim" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
  # Docker mounts its own resolv.conf and hostname; the build host's must not leak in.
  $sudo_cmd sh -c ": > '$fs/etc/resolv.conf'; echo localhost > '$fs/etc/hostname'"
}

import_rootfs() {
  local fs=$1 image=$2
  $sudo_cmd tar --numeric-owner -C "$fs" -c . | docker import \
    --change "LABEL org.strata.base-recipe=$recipe" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$image" >/dev/null
}

build_bases() {
  # It lives in /usr/sbin, which a non-root PATH may lack.
  if ! command -v debootstrap >/dev/null && [ ! -x /usr/sbin/debootstrap ]; then
    log "installing debootstrap from Debian"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq debootstrap >/dev/null
  fi
  local fs=$work/rootfs fs_etcd=$work/rootfs-etcd
  $sudo_cmd rm -rf "$fs" "$fs_etcd"
  mkdir -p "$work"
  log "debootstrap $suite (minbase + ca-certificates) from $mirror; about a minute"
  $sudo_cmd debootstrap --variant=minbase --include=ca-certificates "$suite" "$fs" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed (log: $work/debootstrap.log)"; }

  log "adding etcd-server in a copy of the root file system"
  $sudo_cmd cp -a "$fs" "$fs_etcd"
  $sudo_cmd cp /etc/resolv.conf "$fs_etcd/etc/resolv.conf"
  # The package's postinst would start etcd; in an image build nothing may start.
  printf '#!/bin/sh\nexit 101\n' | $sudo_cmd tee "$fs_etcd/usr/sbin/policy-rc.d" >/dev/null
  $sudo_cmd chmod +x "$fs_etcd/usr/sbin/policy-rc.d"
  $sudo_cmd chroot "$fs_etcd" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends etcd-server >"$work/etcd-install.log" 2>&1 ||
    { tail -20 "$work/etcd-install.log" >&2; die "installing etcd-server failed"; }

  slim_rootfs "$fs"
  slim_rootfs "$fs_etcd"
  log "importing $base and $base_etcd"
  import_rootfs "$fs" "$base"
  import_rootfs "$fs_etcd" "$base_etcd"
  $sudo_cmd rm -rf "$fs" "$fs_etcd"
}

if have_base "$base" && have_base "$base_etcd"; then
  log "reusing $base and $base_etcd (STRATA_REBUILD_BASE=1 rebuilds them)"
else
  build_bases
fi
# The Dockerfile's default base; a real debian:bookworm-slim pulled on an online machine is
# left alone (the Dockerfile works on both).
slim_label=$(docker image inspect --format '{{ index .Config.Labels "org.strata.base-recipe" }}' debian:bookworm-slim 2>/dev/null || echo absent)
if [ "$slim_label" = absent ] || { [ -n "$slim_label" ] && [ "$slim_label" != "<no value>" ]; }; then
  docker tag "$base" debian:bookworm-slim
fi

# The binary: whatever cargo considers current, unless the caller names one.
if [ -n "${STRATA_BIN:-}" ]; then
  bin=$STRATA_BIN
else
  log "cargo build --release -p strata (a no-op when it is up to date)"
  cargo build --release --quiet -p strata
  bin=$root/target/release/strata
fi
[ -x "$bin" ] || die "no strata binary at $bin"

# Debug info is dropped, symbols kept: the same as the Dockerfile's source build.
stage_bin() {
  local src=$1 dest=$2
  if command -v strip >/dev/null; then
    strip --strip-debug -o "$dest" "$src"
  else
    cp "$src" "$dest"
  fi
}

build_image() {
  local image=$1 base_image=$2 ctx=$3
  log "docker build $image (Dockerfile target prebuilt on $base_image)"
  # Output goes to a log: the legacy builder's deprecation banner would drown the progress.
  docker build --quiet --file "$root/Dockerfile" --target prebuilt \
    --build-arg "BASE_IMAGE=$base_image" --tag "$image" "$ctx" >"$work/build.log" 2>&1 ||
    { cat "$work/build.log" >&2; die "docker build $image failed"; }
}

ctx=$work/ctx-runtime
rm -rf "$ctx" && mkdir -p "$ctx/bin"
stage_bin "$bin" "$ctx/bin/strata"
build_image "strata:$tag" "$base" "$ctx"
# A binary linked against a newer glibc than bookworm's (a host other than bookworm) fails
# here rather than in a cluster.
docker run --rm "strata:$tag" --version >/dev/null 2>"$work/run.log" ||
  { cat "$work/run.log" >&2; die "the binary does not run in $base (built on a host newer than Debian $suite?)"; }
# The chart's default image tag is its appVersion, i.e. the binary's version.
version=$("$bin" --version | awk '{print $2}')
if [ -n "$version" ]; then
  docker tag "strata:$tag" "strata:$version"
  log "tagged strata:$version"
fi

if ! $runtime_only; then
  s3s=$(command -v s3s-fs || true)
  [ -n "$s3s" ] || [ ! -x "$HOME/.cargo/bin/s3s-fs" ] || s3s=$HOME/.cargo/bin/s3s-fs
  if [ -z "$s3s" ]; then
    log "installing s3s-fs 0.14.1 (an S3-protocol server) from crates.io; takes a few minutes"
    cargo install s3s-fs@0.14.1 --features binary --locked --quiet
    s3s=$HOME/.cargo/bin/s3s-fs
  fi
  ctx=$work/ctx-test
  rm -rf "$ctx" && mkdir -p "$ctx/bin"
  stage_bin "$bin" "$ctx/bin/strata"
  stage_bin "$s3s" "$ctx/bin/s3s-fs"
  build_image "strata-test:$tag" "$base_etcd" "$ctx"
fi
rm -rf "$work"/ctx-*

# docker trims leading blanks from --format output, so the indent is added afterwards.
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' |
  grep -E '^(strata|strata-test|strata-base|strata-base-etcd|debian):(dev|bookworm|bookworm-slim|[0-9.]+)' | sed 's/^/  /' >&2 || true
log "done"
