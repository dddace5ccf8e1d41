#!/usr/bin/env bash
# Memory of `strata standalone` through a burst of writes and the compaction after it (issue 17):
# starts standalone on a fresh data directory, samples its RSS and the data directory's size
# every second, sends a burst with `strata bench` (1 KiB records, 8 partitions, durable), then
# keeps sampling while compaction and garbage collection work, and prints the peaks.
#
#   scripts/burst-rss.sh [BURST_SECS (default 15)] [AFTER_SECS (default 120)]
#
# Environment: STRATA_BIN (default target/release/strata, built if missing), OUT (default
# target/bench/burst-rss.txt). Needs nothing else: standalone embeds metadata and storage.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BURST=${1:-15}
AFTER=${2:-120}
BIN=${STRATA_BIN:-$ROOT/target/release/strata}
OUT=${OUT:-$ROOT/target/bench/burst-rss.txt}
if [[ ! -x $BIN ]]; then
    (cd "$ROOT" && cargo build --release --quiet -p strata)
fi
mkdir -p "$(dirname "$OUT")"
RUN=$(mktemp -d)
# shellcheck source=scripts/standalone-run.sh
source "$ROOT/scripts/standalone-run.sh"
PID=
cleanup() {
    [[ -n $PID ]] && stop_standalone
    rm -rf "$RUN"
}
trap cleanup EXIT
start_standalone "$BIN" "$RUN"

# One line a second: elapsed seconds, RSS in MB, data directory in MB, phase.
PHASE_FILE=$RUN/phase
echo start >"$PHASE_FILE"
sample() {
    local t0=$SECONDS
    for _ in $(seq 1 $((BURST + AFTER + 120))); do
        local rss disk
        rss=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$PID/status" 2>/dev/null) || return 0
        # Garbage collection deletes files while du walks them; its size is still right.
        disk=$(du -sm "$RUN/data" 2>/dev/null | cut -f1) || true
        echo "$((SECONDS - t0)) $rss $disk $(cat "$PHASE_FILE")"
        sleep 1
    done
}
sample >"$RUN/samples" &
SAMPLER=$!

echo burst >"$PHASE_FILE"
echo "burst: ${BURST}s of durable 1 KiB records over 8 partitions" >&2
"$BIN" bench --server "127.0.0.1:$P" --admin "127.0.0.1:$A" --what produce --sizes 1024 \
    --partitions 8 --acks durable --warmup-secs 1 --measure-secs "$BURST" --label burst \
    >"$RUN/bench.txt" 2>&1 || { cat "$RUN/bench.txt" >&2; exit 1; }
written=$(curl -s "http://127.0.0.1:$BH/metrics" | awk '/^strata_broker_produced_bytes_total/ {print int($2/1e6)}')
echo after >"$PHASE_FILE"
echo "burst done: ${written} MB accepted; sampling ${AFTER}s of compaction and garbage collection" >&2
sleep "$AFTER"
kill "$SAMPLER" 2>/dev/null || true
metrics=$(curl -s "http://127.0.0.1:$BH/metrics")
counter() { awk -v name="$1" '$1 == name {print int($2)}' <<<"$metrics"; }
compactions=$(counter strata_broker_compactions_total)
flush_objects=$(counter strata_broker_flush_objects_total)
sections=$(counter strata_broker_flush_sections_total)
loads=$(counter strata_broker_compaction_object_loads_total)
shared=$(counter strata_broker_compaction_shared_sections_total)

{
    echo "strata standalone through a burst of ${written} MB (durable, 1 KiB, 8 partitions) and ${AFTER}s after it"
    echo "flush objects: ${flush_objects} holding ${sections} sections; compactions: ${compactions}, which"
    echo "  fetched ${loads} flush objects whole and took ${shared} sections from them"
    echo "settings: the shipped config (compaction_memory_bytes 128 MiB;"
    echo "  buffers: 32 MiB per partition in the broker, 256 MiB of read cache in the proxy)"
    awk '{ if ($2 > peak[$4]) peak[$4] = $2; if ($3 > disk[$4]) disk[$4] = $3; if (!($4 in first)) first[$4] = $2; last = $2; lastdisk = $3 }
         END { printf "RSS at start %d MB; peak during the burst %d MB; peak after it %d MB; at the end %d MB\n", first["start"] ? first["start"] : first["burst"], peak["burst"], peak["after"], last;
               printf "data directory: peak %d MB, at the end %d MB\n", (disk["burst"] > disk["after"] ? disk["burst"] : disk["after"]), lastdisk }' "$RUN/samples"
    echo "samples (s, RSS MB, data MB, phase):"
    awk 'NR % 5 == 1' "$RUN/samples" | sed 's/^/  /'
} | tee "$OUT"
