"""SANA-600M DiT forward on one NVIDIA GPU: SanaGraph (`sanagraph-cuda dit`, bf16) beside diffusers eager bf16 on
the same GPU in the same run, both measured against diffusers fp32 on the CPU (random full-size weights, seed 0).
Not run by CI (needs a GPU). `make bench-cuda-dit` runs it; by hand, on the GPU host:

    python3 tools/bench/cuda_dit.py --binary BUNDLE/sanagraph-cuda [--sizes 1024,512] [--reps 20] [--json OUT.json]

Prints, per image size: relative L2 error and max|Δ|/max|ref| of each side vs the fp32 reference, the median
forward time (diffusers' full forward: caption projection + blocks, batch 2 = one CFG step), SanaGraph's
`predict` time (text prepared once, as the samplers call it) and GPU peak memory.
"""
import argparse
import copy
import json
import os
import subprocess
import sys
import time

import torch
from diffusers import SanaTransformer2DModel
from safetensors.torch import load_file, save_file

SANA_600M = dict(in_channels=32, out_channels=32, num_attention_heads=36, attention_head_dim=32, num_layers=28,
                 num_cross_attention_heads=16, cross_attention_head_dim=72, cross_attention_dim=1152,
                 caption_channels=2304, mlp_ratio=2.5, sample_size=32, patch_size=1)


def errors(out, ref):
    d = (out.float() - ref).flatten()
    return float(d.norm() / ref.flatten().norm()), float(d.abs().max() / ref.abs().max())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--work", default="/tmp/sanagraph-cuda-dit")
    ap.add_argument("--sizes", default="1024,512")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--json")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    torch.manual_seed(0)
    model = SanaTransformer2DModel(**SANA_600M).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif p.ndim >= 2 and "table" not in name:
                p.copy_(torch.randn_like(p) / (p[0].numel() ** 0.5))
            else:
                p.copy_(0.1 * torch.randn_like(p))
    folder = os.path.join(args.work, "transformer")
    t0 = time.perf_counter()
    model.save_pretrained(folder, safe_serialization=True)
    print(f"saved random Sana-600M weights in {time.perf_counter() - t0:.1f} s", flush=True)
    gpu = copy.deepcopy(model).to("cuda", torch.bfloat16)
    torch.set_num_threads(os.cpu_count() or 1)
    results = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": []}
    for size in [int(s) for s in args.sizes.split(",")]:
        s = size // 32
        B, L = 2, 300
        x = torch.randn(B, 32, s, s)
        y = torch.randn(B, L, 2304)
        mask = torch.zeros(B, L)
        mask[0, :120] = 1
        mask[1, :37] = 1
        t = torch.tensor([999.0, 500.0])
        io = os.path.join(args.work, f"io{size}.safetensors")
        save_file(dict(hidden_states=x, encoder_hidden_states=y, encoder_attention_mask=mask, timestep=t), io)
        kw = dict(encoder_attention_mask=mask, timestep=t, return_dict=False)
        with torch.no_grad():
            t0 = time.perf_counter()
            ref = model(hidden_states=x, encoder_hidden_states=y, **kw)[0]
            cpu_s = time.perf_counter() - t0
            xg, yg = x.cuda().bfloat16(), y.cuda().bfloat16()
            kwg = dict(encoder_attention_mask=mask.cuda(), timestep=t.cuda(), return_dict=False)
            out = gpu(hidden_states=xg, encoder_hidden_states=yg, **kwg)[0].float().cpu()
            for _ in range(3):
                gpu(hidden_states=xg, encoder_hidden_states=yg, **kwg)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            times = []
            for _ in range(args.reps):
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                gpu(hidden_states=xg, encoder_hidden_states=yg, **kwg)
                b.record()
                torch.cuda.synchronize()
                times.append(a.elapsed_time(b))
            diffusers_ms = sorted(times)[len(times) // 2]
            diffusers_peak = torch.cuda.max_memory_allocated() / 2**30
        velocity = os.path.join(args.work, f"velocity{size}.safetensors")
        if os.path.exists(velocity):
            os.remove(velocity)
        run = subprocess.run([args.binary, "dit", "--model", folder, "--inputs", io, "--out", velocity,
                              "--reps", str(args.reps)], capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stdout, run.stderr, file=sys.stderr)
            sys.exit(f"sanagraph-cuda dit failed ({run.returncode})")
        swift = json.loads(run.stdout.strip().splitlines()[-1])
        ours = load_file(velocity)["velocity"]
        row = dict(size=size, cpu_fp32_reference_s=cpu_s, diffusers_bf16_err=errors(out, ref),
                   sanagraph_err=errors(ours, ref), diffusers_forward_ms=diffusers_ms, diffusers_peak_gib=diffusers_peak,
                   sanagraph=swift)
        results["rows"].append(row)
        print(json.dumps(row), flush=True)
    print(f"\nGPU: {results['gpu']}  (torch {results['torch']}, diffusers eager bf16; SanaGraph bf16 weights, fp32 "
          f"residual/norms/softmax/linear attention)")
    print("| size | diffusers bf16 err (L2 / max) | SanaGraph err (L2 / max) | diffusers forward ms | SanaGraph forward ms "
          "| ratio | SanaGraph predict ms (GPU) | peak GiB diffusers / SanaGraph |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results["rows"]:
        sg = r["sanagraph"]
        print(f"| {r['size']} | {r['diffusers_bf16_err'][0]:.2e} / {r['diffusers_bf16_err'][1]:.2e} "
              f"| {r['sanagraph_err'][0]:.2e} / {r['sanagraph_err'][1]:.2e} | {r['diffusers_forward_ms']:.2f} "
              f"| {sg['forward_ms']:.2f} | {sg['forward_ms'] / r['diffusers_forward_ms']:.2f} "
              f"| {sg['predict_ms']:.2f} ({sg['predict_gpu_ms']:.2f}) "
              f"| {r['diffusers_peak_gib']:.2f} / {sg['peak_gib']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
