#!/usr/bin/env bash
# Installs what building and testing Strata needs, if it is missing. Safe to run again.
#   scripts/setup.sh               everything the test suite needs
#   scripts/setup.sh --build-only  only what building needs
# Build:  protobuf-compiler (Debian) — etcd-client compiles etcd's .proto files with protoc
# Tests:  etcd-server (Debian), s3s-fs (crates.io, an S3-protocol server),
#         cargo-fuzz (crates.io, for the fuzz smoke run),
#         kcat (Debian) and a Python venv at target/kafka-venv with confluent-kafka and
#         kafka-python (PyPI, pinned below): the real Kafka clients of tests/tests/kafka_*.rs
set -euo pipefail

log() { printf '[setup] %s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/$1" ]; }
build_only=false
[ "${1:-}" = "--build-only" ] && build_only=true

apt_packages=()
have protoc || apt_packages+=(protobuf-compiler)
$build_only || have etcd || apt_packages+=(etcd-server)
$build_only || have kcat || apt_packages+=(kcat)
if [ ${#apt_packages[@]} -gt 0 ]; then
  log "installing ${apt_packages[*]} from Debian"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${apt_packages[@]}" >/dev/null
  # The etcd package may start a system etcd on the default ports; the tests start their own.
  $sudo_cmd systemctl disable --now etcd >/dev/null 2>&1 || true
fi
$build_only && exit 0
log "etcd: $(etcd --version 2>/dev/null | head -1)"

if ! have s3s-fs; then
  log "installing s3s-fs 0.14.1 (an S3-protocol server) from crates.io; takes a few minutes"
  cargo install s3s-fs@0.14.1 --features binary --locked --quiet
fi

if [ "${STRATA_SKIP_FUZZ:-0}" != 1 ] && ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz from crates.io"
  cargo install cargo-fuzz --locked --quiet
fi
# The Kafka client tests find this interpreter (or STRATA_KAFKA_PYTHON). confluent-kafka's
# wheel carries its own librdkafka, so nothing else is needed from Debian.
kafka_venv="$(cd "$(dirname "$0")/.." && pwd)/target/kafka-venv"
kafka_pins=(confluent-kafka==2.16.2 kafka-python==3.0.12)
kafka_check='import confluent_kafka, kafka
assert confluent_kafka.__version__ == "2.16.2", confluent_kafka.__version__
assert kafka.__version__ == "3.0.12", kafka.__version__'
if ! "$kafka_venv/bin/python" -c "$kafka_check" >/dev/null 2>&1; then
  log "installing ${kafka_pins[*]} into $kafka_venv"
  python3 -m venv "$kafka_venv"
  "$kafka_venv/bin/pip" install --quiet --disable-pip-version-check "${kafka_pins[@]}"
  "$kafka_venv/bin/python" -c "$kafka_check"
fi
log "ready"
