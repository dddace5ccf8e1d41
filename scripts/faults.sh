#!/usr/bin/env bash
# The fault suite (issue 6; docs/reliability.md).
#
#   scripts/faults.sh                 the short form: every scenario once in processes, the
#                                     partition/kill/pause scenarios in containers (what
#                                     `cargo test --workspace` runs)
#   scripts/faults.sh --containers    the short form, every scenario in containers too
#   scripts/faults.sh --long          the long form: random faults for STRATA_FAULT_MINUTES
#                                     (default 20) on one process cluster, then a table
#   scripts/faults.sh --long --containers   the long form against containers
#   scripts/faults.sh --release ...   with release binaries (builds them first; ~10 min)
#
# Environment: STRATA_FAULT_MINUTES, STRATA_FAULT_SEED (repeats a run's fault sequence),
# STRATA_FAULT_REPORT (file for the long form's table; default target/tmp/faults-long.md),
# STRATA_FAULTS_KNOWN_ISSUES=1 (fail on known product issues too), STRATA_FAULT_LOGS (where
# process and container logs go; default target/tmp/fault-logs), STRATA_TEST_LOG (the
# harness's own log filter).
set -euo pipefail
cd "$(dirname "$0")/.."

long=false
containers=false
profile=()
for arg in "$@"; do
  case "$arg" in
    --long) long=true ;;
    --containers) containers=true ;;
    --release) profile=(--release) ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument $arg (see $0 --help)" >&2; exit 2 ;;
  esac
done

# The tests find the strata binary next to themselves and never run cargo; build it first.
cargo build "${profile[@]}" -p strata -p strata-integration-tests --tests --quiet

if $long; then
  if $containers; then export STRATA_FAULT_MODE=container; else export STRATA_FAULT_MODE=process; fi
  export STRATA_FAULT_REPORT=${STRATA_FAULT_REPORT:-$PWD/target/tmp/faults-long.md}
  mkdir -p "$(dirname "$STRATA_FAULT_REPORT")"
  echo "long fault run: ${STRATA_FAULT_MINUTES:-20} min, $STRATA_FAULT_MODE mode; table → $STRATA_FAULT_REPORT" >&2
  exec cargo test "${profile[@]}" -p strata-integration-tests --test faults_long -- \
    --ignored --nocapture
fi

cargo test "${profile[@]}" -p strata-integration-tests --test faults -- --nocapture
if $containers; then
  exec cargo test "${profile[@]}" -p strata-integration-tests --test containers -- \
    --include-ignored --nocapture
fi
exec cargo test "${profile[@]}" -p strata-integration-tests --test containers -- --nocapture
