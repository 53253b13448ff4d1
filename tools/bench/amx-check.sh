#!/usr/bin/env bash
# SanaGraph's kernels on a machine with no Swift toolchain (e.g. an Intel AMX server), from a prebuilt bundle.
#
#   tools/bench/amx-check.sh pack [BUNDLE]   on a build machine: build sanagraph-bench with --static-swift-stdlib,
#                                            collect the shared libraries it opens (OpenBLAS, oneDNN and theirs),
#                                            add bin/amx-gemm and bin/gemm-libraries (tools/bench/*.c), write BUNDLE (default
#                                            .build-amx/amx-check.tar.xz) and print its size
#   tools/bench/amx-check.sh run [BUNDLE]    on the target machine, from the repository root: unpack, then print
#                                            `sanagraph info`'s report (CPU, AMX permission, kernels for fp32 and
#                                            bf16), the GEMM/conv GFLOP/s table (fp32 OpenBLAS and oneDNN, bf16
#                                            native and emulated, with bf16 accuracy) and the bf16 accuracy check
#                                            of the shipped model against PyTorch (models/sana-shapes and
#                                            Tests/Fixtures/BF16 come from the working tree)
#   tools/bench/amx-check.sh pack-tests [BUNDLE]
#                                            on a build machine: `swift test`'s release test binary (built with
#                                            testing enabled, as `make test` builds it), libSanaGraphKit.so, the
#                                            `sanagraph` CLI the CLI suites run, the Swift runtime and the
#                                            libraries they open, into BUNDLE (default .build-amx/tests.tar.xz)
#   tools/bench/amx-check.sh tests BUNDLE [SWIFT-TESTING ARGS ...]
#                                            on the target machine, from the repository root (Tests/Fixtures
#                                            needed): the swift-testing suites on that CPU's kernels, e.g. the
#                                            AVX-512 and AMX paths a CI machine without them never runs; args such
#                                            as --skip 'shippedSanaShapes|PluginTests' (those need the shipped
#                                            model's weights and the toolchain)
#   tools/bench/amx-check.sh profile BUNDLE fp32|bf16 [SETTINGS ...]
#                                            on the target machine: a Sana-600M DiT forward at 512 px by part
#                                            (tools/bench/dit-profile.sh; random weights and inputs made once with
#                                            that machine's PyTorch) under each SETTINGS in turn — a space-separated
#                                            list of VAR=VALUE, "" for the defaults — then the first again, so
#                                            kernel settings are compared in one call, e.g.
#                                            profile BUNDLE bf16 "" "SANAGRAPH_FUSED_GLUMBCONV=0"
#   tools/bench/amx-check.sh models BUNDLE ROWS [ROWS ...]
#                                            on the target machine: `make bench`'s model rows against that
#                                            machine's PyTorch, each group of rows on its own cores (see below)
#
# Env (run): THREADS (default 2, as the issue's measurements; "all" = every CPU), REPS (default 5).
# On the target, OPENBLAS_CORETYPE is unset unless KEEP_OPENBLAS_CORETYPE=1: the lent AMX hosts' environment sets
# it to Haswell, and SanaGraph respects it as a user's setting, so they would measure OpenBLAS's AVX2 kernels
# instead of the ones chosen from the CPU's features (PyTorch's MKL does not read it).
# The bundle needs glibc ≥ 2.35 on the target (the static Swift runtime's floor); the libraries travel with it
# and are found through LD_LIBRARY_PATH, so nothing needs installing there.
set -euo pipefail
cd "$(dirname "$0")/../.."

MODE="${1:-}"
BUNDLE="${2:-.build-amx/amx-check.tar.xz}"

# Into DIR/lib: the libraries SanaGraph opens with dlopen (OpenBLAS, oneDNN) and everything DIR's binaries and
# libraries need beyond glibc, under their sonames, from ldconfig's paths.
collect_libs() {
    local dir="$1" dep
    copy_lib() {
        local path
        path="$(ldconfig -p | awk -v n="$1" '$1 == n && /x86-64/ && !found { print $NF; found = 1 }')"
        [ -n "$path" ] || { echo "error: $1 not found (apt-get install libopenblas0 libdnnl2)" >&2; exit 1; }
        cp -L "$path" "$dir/lib/$1"
    }
    for lib in libopenblas.so.0 libdnnl.so.2; do copy_lib "$lib"; done
    for dep in $(ldd "$dir"/lib/*.so* "$dir"/bin/* | awk '/=>/ { print $1 }' | sort -u); do
        case "$dep" in
            libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|ld-linux*) ;;
            *) [ -e "$dir/lib/$dep" ] || copy_lib "$dep" ;;
        esac
    done
}

# On the target: unpacks BUNDLE (made by `$0 MODE`, MODE the first argument) into DIR (the second) and puts its
# libraries on LD_LIBRARY_PATH.
unpack_bundle() {
    [ -f "$BUNDLE" ] || { echo "error: $BUNDLE not found; build it with '$0 $1' and carry it here" >&2; exit 2; }
    mkdir -p "$2" && tar -C "$2" -xJf "$BUNDLE"
    export LD_LIBRARY_PATH="$2/amx-check/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

# Writes STAGE/amx-check as the xz tarball BUNDLE and lists it.
write_bundle() {
    mkdir -p "$(dirname "$2")"
    tar -C "$1" -cJf "$2" amx-check
    echo "bundle: $2 ($(du -h "$2" | cut -f1)); contents:" >&2
    tar -tvJf "$2" | awk '{ printf "  %10s  %s\n", $3, $6 }' >&2
}

if [ -n "${OPENBLAS_CORETYPE:-}" ] && [ "${KEEP_OPENBLAS_CORETYPE:-0}" != 1 ] && [[ "$MODE" != pack* ]]; then
    echo "note: unsetting OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE (KEEP_OPENBLAS_CORETYPE=1 keeps it)" >&2
    unset OPENBLAS_CORETYPE
fi

case "$MODE" in
pack)
    # SanaGraphKit as a static library: a binary with the Swift runtime linked in cannot share a dynamic one.
    export SANAGRAPH_STATIC_KIT=1
    . tools/bundle/icu-stub.sh
    icu_stub .build-amx/icu_data_stub.o
    for product in sanagraph-bench sanagraph; do
        swift build -c release --static-swift-stdlib --scratch-path .build-amx --product $product "${ICU_LINK_FLAGS[@]}" >&2
    done
    BIN="$(swift build -c release --static-swift-stdlib --scratch-path .build-amx --show-bin-path)"
    STAGE="$(mktemp -d)"
    trap 'rm -rf "$STAGE"' EXIT
    mkdir -p "$STAGE/amx-check/bin" "$STAGE/amx-check/lib"
    for product in sanagraph-bench sanagraph; do strip -o "$STAGE/amx-check/bin/$product" "$BIN/$product"; done
    # The AMX kernel's own check and timing (tools/bench/amx-gemm.c), for machines without a compiler.
    K=SanaGraphKit/Sources/CKernels
    clang -O2 -I "$K/include" -o "$STAGE/amx-check/bin/amx-gemm" tools/bench/amx-gemm.c "$K/amx.c" "$K/depthwise.c" "$K/cpu.c" -lpthread -lm
    # The GEMM libraries side by side (tools/bench/gemm-libraries.c; BLIS is not carried: run it with NOBLIS=1).
    clang -O2 -o "$STAGE/amx-check/bin/gemm-libraries" tools/bench/gemm-libraries.c -ldnnl -ldl -lm -lpthread
    collect_libs "$STAGE/amx-check"
    write_bundle "$STAGE" "$BUNDLE"
    ;;
pack-tests)
    [ "$BUNDLE" != .build-amx/amx-check.tar.xz ] || BUNDLE=.build-amx/tests.tar.xz
    swift test -c release --list-tests > /dev/null  # builds the test binary as `make test` does (testable imports)
    BIN="$(swift build -c release --show-bin-path)"
    STAGE="$(mktemp -d)"
    trap 'rm -rf "$STAGE"' EXIT
    mkdir -p "$STAGE/amx-check/bin" "$STAGE/amx-check/lib"
    strip -o "$STAGE/amx-check/bin/SanaGraphPackageTests.xctest" "$BIN/SanaGraphPackageTests.xctest"
    strip -o "$STAGE/amx-check/lib/libSanaGraphKit.so" "$BIN/libSanaGraphKit.so"
    # The CLI suites look for `sanagraph` beside the test binary.
    strip -o "$STAGE/amx-check/bin/sanagraph" "$BIN/sanagraph"
    # The Swift runtime, Foundation and the test libraries come from the toolchain (not ldconfig's paths).
    RUNTIME="$(dirname "$(readlink -f "$(command -v swift)")")/../lib/swift/linux"
    for dep in $(ldd "$BIN/SanaGraphPackageTests.xctest" "$BIN/sanagraph" | awk '/=>/ { print $3 }' | sort -u | grep -F "$(readlink -f "$RUNTIME")"); do
        cp -L "$dep" "$STAGE/amx-check/lib/"
    done
    collect_libs "$STAGE/amx-check"
    write_bundle "$STAGE" "$BUNDLE"
    ;;
tests)
    shift 2
    DIR="$(mktemp -d)"
    trap 'rm -rf "$DIR"' EXIT
    unpack_bundle pack-tests "$DIR"
    export SANAGRAPH_REPOSITORY_ROOT="$PWD"
    echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), lscpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)," \
         "$(grep -m1 '^cpu family' /proc/cpuinfo | tr -d '\t') $(grep -m1 '^model[[:space:]]' /proc/cpuinfo | tr -d '\t')"
    "$DIR/amx-check/bin/SanaGraphPackageTests.xctest" --testing-library swift-testing "$@"
    ;;
run)
    DIR="$(mktemp -d)"
    trap 'rm -rf "$DIR"' EXIT
    unpack_bundle pack "$DIR"
    B="$DIR/amx-check/bin/sanagraph-bench"
    THREADS="${THREADS:-2}"
    if [ "$THREADS" = all ]; then unset SANAGRAPH_THREADS; else export SANAGRAPH_THREADS="$THREADS"; fi
    echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "lscpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1); $(nproc) CPUs"
    echo "== sanagraph info"
    "$B" info
    echo "== the generic fallback (SANAGRAPH_CPU=generic)"
    SANAGRAPH_CPU=generic "$B" info | grep -E '^(openblas|onednn|bf16):'
    echo "== GEMM / convolution GFLOP/s"
    "$B" gemm --reps "${REPS:-5}"
    if [ -x "$DIR/amx-check/bin/amx-gemm" ]; then
        echo "== SanaGraph's AMX kernel alone (tools/bench/amx-gemm.c)"
        THREADS="${SANAGRAPH_THREADS:-2}" "$DIR/amx-check/bin/amx-gemm" || true
    fi
    echo "== bf16 accuracy, shipped model vs PyTorch (this machine's bf16 path)"
    status=0
    "$B" bf16-check || status=$?
    echo "== bf16 accuracy, the emulation (SANAGRAPH_BF16=emulate)"
    SANAGRAPH_BF16=emulate "$B" bf16-check || status=$?
    exit "$status"
    ;;
models)
    # The model rows of `make bench` (tools/reference/bench_models.py) on the target, with the bundle's binaries
    # and that machine's python3 (torch; diffusers/transformers importable, e.g. through PYTHONPATH). Each
    # further argument is a group of comma-separated rows; the groups run at once, each on its own THREADS cores
    # (taskset; CORE_OFFSET shifts them), so a many-core machine measures in minutes what takes an hour in sequence. Both sides of a row
    # share its cores, interleaved, as in `make bench`. Logs: $LOGS/group-N.txt (default /tmp/amx-models).
    shift 2
    DIR="${UNPACK:-/tmp/amx-check-unpacked}"
    unpack_bundle pack "$DIR"
    THREADS="${THREADS:-2}"
    LOGS="${LOGS:-/tmp/amx-models}"
    WORK="${BENCH_WORK:-/tmp/sanagraph-bench}"
    PIPELINE="${PIPELINE:-/tmp/text2img-full/model}"
    mkdir -p "$LOGS"
    "$DIR/amx-check/bin/sanagraph-bench" info --threads "$THREADS"
    # The random full-size pipeline, once, before the groups that need it start.
    if [[ "$*" == *text2img* || "$*" == *dcae* || "$*" == *gemma* ]] && [ ! -f "$PIPELINE/model_index.json" ]; then
        python3 -c "import sys; sys.path.insert(0, 'tools/reference'); import text2img_full_compare as t; t.build('$PIPELINE')"
    fi
    group=0
    pids=()
    for rows in "$@"; do
        first=$((${CORE_OFFSET:-0} + group * THREADS)); last=$((first + THREADS - 1))
        taskset -c "$first-$last" python3 tools/reference/bench_models.py --run --threads "$THREADS" \
            --work "$WORK-$group" --pipeline "$PIPELINE" --reps "${REPS:-3}" --rows "$rows" \
            --bench-bin "$DIR/amx-check/bin/sanagraph-bench" --sanagraph "$DIR/amx-check/bin/sanagraph" \
            > "$LOGS/group-$group.txt" 2>&1 &
        pids+=($!)
        group=$((group + 1))
    done
    status=0
    for pid in "${pids[@]}"; do wait "$pid" || status=1; done
    for ((g = 0; g < group; g++)); do echo "== group $g (cores from $((${CORE_OFFSET:-0} + g * THREADS)))"; grep -E '^\||^  [a-z0-9-]+:|rror' "$LOGS/group-$g.txt"; done
    exit "$status"
    ;;
profile)
    PRECISION="${3:-}"
    [[ "$PRECISION" == fp32 || "$PRECISION" == bf16 ]] || { echo "usage: $0 profile BUNDLE fp32|bf16 [SETTINGS ...]" >&2; exit 2; }
    shift 3
    DIR="${UNPACK:-/tmp/amx-check-unpacked}"
    unpack_bundle pack "$DIR"
    THREADS="${THREADS:-2}"
    WORK="${BENCH_WORK:-/tmp/sanagraph-bench}-profile"
    mkdir -p "$WORK"
    WORK="$WORK" python3 -c '
import os, sys
sys.path.insert(0, "tools/reference")
import bench_models as b
work = os.environ["WORK"]
stamp = os.path.join(work, "transformer", "stamp")
if not (os.path.exists(stamp) and open(stamp).read() == b.WEIGHTS_STAMP):
    b.make_weights(os.path.join(work, "transformer"))
if not os.path.exists(os.path.join(work, "dit-inputs-16.safetensors")):
    b.make_inputs(os.path.join(work, "dit-inputs-16.safetensors"), 16)
'
    "$DIR/amx-check/bin/sanagraph-bench" info --threads "$THREADS"
    settings=("$@")
    [ ${#settings[@]} -gt 0 ] || settings=("")
    for s in "${settings[@]}" "${settings[0]}"; do
        echo "== dit-profile $PRECISION, ${s:-defaults}"
        # shellcheck disable=SC2086  # each SETTINGS is a list of VAR=VALUE words
        env $s SANAGRAPH_THREADS="$THREADS" BENCH="$DIR/amx-check/bin/sanagraph-bench" \
            taskset -c "${CORE_OFFSET:-0}-$((${CORE_OFFSET:-0} + THREADS - 1))" \
            bash tools/bench/dit-profile.sh "$WORK/transformer" "$WORK/dit-inputs-16.safetensors" "$PRECISION" fp16
    done
    ;;
*)
    echo "usage: $0 pack [BUNDLE] | pack-tests [BUNDLE] | run [BUNDLE] | tests BUNDLE [ARGS ...] | profile BUNDLE fp32|bf16 [SETTINGS ...] | models BUNDLE ROWS [ROWS ...]" >&2
    exit 2
    ;;
esac
