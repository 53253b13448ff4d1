"""PyTorch twin of `sanagraph-bench kernels`: the same rows (names and shapes) on PyTorch CPU, 2 threads.

    python tools/reference/bench_kernels.py [--reps N] [--filter SUBSTRING|=NAME] [--threads T]

Prints one JSON object per line like the Swift side ({"name", "shape", "ms" (median), "min_ms", "reps"});
tools/bench/kernels.sh joins both. This is a benchmark, not a fixture generator: run with no arguments (as
`make fixtures` runs every tools/reference/*.py) it prints a note and exits without benchmarking or writing files.
"""
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F


def rand(*shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g) * 2 - 1


def relu_linear_attention(q, k, v, eps=1e-15):
    # diffusers SanaLinearAttnProcessor2_0 core on [B, H, N, D] inputs (same ops, heads-first layout).
    q, k = F.relu(q), F.relu(k)
    vt = F.pad(v.transpose(2, 3), (0, 0, 0, 1), mode="constant", value=1.0)  # [B, H, Dv+1, N]
    scores = torch.matmul(vt, k)                                              # [B, H, Dv+1, D]
    hs = torch.matmul(scores, q.transpose(2, 3))                              # [B, H, Dv+1, N]
    hs = hs[:, :, :-1] / (hs[:, :, -1:] + eps)
    return hs.transpose(2, 3).contiguous()


def rows():
    out = []
    m, k, n = 2048, 1152, 2880
    a, b = rand(m, k, seed=1), rand(k, n, seed=2)
    c = torch.empty(m, n)
    out.append(("gemm_ops_matmul", f"{m}x{k}x{n}", lambda: torch.matmul(a, b)))
    x, w, bias = rand(2, 1024, 1152, seed=3), rand(2880, 1152, seed=4), rand(2880, seed=5)
    out.append(("linear", "[2,1024,1152]x[2880,1152]ᵀ+b", lambda: F.linear(x, w, bias)))
    out.append(("linear_openblas", "[2,1024,1152]x[2880,1152]ᵀ+b", lambda: F.linear(x, w, bias)))
    xb, wb, bb = x.bfloat16(), w.bfloat16(), bias.bfloat16()
    # bf16 rows: the model in torch.bfloat16 (activations arrive in bf16 there; the Swift side converts its fp32
    # activations inside the timing).
    out.append(("linear_bf16", "[2,1024,1152]x[2880,1152]ᵀ+b", lambda: F.linear(xb, wb, bb)))
    xm, wm, bm = rand(2, 256, 1152, seed=24), rand(1152, 1152, seed=25), rand(1152, seed=26)
    out.append(("linear_m512", "[2,256,1152]x[1152,1152]ᵀ+b", lambda: F.linear(xm, wm, bm)))
    xmb, wmb, bmb = xm.bfloat16(), wm.bfloat16(), bm.bfloat16()
    out.append(("linear_m512_bf16", "[2,256,1152]x[1152,1152]ᵀ+b", lambda: F.linear(xmb, wmb, bmb)))
    xd, wd, bd = rand(2, 2880, 32, 32, seed=6), rand(2880, 1, 3, 3, seed=7), rand(2880, seed=8)
    out.append(("conv2d_depthwise3x3", "[2,2880,32,32] g=2880 k3 p1",
                lambda: F.conv2d(xd, wd, bd, stride=1, padding=1, groups=2880)))
    xp, wp, bp = rand(2, 1152, 32, 32, seed=9), rand(2880, 1152, 1, 1, seed=10), rand(2880, seed=11)
    out.append(("conv2d_1x1", "[2,1152,32,32]→2880", lambda: F.conv2d(xp, wp, bp)))
    for name, cin, cout, side, seed in [("conv2d_3x3_c128", 128, 128, 256, 16), ("conv2d_3x3_c512", 512, 512, 64, 19),
                                        ("conv2d_3x3_out3", 128, 3, 256, 22)]:
        x3, w3, b3 = rand(1, cin, side, side, seed=seed), rand(cout, cin, 3, 3, seed=seed + 1), rand(cout, seed=seed + 2)
        out.append((name, f"[1,{cin},{side},{side}]→{cout} k3 p1",
                    lambda x3=x3, w3=w3, b3=b3: F.conv2d(x3, w3, b3, stride=1, padding=1)))
        if cout > 3:
            x3b, w3b, b3b = x3.bfloat16(), w3.bfloat16(), b3.bfloat16()
            out.append((name + "_bf16", f"[1,{cin},{side},{side}]→{cout} k3 p1",
                        lambda x3=x3b, w3=w3b, b3=b3b: F.conv2d(x3, w3, b3, stride=1, padding=1)))
    xl = rand(2, 1024, 1152, seed=12)
    out.append(("layer_norm", "[2,1024,1152] no affine", lambda: F.layer_norm(xl, (1152,), eps=1e-6)))
    q, kk, v = rand(2, 16, 1024, 72, seed=13), rand(2, 16, 300, 72, seed=14), rand(2, 16, 300, 72, seed=15)
    keep = torch.ones(2, 300)
    keep[1, 77:] = 0
    mask = ((1 - keep) * -10000.0).view(2, 1, 1, 300)
    out.append(("sdpa_cross", "q[2,16,1024,72] kv[2,16,300,72] mask",
                lambda: F.scaled_dot_product_attention(q, kk, v, attn_mask=mask)))
    for heads, d in ((16, 72), (36, 32)):
        ql, kl, vl = (rand(2, heads, 1024, d, seed=s) for s in (16, 17, 18))
        out.append((f"relu_linear_attention_h{heads}", f"[2,{heads},1024,{d}]",
                    lambda ql=ql, kl=kl, vl=vl: relu_linear_attention(ql, kl, vl)))
    xs = rand(2, 16, 1024, 300, seed=19)
    out.append(("softmax", "[2,16,1024,300] last axis", lambda: torch.softmax(xs, dim=-1)))
    xg = rand(2, 1024, 2880, seed=20)
    out.append(("gelu_tanh", "[2,1024,2880]", lambda: F.gelu(xg, approximate="tanh")))
    xn = rand(1, 512, 64, 64, seed=21)
    out.append(("interpolate_nearest_x2", "[1,512,64,64]→128²",
                lambda: F.interpolate(xn, scale_factor=2.0, mode="nearest")))
    img = rand(1, 3, 512, 512, seed=22)
    out.append(("interpolate_bicubic", "[1,3,512,512]→1024²",
                lambda: F.interpolate(img, size=(1024, 1024), mode="bicubic")))
    out.append(("interpolate_bilinear_down", "[1,3,512,512]→320²",
                lambda: F.interpolate(img, size=(320, 320), mode="bilinear")))
    xt = rand(2, 1024, 1152, seed=23)
    out.append(("transpose_nlc_to_ncl", "[2,1024,1152]→[2,1152,1024]", lambda: xt.transpose(1, 2).contiguous()))
    return out


def main():
    if len(sys.argv) == 1:
        print("bench_kernels.py: benchmark only, nothing to generate; run tools/bench/kernels.sh "
              "(or pass --reps N) to time the kernels")
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--filter", default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps({"run": "torch", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "reps": args.reps}), flush=True)
    with torch.inference_mode():
        for name, shape, fn in rows():
            if args.filter and (name != args.filter[1:] if args.filter.startswith("=") else args.filter not in name):
                continue
            fn()  # warm-up
            times = []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
            times.sort()
            print(json.dumps({"name": name, "shape": shape, "ms": times[len(times) // 2], "min_ms": times[0],
                              "reps": args.reps}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
