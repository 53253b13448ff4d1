#!/usr/bin/env bash
# Builds the CPU CUDA emulator (fake libcuda.so.1, libnvrtc.so.13, libcublasLt.so.13) from the project's kernel
# sources, into BUILD_DIR (default .build-emulator). `make test-cuda-emulated` then runs `sanagraph-cuda test` with
# SANAGRAPH_CUDA_DRIVER / SANAGRAPH_CUDA_LIBRARY_PATH pointing here. Checks logic, never speed or GPU details.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/.build-emulator}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$root/tools/cuda-emulator"
# Each kernel module's CUDA C (the text between the #""" and """# of its Swift literal): as a file compiled into the
# fake driver inside its own namespace, as a C++ string literal the fake NVRTC accepts, and its kernels' registry.
modules="nn:../../Sources/CUDA/Kernels/NNKernelsSource.swift conv:../../Sources/CUDA/Kernels/ConvKernelsSource.swift"
: > "$out/modules.inc"; : > "$out/sources.inc"; : > "$out/registry.inc"
for m in $modules; do
  name=${m%%:*}; src=${m#*:}
  awk '/#"""$/{on=1; next} /^"""#/{on=0} on' "$src" > "$out/$name.cu"
  printf 'namespace k_%s {\n#include "%s.cu"\n}\n' "$name" "$name" >> "$out/modules.inc"
  printf 'R"SGEMU(%s)SGEMU",\n' "$(cat "$out/$name.cu")" >> "$out/sources.inc"  # no final newline, as the Swift literal
  grep -oE 'extern "C" __global__ void( __launch_bounds__\([0-9]+\))? [A-Za-z0-9_]+\(' "$out/$name.cu" \
    | sed -E "s/.* ([A-Za-z0-9_]+)\\(\$/REGISTER(k_$name, \\1)/" >> "$out/registry.inc"
done
cxx=${CXX:-$(command -v c++ || command -v clang++)}
flags="-std=c++20 -O2 -fPIC -shared -Wno-unknown-pragmas -I. -I$out"
$cxx $flags driver.cpp -o "$out/libcuda.so.1" -pthread
$cxx $flags nvrtc.cpp -o "$out/libnvrtc.so.13"
$cxx $flags cublaslt.cpp -o "$out/libcublasLt.so.13"
echo "$(cd "$out" && pwd)"
