#!/usr/bin/env python3
"""Sums `perf script` output of memcpy uprobes (`n=<bytes>`, with call chains) by call site.

Usage: perf script -F pid,event,trace,ip,sym ... | copies_by_site.py PID BYTES_BEFORE BYTES_AFTER
where PID is the server whose copies count, and the two numbers are the proxy's strata_proxy_produced_bytes_total before and after the
traced run: the bytes received, which every copied byte is divided by.

A copy's site is the first Rust path of its stack, from the top, that belongs to a component
rather than to the copying machinery (memcpy, realloc, core/alloc/std, the bytes crate); a
stack that passed through a buffer's growth (realloc) is marked, since that copy moves bytes
that were already copied once.
"""
import re
import sys
from collections import defaultdict

PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)+")
MACHINERY = re.compile(r"^(core|alloc|std|bytes|__rust)::")
GROWTH = re.compile(r"realloc|grow|reserve")


def site_of(frames):
    """The first component path of the stack, marked when the copy grew a buffer."""
    growth = any(GROWTH.search(f) for f in frames)
    for frame in frames:
        match = PATH.search(frame.replace(" (inlined)", ""))
        if not match or MACHINERY.search(match.group(0)):
            continue
        site = "::".join(match.group(0).split("::")[:4])
        return site + ("  (growing a buffer)" if growth else "")
    return "(no component frame)"


def main():
    pid, before, after = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    received = max(after - before, 1.0)
    sites = defaultdict(lambda: [0, 0])
    n = None
    frames = []

    def flush():
        if n is not None:
            entry = sites[site_of(frames)]
            entry[0] += 1
            entry[1] += n

    for line in sys.stdin:
        match = re.search(r"\bn=(\d+)", line)
        if match and not line.startswith("\t") and "probe_libc" in line:
            flush()
            ours = line.split()[0] == pid
            n, frames = (int(match.group(1)) if ours else None), []
        elif line.strip() and n is not None:
            fields = line.split(None, 1)
            if len(fields) == 2:
                frames.append(fields[1].strip())
    flush()
    total = sum(b for _, b in sites.values())
    print(f"bytes received by the proxy (record batches): {received / 1e6:.1f} MB")
    print(f"bytes copied in user space (memcpy >= the traced minimum): {total / 1e6:.1f} MB, "
          f"{total / received:.2f} per byte received")
    print(f"{'copies':>9} {'MB':>9} {'per byte':>9}  site")
    for site, (count, nbytes) in sorted(sites.items(), key=lambda kv: -kv[1][1]):
        if nbytes / received < 0.005:
            continue
        print(f"{count:>9} {nbytes / 1e6:>9.1f} {nbytes / received:>9.3f}  {site}")


if __name__ == "__main__":
    main()
