#!/usr/bin/env python3
"""Compares two `strata bench` documents, plaintext and TLS with token authentication:
produce MB/s at the maximum rate, ack p99 at the latency load, and consume MB/s, per point,
with the goal TLS >= 80% of plaintext MB/s. Exit status 0 either way: it reports."""

import json
import sys


def points(doc):
    out = {}
    for p in doc.get("points") or []:
        out[(p["size"], p["partitions"], p["ack"])] = p
    return out


def consume(doc):
    """(partitions, pass) -> the pass, for the cold (from storage) and cached reads."""
    out = {}
    for c in doc.get("consume") or []:
        for kind in ("cold", "cached"):
            out[(c.get("partitions"), kind)] = c.get(kind) or {}
    return out


def mb(run):
    return (run or {}).get("mb_per_s") or 0.0


def p99(run):
    return ((run or {}).get("ack") or {}).get("p99_ms")


def main():
    plain = json.load(open(sys.argv[1]))
    tls = json.load(open(sys.argv[2]))
    a, b = points(plain), points(tls)
    print(f"{'point':<22} {'plain MB/s':>10} {'TLS MB/s':>9} {'ratio':>6}   {'plain p99':>9} {'TLS p99':>8}")
    ratios = []
    for key in sorted(a):
        if key not in b:
            continue
        pa, pb = a[key], b[key]
        ma, mb_ = mb(pa.get("max")), mb(pb.get("max"))
        ratio = mb_ / ma if ma else 0.0
        ratios.append(ratio)
        la, lb = p99(pa.get("at_load")), p99(pb.get("at_load"))
        name = f"{key[0]} B, {key[1]} p, {key[2]}"
        fmt = lambda v: f"{v:.1f} ms" if v is not None else "-"
        print(f"{name:<22} {ma:>10.2f} {mb_:>9.2f} {ratio:>6.0%}   {fmt(la):>9} {fmt(lb):>8}")
    ca, cb = consume(plain), consume(tls)
    for key in sorted(ca, key=str):
        if key in cb:
            x, y = mb(ca[key]), mb(cb[key])
            ratio = y / x if x else 0.0
            ratios.append(ratio)
            print(f"{'consume ' + str(key[0]) + ' p ' + str(key[1]):<22} {x:>10.2f} {y:>9.2f} {ratio:>6.0%}")
    for name, doc in (("plain", plain), ("TLS", tls)):
        waits = [
            f"{c.get('partitions')} p "
            + (
                "not measured"
                if not c.get("settle_measured")
                else f"{c.get('settle_secs', 0):.0f} s"
                + ("" if c.get("settled") else " (still writing: compaction overlapped the read)")
            )
            for c in doc.get("consume") or []
        ]
        if waits:
            print(f"{name}: waited for compaction before reading: {', '.join(waits)}")
    if ratios:
        worst = min(ratios)
        verdict = "met" if worst >= 0.8 else "NOT met"
        print(f"goal TLS >= 80% of plaintext MB/s: worst {worst:.0%}, {verdict}")
    else:
        print("no comparable points")


if __name__ == "__main__":
    main()
