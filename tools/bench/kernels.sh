#!/usr/bin/env bash
# Kernel benchmark: Swift (sanagraph-bench) vs PyTorch CPU on the same shapes, in one run, interleaved per row.
#
#   tools/bench/kernels.sh [--reps N] [--filter SUBSTRING] [--retain-malloc]
#
# --retain-malloc sets glibc's MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ for both processes, so freed large
# buffers are reused instead of being unmapped and page-faulted in again on every call (see docs/performance.md).
#
# Env: PYTHON (default: the reference venv of `make reference-venv`, else python3), SCRATCH (SwiftPM scratch path, default .build),
#      THREADS (default 2): threads for both sides (Swift: SANAGRAPH_THREADS; PyTorch: torch.set_num_threads).
# Prints the kernels in use (as `sanagraph info`) and a Markdown table of medians with the Swift/PyTorch ratio
# (< 1 means Swift is faster) and, for GEMM-like rows, GFLOP/s. Rows ending in _bf16 run precision bf16 on the
# Swift side (this machine's bf16 path) and torch.bfloat16 on the PyTorch side; "vs fp32" divides by the PyTorch
# fp32 row of the same shape.
set -euo pipefail
cd "$(dirname "$0")/../.."

REPS=5
FILTER=""
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS="$2"; shift 2 ;;
        --filter) FILTER="$2"; shift 2 ;;
        --retain-malloc) export MALLOC_MMAP_THRESHOLD_=2000000000 MALLOC_TRIM_THRESHOLD_=4000000000; shift ;;
        *) echo "usage: $0 [--reps N] [--filter SUBSTRING] [--retain-malloc]" >&2; exit 2 ;;
    esac
done
if [ -z "${PYTHON:-}" ]; then
    REF_VENV="${REF_VENV:-$HOME/.cache/sanagraph/reference-venv}"
    if [ -x "$REF_VENV/bin/python" ]; then PYTHON="$REF_VENV/bin/python"; else PYTHON=python3; fi
fi
SCRATCH="${SCRATCH:-.build}"
THREADS="${THREADS:-2}"
export SANAGRAPH_THREADS="$THREADS"

swift build -c release --scratch-path "$SCRATCH" --product sanagraph-bench >&2
BIN="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)/sanagraph-bench"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
FILTER_ARGS=()
if [ -n "$FILTER" ]; then FILTER_ARGS=(--filter "$FILTER"); fi

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN" info
echo "command: ${THREADS:+THREADS=$THREADS }tools/bench/kernels.sh --reps $REPS${FILTER:+ --filter $FILTER}${MALLOC_MMAP_THRESHOLD_:+ --retain-malloc}"
# Row by row, Swift then PyTorch, so both sides of a row see the same machine load (the box is shared).
for name in $("$BIN" kernels --list "${FILTER_ARGS[@]}"); do
    "$BIN" kernels --reps "$REPS" --filter "=$name" >> "$TMP/swift.jsonl"
    "$PYTHON" tools/reference/bench_kernels.py --reps "$REPS" --threads "$THREADS" --filter "=$name" >> "$TMP/torch.jsonl"
done

"$PYTHON" - "$TMP/swift.jsonl" "$TMP/torch.jsonl" <<'PY'
import json, sys

def load(path):
    head, rows = None, {}
    for line in open(path):
        obj = json.loads(line)
        if "run" in obj:
            head = obj
        else:
            rows[obj["name"]] = obj
    return head, rows

sh, swift = load(sys.argv[1])
th, torch = load(sys.argv[2])
print(f"swift: {sh['threads']} threads; torch {th['torch']}: {th['threads']} threads; "
      f"medians of {sh['reps']} reps after 1 warm-up")
print()
print("| kernel | shape | Swift ms | PyTorch ms | Swift/PyTorch | vs PyTorch fp32 | Swift GFLOP/s | Swift kernel |")
print("|---|---|---:|---:|---:|---:|---:|---|")
for name, s in swift.items():
    t = torch.get(name)
    tms = f"{t['ms']:.2f}" if t else "–"
    ratio = f"{s['ms'] / t['ms']:.2f}" if t else "–"
    fp32 = torch.get(name[:-len("_bf16")]) if name.endswith("_bf16") else None
    vs_fp32 = f"{s['ms'] / fp32['ms']:.2f}" if fp32 else ""
    rate = f"{s['gflop'] / (s['ms'] / 1e3):.0f}" if s.get("gflop") else ""
    print(f"| {name} | {s['shape']} | {s['ms']:.2f} | {tms} | {ratio} | {vs_fp32} | {rate} | {s.get('kernel', '')} |")
PY
