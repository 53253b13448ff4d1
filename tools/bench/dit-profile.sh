#!/usr/bin/env bash
# Where a DiT forward spends its time, per part of the blocks: wall time and the time inside the GEMM kernels (oneDNN,
# SanaGraph's AMX kernel), so "the rest" is the element-wise steps and attention cores. Two warm-up forwards, then the
# median of three profiled ones (sanagraph-bench serve's `dit.profile`, SectionProfile). A benchmark, not a test.
#
#   tools/bench/dit-profile.sh TRANSFORMER_FOLDER INPUTS.safetensors [fp32|bf16] [VARIANT]
#
# The folder and inputs of `make bench` (tools/reference/bench_models.py writes them to $BENCH_WORK: transformer/,
# dit-inputs-16.safetensors). Env: BENCH (the sanagraph-bench binary, default .build/release/sanagraph-bench),
# SANAGRAPH_THREADS.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,9p' "$0" >&2; exit 2; }
BENCH="${BENCH:-.build/release/sanagraph-bench}"
printf 'dit.load %s %s %s\ndit.inputs %s\ndit.forward\ndit.forward\ndit.profile\ndit.profile\ndit.profile\n' \
    "$1" "${4:-fp16}" "${3:-fp32}" "$2" | "$BENCH" serve | python3 -c '
import json, statistics, sys
replies = [json.loads(line) for line in sys.stdin if line.startswith("{")]
for r in replies:
    if not r.get("ok", False): sys.exit("sanagraph-bench: " + r.get("error", "?"))
runs = [r for r in replies if "parts" in r]
med = lambda f: statistics.median(f(r) for r in runs)
total, onednn = med(lambda r: r["ms"]), med(lambda r: r["onednn_ms"])
print(f"forward {total:.0f} ms, in GEMMs {onednn:.0f} ms (median of {len(runs)})")
print("| part | ms | in GEMMs | rest |\n|---|---:|---:|---:|")
names = sorted(runs[0]["parts"], key=lambda n: -runs[0]["parts"][n]["ms"])
for n in names:
    ms, dn = med(lambda r: r["parts"][n]["ms"]), med(lambda r: r["parts"][n]["onednn_ms"])
    print(f"| {n} | {ms:.1f} | {dn:.1f} | {ms - dn:.1f} |")
inside = med(lambda r: sum(p["ms"] for p in r["parts"].values()))
print(f"| outside the blocks (caption projection and K/V, embeddings, final layer) | {total - inside:.1f} | | |")
'
