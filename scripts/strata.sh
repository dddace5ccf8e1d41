#!/usr/bin/env bash
# Builds the strata binary (installing build dependencies first if missing) and runs it:
#   scripts/strata.sh standalone
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --build-only
cargo build --release --quiet -p strata
exec target/release/strata "$@"
