#!/usr/bin/env bash
# Model benchmark: SanaGraph vs PyTorch/diffusers CPU on the same inputs, interleaved, in one run.
#
#   tools/bench/models.sh [--quick] [--reps N] [--rows NAME,NAME]
#
# Rows, options and method: tools/reference/bench_models.py (DiT Sana-600M load/forward at 512 and 1024 px,
# plus DC-AE decode 512/1024, Gemma-2-2B encode and text2img 512 px on the random full-size pipeline of
# text2img_full_compare.py, --pipeline DIR). --quick skips 1024 px, the fp32 load, gemma-encode and text2img-512.
# Env: PYTHON (default: the reference venv of `make reference-venv`), SCRATCH (SwiftPM scratch path, default
#      .build), THREADS (default 2, both sides: SANAGRAPH_THREADS / torch.set_num_threads), BENCH_WORK (weights and inputs, default $TMPDIR/sanagraph-bench;
#      ~3.6 GB written once).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${PYTHON:-}" ]; then
    REF_VENV="${REF_VENV:-$HOME/.cache/sanagraph/reference-venv}"
    PYTHON="$REF_VENV/bin/python"
fi
if ! "$PYTHON" -c "import torch, diffusers" >/dev/null 2>&1; then
    echo "error: $PYTHON cannot import torch and diffusers; run 'make reference-venv' or set PYTHON" >&2
    exit 2
fi
SCRATCH="${SCRATCH:-.build}"
THREADS="${THREADS:-2}"
WORK="${BENCH_WORK:-${TMPDIR:-/tmp}/sanagraph-bench}"

swift build -c release --scratch-path "$SCRATCH" --product sanagraph-bench >&2
swift build -c release --scratch-path "$SCRATCH" --product sanagraph >&2 \
    || echo "warning: the sanagraph CLI did not build; its graph rows will be skipped" >&2
BIN="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)"

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
# What every row ran on: the same report as `sanagraph info` (CPU, kernels for fp32 and bf16, threads, libraries).
"$BIN/sanagraph-bench" info --threads "$THREADS"
echo "command: THREADS=$THREADS tools/bench/models.sh $*"
"$PYTHON" tools/reference/bench_models.py --run --threads "$THREADS" --work "$WORK" \
    --bench-bin "$BIN/sanagraph-bench" --sanagraph "$BIN/sanagraph" "$@"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
