#!/usr/bin/env bash
# One device call for everything at once, from the repository root there (docs/cuda.md "Running it on the device
# machine"): GPU checks and benchmarks (tools/bundle/device-run.sh, cores 12-15) beside the CPU model rows of
# `make bench` on the host CPU (tools/bench/amx-check.sh models, cores 0-11), then the whole graph on the GPU
# (tools/bench/cuda_pipeline.py) and a SIGINT mid-sampling. Carry .build-cuda (bundle, diffusers, run.sh = device-run.sh)
# and .build-amx/amx-check.tar.xz; results in $OUT/results.tgz ($OUT/partial.tgz every 20 s, in case the call is cut).
set -u
C=.build-cuda; B=.build-amx/amx-check.tar.xz; S=tools/bench/amx-check.sh
R=/tmp/res; mkdir -p $R/d $R/p $R/g /tmp/sg/py
tar -xJf $C/diffusers-0.42.1-pruned.tar.xz -C /tmp/sg/py
export PYTHONPATH=/tmp/sg/py PYTHONUNBUFFERED=1
# What is done so far comes back even if the call is cut off at its limit.
( while sleep 20; do tar -czf $OUT/partial.tgz -C /tmp res 2>/dev/null; done ) &
( REPS=3 CORE_OFFSET=8 LOGS=$R/d BENCH_WORK=/tmp/bd UNPACK=/tmp/u1 bash $S models $B "dit-load-f16,dit-512,dit-512-bf16" > $R/dit.txt 2>&1
  OMP_WAIT_POLICY=passive REPS=3 CORE_OFFSET=8 LOGS=$R/p BENCH_WORK=/tmp/bd UNPACK=/tmp/u1 bash $S models $B "dit-load-f16,dit-512" > $R/dit-passive.txt 2>&1
  taskset -c 8-9 bash $S run $B > $R/gemm.txt 2>&1 ) &
( REPS=1 LOGS=$R UNPACK=/tmp/u0 taskset -c 0-7 bash $S models $B text2img-512 text2img-512-bf16 "dcae-decode-512,dcae-decode-512-bf16" "gemma-encode,gemma-encode-bf16" > $R/models.txt 2>&1 ) &
OUT=$R/g IM2COL_MB=64,256 taskset -c 12-15 bash $C/run.sh env test bench bench-dcae gemma > $R/gpu.txt 2>&1
# The whole pipeline on the GPU once the CPU side has built the random full-size pipeline folder.
for i in $(seq 120); do grep -q '^built \|using the pipeline' $R/models.txt 2>/dev/null && break; sleep 5; done
LD_LIBRARY_PATH=/tmp/u0/amx-check/lib taskset -c 12-15 python3 tools/bench/cuda_pipeline.py --sanagraph /tmp/u0/amx-check/bin/sanagraph \
  --reps 3 --compile --json $R/g/cuda_pipeline.json > $R/pipeline.txt 2>&1
echo "== pipeline"; tail -12 $R/pipeline.txt
# SIGINT mid-sampling on the GPU: exit 130, no PNG.
rm -f /tmp/int.png; LD_LIBRARY_PATH=/tmp/u0/amx-check/lib /tmp/u0/amx-check/bin/sanagraph run Graphs/text2img.yaml --device cuda --cache off \
  --set models=/tmp/text2img-full/model --set width=1024 --set height=1024 --set steps=1000 --set output=/tmp/int.png > $R/sigint.txt 2>&1 &
pid=$!; sleep 15; kill -INT $pid; wait $pid; echo "== SIGINT: exit $? png $(ls /tmp/int.png 2>&1)"; tail -3 $R/sigint.txt
echo "== GPU"; grep -E 'PASS|FAIL|passed|^\||rror' $R/gpu.txt | grep -v '^PASS' | head -60
grep -c '^PASS' $R/gpu.txt
wait
echo "== CPU models"; grep -E '^\||^  [a-z0-9-]+:|rror|== group' $R/models.txt | head -40
echo "== dit default"; grep -E '^\||rror' $R/dit.txt; echo "== dit passive"; grep -E '^\||rror' $R/dit-passive.txt
echo "== gemm"; grep -E '^\||GFLOP' $R/gemm.txt | head -30
tar -czf $OUT/results.tgz -C /tmp res
