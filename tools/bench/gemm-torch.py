"""PyTorch's side of tools/bench/gemm-libraries.c: torch.nn.functional.linear (MKL for fp32, oneDNN for bf16) on the
same shapes and fp32 3×3 convolutions, GFLOP/s, median of 5 rounds of REPS calls after two warm-up calls. Not part of the build.

    OMP_NUM_THREADS=2 python tools/bench/gemm-torch.py
"""
import os
import statistics
import time

import torch

SHAPES = [(512, 1152, 1152), (512, 1152, 5760), (512, 2880, 1152), (600, 1152, 1152), (2048, 1152, 5760),
          (2048, 2880, 1152), (741, 2304, 2048), (741, 2304, 9216), (741, 9216, 2304), (256, 1024, 3072)]


def gflops(m, k, n, dtype, reps):
    x = torch.rand(m, k, dtype=torch.float32).sub_(0.5).to(dtype)
    w = torch.rand(n, k, dtype=torch.float32).sub_(0.5).to(dtype)
    for _ in range(2):
        torch.nn.functional.linear(x, w)
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(reps):
            torch.nn.functional.linear(x, w)
        rounds.append((time.perf_counter() - start) / reps)
    return 2.0 * m * k * n / statistics.median(rounds) / 1e9


def conv_gflops(c, side, reps):
    x = torch.rand(1, c, side, side).sub_(0.5)
    conv = torch.nn.Conv2d(c, c, 3, padding=1)
    for _ in range(2):
        conv(x)
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(reps):
            conv(x)
        rounds.append((time.perf_counter() - start) / reps)
    return 2.0 * c * c * 9 * side * side / statistics.median(rounds) / 1e9


def main():
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    reps = int(os.environ.get("REPS", "5"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, MKL {torch.backends.mkl.is_available()}, "
          f"oneDNN {torch.backends.mkldnn.is_available()}; calls per round {reps}, median of 5 rounds")
    print("| M×K×N | torch f32 | torch bf16 |\n|---|---:|---:|")
    with torch.inference_mode():
        for m, k, n in SHAPES:
            print(f"| {m}×{k}×{n} | {gflops(m, k, n, torch.float32, reps):.0f} | {gflops(m, k, n, torch.bfloat16, reps):.0f} |",
                  flush=True)
        print("\n| conv 3×3 pad 1, NCHW | torch f32 |\n|---|---:|")
        for c, side in [(128, 256), (512, 64), (256, 128)]:
            print(f"| [1,{c},{side},{side}]→{c} | {conv_gflops(c, side, reps):.0f} |", flush=True)


if __name__ == "__main__":
    main()
