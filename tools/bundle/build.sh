#!/usr/bin/env bash
# `make bundle`: a release build of sanagraph-cuda for GPU hosts that have only the NVIDIA driver: the Swift
# runtime linked statically, OpenBLAS linked statically, Foundation's ICU data left out (tools/bundle/icu_data_stub.c),
# stripped and xz-compressed. The CUDA libraries are loaded at run time (docs/cuda.md). Prints the bundle's path last.
#   tools/bundle/build.sh [BUILD_DIR]      (default .build-bundle)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-.build-bundle}
swift=${SWIFT:-swift}
mkdir -p "$build/link/lib" "$build/link/pkgconfig"

# OpenBLAS as a static archive: a pkg-config file whose -L folder holds only libopenblas.a.
blas_libdir=$(pkg-config --variable=libdir openblas)
blas_include=$(pkg-config --variable=includedir openblas)
ln -sf "$blas_libdir/libopenblas.a" "$build/link/lib/libopenblas.a"
cat > "$build/link/pkgconfig/openblas.pc" <<PC
Name: openblas
Description: OpenBLAS, static, for the GPU bundle
Version: $(pkg-config --modversion openblas)
Libs: -L$PWD/$build/link/lib -lopenblas -lpthread -lm
Cflags: -I$blas_include
PC

# Foundation's ICU data left out (tools/bundle/icu-stub.sh).
. tools/bundle/icu-stub.sh
icu_stub "$build/link/icu_data_stub.o"

# SanaGraphKit as a static library: one Swift runtime, linked statically (no plugins in the bundle).
SANAGRAPH_STATIC_KIT=1 PKG_CONFIG_PATH="$PWD/$build/link/pkgconfig" "$swift" build -c release --static-swift-stdlib --build-path "$build" \
  --product sanagraph-cuda "${ICU_LINK_FLAGS[@]}" >&2

binary="$build/release/sanagraph-cuda"
# Only the C and C++ runtimes may remain dynamic (present on any glibc ≥ 2.35 Linux).
extra=$(ldd "$binary" | awk '{print $1}' | grep -vE '^(linux-vdso|/lib64/ld-linux|libc\.so|libm\.so|libstdc\+\+\.so|libgcc_s\.so)' || true)
[ -z "$extra" ] || { echo "error: the bundle binary still needs: $extra" >&2; exit 1; }

out="$build/bundle/sanagraph-cuda"
rm -rf "$build/bundle" && mkdir -p "$out"
strip -o "$out/sanagraph-cuda" "$binary"
cp tools/bench/cuda_dit.py tools/bench/cuda_gemma.py tools/bench/cuda_dcae.py "$out/"
tar -C "$build/bundle" -cf - sanagraph-cuda | xz -9 -T0 > "$build/sanagraph-cuda.tar.xz"
echo "bundle: $(du -h "$build/sanagraph-cuda.tar.xz" | cut -f1) compressed, $(du -h "$out/sanagraph-cuda" | cut -f1) binary" >&2
echo "$PWD/$build/sanagraph-cuda.tar.xz"
