#!/usr/bin/env bash
# Everything a GPU host needs to check and benchmark the bundle in one go, from a folder C copied there:
#   C/sanagraph-cuda.tar.xz (make bundle), C/cuda_dit.py (tools/bench), C/diffusers-0.42.1-pruned.tar.xz
#   (diffusers' source without the other pipelines; the device image has torch but no diffusers), this script.
# Usage there: C=.build-cuda bash .build-cuda/run.sh [env] [info] [test] [bench] [bench-dcae] [profile-dcae] [gemma]
#   (logs, JSON under $OUT)
# (gemma: the Gemma-2-2B encoder vs transformers, cuda_gemma.py from the bundle; needs torch + transformers only;
#  bench-dcae: the DC-AE f32c32 decoder vs diffusers, cuda_dcae.py from the bundle; IM2COL_MB=32,64,256 sweeps;
#  profile-dcae: the GPU checks (all, a few seconds), bench-dcae (accuracy and time vs diffusers), then per-kernel/per-stage
#  GPU time tables of `sanagraph-cuda dcae --profile` for each PROFILE_IM2COL_MB (default 256), a run with 8 timed
#  cuBLASLt candidates per GEMM shape (--gemm-tune 8) and a fresh process's first decode alone (--profile-first);
#  everything in $OUT/dcae-profile*.txt|json|jsonl; about 4 minutes on an H100)
# The pruned diffusers: tar -C SITE_PACKAGES -cf - --exclude=__pycache__ diffusers, then remove every
# diffusers/pipelines/*/ but sana/ and pixart_alpha/ and every diffusers/modular_pipelines/*/, and tar -cJf.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
C=${C:-.build-cuda}
steps=${*:-"env test bench"}
mkdir -p /tmp/sg/py
tar -xJf $C/sanagraph-cuda.tar.xz -C /tmp/sg
tar -xJf $C/diffusers-0.42.1-pruned.tar.xz -C /tmp/sg/py
export PYTHONPATH=/tmp/sg/py PYTHONUNBUFFERED=1
B=/tmp/sg/sanagraph-cuda/sanagraph-cuda
for s in $steps; do case $s in
env)
  { echo "== nvidia-smi"; nvidia-smi; echo "== lscpu"; lscpu | grep -vi '^flags'; echo "== amx"; grep -o 'amx[a-z0-9_]*' /proc/cpuinfo | sort -u;
    echo "== avx512"; grep -o 'avx512[a-z0-9_]*' /proc/cpuinfo | sort -u | tr '\n' ' '; echo;
    echo "== mem"; free -g; echo "== os"; cat /etc/os-release | head -3; ldd --version | head -1;
    echo "== python"; python3 -c 'import sys, torch, transformers, numpy; print(sys.version); print("torch", torch.__version__, torch.version.cuda, "transformers", transformers.__version__, "numpy", numpy.__version__)';
    python3 -c 'import diffusers; print("diffusers", diffusers.__version__, diffusers.__file__)';
    echo "== libs"; ldconfig -p | grep -E 'libcuda\.so|nvrtc|cublasLt|openblas|libpng|cudnn' ;
    ls /usr/local/ | grep -i cuda; } > $OUT/env.txt 2>&1
  head -c 4000 $OUT/env.txt ;;
info) $B info ;;
test) ( time $B test ) 2>&1 | tee $OUT/test.txt ;;
test2) ( time $B test --filter DiT ) 2>&1 | tee $OUT/test2.txt ;;
gemma) python3 /tmp/sg/sanagraph-cuda/cuda_gemma.py --binary $B --reps ${REPS:-20} --json $OUT/cuda_gemma.json 2>&1 | tee $OUT/gemma.txt ;;
bench) python3 $C/cuda_dit.py --binary $B --sizes ${SIZES:-1024,512} --reps ${REPS:-20} --json $OUT/cuda_dit.json 2>&1 | tee $OUT/bench.txt ;;
bench-dcae) python3 /tmp/sg/sanagraph-cuda/cuda_dcae.py --binary $B --sizes ${DCAE_SIZES:-1024} --im2col-mb=${IM2COL_MB:-} --reps ${REPS:-20} --json $OUT/cuda_dcae.json 2>&1 | tee $OUT/bench-dcae.txt ;;
profile-dcae)
  W=/tmp/sanagraph-cuda-dcae; P=$OUT/dcae-profile
  ( time $B test ) 2>&1 | tee $P-checks.txt
  python3 /tmp/sg/sanagraph-cuda/cuda_dcae.py --binary $B --sizes 1024 --im2col-mb=${IM2COL_MB:-16,256,1024} \
    --reps ${REPS:-20} --json $OUT/cuda_dcae.json 2>&1 | tee $OUT/bench-dcae.txt
  for mb in $(echo ${PROFILE_IM2COL_MB:-256} | tr , ' '); do
    $B dcae --model $W/vae --inputs $W/latent1024.safetensors --out $W/profiled.safetensors --reps 10 \
      --im2col-mb $mb --profile 3 --profile-json $P-$mb.json > $P-$mb.jsonl 2> $P-$mb.txt
    sed -n '1,/^GPU time by scope/p' $P-$mb.txt | head -60; tail -1 $P-$mb.jsonl
  done
  # cuBLASLt's first heuristic choice vs the fastest of 8 timed candidates per shape (decode_gpu_ms vs the row above).
  $B dcae --model $W/vae --inputs $W/latent1024.safetensors --out $W/profiled.safetensors --reps 20 --gemm-tune 8 \
    > $P-tune8.jsonl 2> $P-tune8.txt; tail -1 $P-tune8.jsonl
  # A fresh process's first decode alone (stalls for lazy loading / heuristics show against the steady tables).
  $B dcae --model $W/vae --inputs $W/latent1024.safetensors --out $W/profiled.safetensors --reps 3 --profile-first \
    > $P-first.jsonl 2> $P-first.txt
  sed -n '1,/^GPU time by scope/p' $P-first.txt | head -40; tail -1 $P-first.jsonl ;;
esac; done
