#!/usr/bin/env bash
# Builds the CPU CUDA emulator (fake libcuda.so.1, libnvrtc.so.13, libcublasLt.so.13) from the project's kernel
# sources, into BUILD_DIR (default .build-emulator). `make test-cuda-emulated` then runs `sanagraph-cuda test` with
# SANAGRAPH_CUDA_DRIVER / SANAGRAPH_CUDA_LIBRARY_PATH pointing here. Checks logic, never speed or GPU details.
#
# Kernel sources: every `*KernelsSource.swift` under Sources/CUDA/Kernels and Plugins/*/CUDA, each holding one
# #"""…"""# literal of CUDA C (one NVRTC module on a GPU), compiled after the literal of
# Sources/CUDA/Kernels/KernelPrelude.swift (shared typedefs and helpers; `KernelPrelude.prefixed`). Each module is
# compiled into the fake driver in its own C++ namespace with its own copy of the prelude, and the fake NVRTC accepts
# exactly these prelude + module sources. Kernel names must be unique across modules (they are extern "C").
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/.build-emulator}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$root/tools/cuda-emulator"
: > "$out/kernels.inc"; : > "$out/registry.inc"; : > "$out/sources.inc"
awk '/#"""$/{on=1; next} /^"""#/{on=0} on' "$root/Sources/CUDA/Kernels/KernelPrelude.swift" > "$out/prelude.cu"
for src in "$root"/Sources/CUDA/Kernels/*KernelsSource.swift "$root"/Plugins/*/CUDA/*KernelsSource.swift; do
  [ -f "$src" ] || continue
  name=$(basename "$src" .swift)
  # The CUDA C between the #""" and """# of the literal, as a file and as a C++ string literal.
  awk '/#"""$/{on=1; next} /^"""#/{on=0} on' "$src" > "$out/$name.cu"
  # As KernelPrelude.prefixed: prelude, newline, module (no final newline, as the Swift literals).
  { printf 'R"SGEMU(%s\n%s)SGEMU",\n' "$(cat "$out/prelude.cu")" "$(cat "$out/$name.cu")"; } >> "$out/sources.inc"
  printf 'namespace %s {\n#include "prelude.cu"\n#include "%s.cu"\n}\n' "$name" "$name" >> "$out/kernels.inc"
  grep -oE 'extern "C" __global__ void( __launch_bounds__\([0-9]+\))? [A-Za-z0-9_]+\(' "$out/$name.cu" \
    | sed -E "s/.* ([A-Za-z0-9_]+)\\(\$/REGISTER($name, \\1)/" >> "$out/registry.inc"
done
cxx=${CXX:-$(command -v c++ || command -v clang++)}
flags="-std=c++20 -O2 -fPIC -shared -Wno-unknown-pragmas -I. -I$out"
$cxx $flags driver.cpp -o "$out/libcuda.so.1" -pthread
$cxx $flags nvrtc.cpp -o "$out/libnvrtc.so.13"
$cxx $flags cublaslt.cpp -o "$out/libcublasLt.so.13"
echo "$(cd "$out" && pwd)"
