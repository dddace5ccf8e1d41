#!/usr/bin/env bash
# Bytes copied per byte received on the write path, measured (issue 17, item 6): starts
# `strata standalone`, attaches uprobes to glibc's memcpy/memmove entry points, sends a produce
# run with `strata bench` (1 KiB records, 8 partitions, buffered acks so no tailing consumer
# reads meanwhile), and sums the bytes of every copy of at least MIN_BYTES by the place in the
# code that made it (the first frame of the call stack that names a component).
#
#   scripts/copies.sh [SECONDS (default 3)]
#
# Needs root, perf and a tracefs (mounted here if missing). Environment: STRATA_BIN (default
# target/release/strata, built if missing), MIN_BYTES (default 1024: smaller copies are headers
# and keys, not record bytes), OUT (default target/bench/copies.txt).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-3}
BIN=${STRATA_BIN:-$ROOT/target/release/strata}
MIN_BYTES=${MIN_BYTES:-1024}
OUT=${OUT:-$ROOT/target/bench/copies.txt}
command -v perf >/dev/null || { echo "copies.sh: needs perf (Debian: linux-perf)" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "copies.sh: needs root for uprobes" >&2; exit 1; }
[[ -e /sys/kernel/tracing/uprobe_events ]] || mount -t tracefs nodev /sys/kernel/tracing
if [[ ! -x $BIN ]]; then
    (cd "$ROOT" && cargo build --release --quiet -p strata)
fi
LIBC=$(ldd "$BIN" | awk '/libc.so.6/ {print $3}')
# glibc picks one of these per CPU; probe them all, each records its length argument (rdx).
EVENTS=()
for f in __memmove_avx_unaligned_erms __memmove_evex_unaligned_erms __memmove_avx512_unaligned_erms \
         __memmove_sse2_unaligned_erms __memmove_sse2_unaligned __memmove_erms; do
    name=cp_${f#__}
    if ! perf probe -l 2>/dev/null | grep -q "probe_libc:$name "; then
        perf probe -q -x "$LIBC" --add "$name=$f n=%dx:u64" 2>/dev/null || continue
    fi
    EVENTS+=(-e "probe_libc:$name" --filter "n >= $MIN_BYTES")
done
[[ ${#EVENTS[@]} -gt 0 ]] || { echo "copies.sh: no memcpy entry point of $LIBC could be probed" >&2; exit 1; }
mkdir -p "$(dirname "$OUT")"
RUN=$(mktemp -d)
# shellcheck source=scripts/standalone-run.sh
source "$ROOT/scripts/standalone-run.sh"
PID=
PERF=
cleanup() {
    [[ -n $PERF ]] && kill -INT "$PERF" 2>/dev/null || true
    [[ -n $PID ]] && stop_standalone
    rm -rf "$RUN"
}
trap cleanup EXIT
start_standalone "$BIN" "$RUN"
scrape() { curl -s "http://127.0.0.1:$PH/metrics" | awk '$1 == "strata_proxy_produced_bytes_total" {print $2}'; }
# System-wide (a uprobe on a process attached with -p saw nothing here); the summary keeps
# the server's own copies.
perf record -q --call-graph dwarf,16384 "${EVENTS[@]}" -a -o "$RUN/perf.data" 2>"$RUN/perf.log" &
PERF=$!
sleep 1
before=$(scrape); before=${before:-0}
echo "copies: ${SECS}s of buffered 1 KiB records over 8 partitions, memcpy >= $MIN_BYTES B traced" >&2
"$BIN" bench --server "127.0.0.1:$P" --admin "127.0.0.1:$A" --what produce --sizes 1024 \
    --partitions 8 --acks buffered --warmup-secs 0.5 --measure-secs "$SECS" --label copies \
    >"$RUN/bench.txt" 2>&1 || { cat "$RUN/bench.txt" >&2; exit 1; }
after=$(scrape)
kill -INT "$PERF"; wait "$PERF" 2>/dev/null || true; PERF=
[[ -n ${KEEP_PERF:-} ]] && cp "$RUN/perf.data" "$(dirname "$OUT")/copies.perf.data"
echo "summing the copies by call site (perf script)" >&2
perf script -i "$RUN/perf.data" -F pid,event,trace,ip,sym 2>/dev/null \
    | python3 "$ROOT/scripts/copies_by_site.py" "$PID" "$before" "$after" | tee "$OUT"
