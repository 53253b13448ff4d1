#!/usr/bin/env bash
# One device call for everything at once, from the repository root there (docs/cuda.md "Running it on the device
# machine"): GPU checks and benchmarks (tools/bundle/device-run.sh, cores 12-15) beside the CPU model rows of
# `make bench` on the host CPU (tools/bench/amx-check.sh models, cores 0-11), then the whole graph on the GPU
# (tools/bench/cuda_pipeline.py) and a SIGINT mid-sampling. Carry .build-cuda (bundle, diffusers, run.sh = device-run.sh)
# and .build-amx/amx-check.tar.xz; results in $OUT/results.tgz ($OUT/partial.tgz every 20 s, in case the call is cut).
# What runs (environment; defaults = the first full call):
#   GPU_STEPS   device-run.sh steps                      "env test bench bench-dcae gemma" (empty: CPU rows only)
#   CPU_GROUPS  row groups on cores 0-7, 2 cores each     "text2img-512 text2img-512-bf16 dcae-decode-512,dcae-decode-512-bf16 gemma-encode,gemma-encode-bf16"
#   DIT_ROWS    DiT rows on cores 8-9 (3 reps)            "dit-load-f16,dit-512,dit-512-bf16" (empty: none)
#   OPENBLAS_ROWS  rows run again with SANAGRAPH_FP32=openblas on cores 10-11 (empty: none)
#   BF16_PROFILE=1 with GPU_STEPS empty: on cores 14-15, the AMX kernel's check (bin/amx-gemm, weights warm and
#               cold), then the bf16 DiT forward by part (tools/bench/dit-profile.sh) on SanaGraph's AMX kernel
#               and on oneDNN, once the DiT rows have written their model (needs DIT_ROWS)
#   COMPILE=1   torch.compile beside eager in the pipeline benchmark;  SIGINT=0 skips the SIGINT test
set -u
C=.build-cuda; B=.build-amx/amx-check.tar.xz; S=tools/bench/amx-check.sh
GPU_STEPS=${GPU_STEPS-env test bench bench-dcae gemma}
CPU_GROUPS=${CPU_GROUPS:-text2img-512 text2img-512-bf16 dcae-decode-512,dcae-decode-512-bf16 gemma-encode,gemma-encode-bf16}
DIT_ROWS=${DIT_ROWS-dit-load-f16,dit-512,dit-512-bf16}
R=/tmp/res; mkdir -p $R/d $R/o $R/g /tmp/sg/py
tar -xJf $C/diffusers-0.42.1-pruned.tar.xz -C /tmp/sg/py
export PYTHONPATH=/tmp/sg/py PYTHONUNBUFFERED=1
# What is done so far comes back even if the call is cut off at its limit.
( while sleep 20; do tar -czf $OUT/partial.tgz -C /tmp res 2>/dev/null; done ) &
saver=$!
lscpu -e > $R/topology.txt 2>&1
# The group runner builds the random full-size pipeline first; the other CPU runs and the GPU pipeline wait for it.
( REPS=1 LOGS=$R UNPACK=/tmp/u0 taskset -c 0-7 bash $S models $B $CPU_GROUPS > $R/models.txt 2>&1 ) &
built() { for i in $(seq 120); do grep -q '^built \|using the pipeline\|^== group' $R/models.txt 2>/dev/null && return; sleep 5; done; }
if [ -n "$DIT_ROWS" ]; then
  ( REPS=3 CORE_OFFSET=8 LOGS=$R/d BENCH_WORK=/tmp/bd UNPACK=/tmp/u1 bash $S models $B "$DIT_ROWS" > $R/dit.txt 2>&1 ) &
fi
if [ -n "${OPENBLAS_ROWS:-}" ]; then
  ( built; SANAGRAPH_FP32=openblas REPS=1 CORE_OFFSET=10 LOGS=$R/o BENCH_WORK=/tmp/bo UNPACK=/tmp/u2 bash $S models $B \
      "$OPENBLAS_ROWS" > $R/openblas.txt 2>&1 ) &
fi
if [ -z "$GPU_STEPS" ]; then
  if [ "${BF16_PROFILE:-0}" = 1 ]; then
    ( for i in $(seq 150); do [ -x /tmp/u1/amx-check/bin/amx-gemm ] && break; sleep 2; done
      THREADS=2 taskset -c 14,15 /tmp/u1/amx-check/bin/amx-gemm
      COLD=24 THREADS=2 taskset -c 14,15 /tmp/u1/amx-check/bin/amx-gemm
      for i in $(seq 200); do [ -f /tmp/bd-0/dit-inputs-16.safetensors ] && [ -f /tmp/bd-0/transformer/config.json ] && break; sleep 3; done
      sleep 10
      for b in auto onednn; do
        echo "== bf16 DiT forward by part, SANAGRAPH_BF16_LINEAR=$b"
        SANAGRAPH_BF16_LINEAR=$b BENCH=/tmp/u1/amx-check/bin/sanagraph-bench LD_LIBRARY_PATH=/tmp/u1/amx-check/lib \
          SANAGRAPH_THREADS=2 taskset -c 14,15 bash tools/bench/dit-profile.sh /tmp/bd-0/transformer /tmp/bd-0/dit-inputs-16.safetensors bf16
      done ) > $R/bf16-profile.txt 2>&1 &
  fi
  for j in $(jobs -p); do [ "$j" = "$saver" ] || wait "$j"; done
else
OUT=$R/g IM2COL_MB=${IM2COL_MB:-64,256} taskset -c 12-15 bash $C/run.sh $GPU_STEPS > $R/gpu.txt 2>&1
# The whole pipeline on the GPU once the CPU side has built the random full-size pipeline folder.
built
LD_LIBRARY_PATH=/tmp/u0/amx-check/lib taskset -c 12-15 python3 tools/bench/cuda_pipeline.py --sanagraph /tmp/u0/amx-check/bin/sanagraph \
  --reps 3 ${COMPILE:+--compile} --json $R/g/cuda_pipeline.json > $R/pipeline.txt 2>&1
echo "== pipeline"; tail -12 $R/pipeline.txt
if [ "${SIGINT:-1}" = 1 ]; then
  # SIGINT mid-sampling on the GPU: exit 130, no PNG.
  rm -f /tmp/int.png; LD_LIBRARY_PATH=/tmp/u0/amx-check/lib /tmp/u0/amx-check/bin/sanagraph run Graphs/text2img.yaml --device cuda --cache off \
    --set models=/tmp/text2img-full/model --set width=1024 --set height=1024 --set steps=1000 --set output=/tmp/int.png > $R/sigint.txt 2>&1 &
  pid=$!; sleep 15; kill -INT $pid; wait $pid; echo "== SIGINT: exit $? png $(ls /tmp/int.png 2>&1)"; tail -3 $R/sigint.txt
fi
echo "== GPU"; grep -E 'PASS|FAIL|passed|^\||rror' $R/gpu.txt | grep -v '^PASS' | head -60
grep -c '^PASS' $R/gpu.txt
fi
kill $saver; wait
echo "== CPU models"; grep -E '^\||^  [a-z0-9-]+:|rror|== group' $R/models.txt | head -40
for f in dit openblas; do [ -f $R/$f.txt ] && { echo "== $f"; grep -E '^\||rror' $R/$f.txt; }; done
[ -f $R/bf16-profile.txt ] && { echo "== bf16 profile"; cat $R/bf16-profile.txt; }
tar -czf $OUT/results.tgz -C /tmp res
