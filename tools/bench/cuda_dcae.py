"""SANA's DC-AE (f32c32) decode on one NVIDIA GPU: SanaGraph (`sanagraph-cuda dcae`, bf16) beside diffusers eager
bf16 on the same GPU in the same run, both measured against diffusers fp32 on the CPU (random full-size weights
with the config of mit-han-lab/dc-ae-f32c32-sana-1.0-diffusers, seed 0). Not run by CI (needs a GPU). By hand, on
the GPU host:

    python3 tools/bench/cuda_dcae.py --binary BUNDLE/sanagraph-cuda [--sizes 1024] [--reps 20] [--json OUT.json]
        [--im2col-mb 64,256]   (one SanaGraph row per im2col scratch size; default: the binary's, 256 MiB)

Prints, per image size (a [1, 32, size/32, size/32] latent): relative L2 error and max|Δ|/max|ref| of each side vs
the fp32 reference, the median decode time of each (diffusers `vae.decode`; SanaGraph's decode with the latent
upload and the image download, and its GPU time alone) and GPU peak memory.
"""
import argparse
import copy
import json
import os
import subprocess
import sys
import time

import torch
from diffusers import AutoencoderDC
from safetensors.torch import load_file, save_file

# mit-han-lab/dc-ae-f32c32-sana-1.0-diffusers/vae/config.json (docs: shared/docs/reference/sana-architecture.md §4.1)
DC_AE_F32C32_SANA = dict(
    in_channels=3, latent_channels=32, attention_head_dim=32,
    encoder_block_types=["ResBlock", "ResBlock", "ResBlock", "EfficientViTBlock", "EfficientViTBlock", "EfficientViTBlock"],
    decoder_block_types=["ResBlock", "ResBlock", "ResBlock", "EfficientViTBlock", "EfficientViTBlock", "EfficientViTBlock"],
    encoder_block_out_channels=[128, 256, 512, 512, 1024, 1024], decoder_block_out_channels=[128, 256, 512, 512, 1024, 1024],
    encoder_layers_per_block=[2, 2, 2, 3, 3, 3], decoder_layers_per_block=[3, 3, 3, 3, 3, 3],
    encoder_qkv_multiscales=[[], [], [], [5], [5], [5]], decoder_qkv_multiscales=[[], [], [], [5], [5], [5]],
    upsample_block_type="interpolate", downsample_block_type="Conv", decoder_norm_types="rms_norm",
    decoder_act_fns="silu", scaling_factor=0.41407)


def errors(out, ref):
    d = (out.float() - ref).flatten()
    return float(d.norm() / ref.flatten().norm()), float(d.abs().max() / ref.abs().max())


def randomize(model):
    """Unit-variance convolutions and linears, norms near 1, small biases (as tools/reference/dcae.py)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim > 1:
                p.copy_(torch.randn_like(p) / (p[0].numel() ** 0.5))
            elif name.endswith("norm.weight") or name.endswith("norm_out.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.1 * torch.randn_like(p))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--work", default="/tmp/sanagraph-cuda-dcae")
    ap.add_argument("--sizes", default="1024")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--json")
    ap.add_argument("--im2col-mb", default="")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    torch.manual_seed(0)
    model = AutoencoderDC(**DC_AE_F32C32_SANA).eval()
    randomize(model)
    folder = os.path.join(args.work, "vae")
    t0 = time.perf_counter()
    model.save_pretrained(folder, safe_serialization=True)
    print(f"saved random DC-AE f32c32 weights in {time.perf_counter() - t0:.1f} s", flush=True)
    gpu = copy.deepcopy(model).to("cuda", torch.bfloat16)
    torch.set_num_threads(os.cpu_count() or 1)
    results = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": []}
    sf = model.config.scaling_factor
    for size in [int(s) for s in args.sizes.split(",")]:
        s = size // 32
        z = torch.randn(1, 32, s, s) / sf  # what SanaPipeline hands vae.decode: latents / scaling_factor
        io = os.path.join(args.work, f"latent{size}.safetensors")
        save_file(dict(latent=z), io)
        with torch.no_grad():
            t0 = time.perf_counter()
            ref = model.decode(z, return_dict=False)[0]
            cpu_s = time.perf_counter() - t0
            zg = z.cuda().bfloat16()
            out = gpu.decode(zg, return_dict=False)[0].float().cpu()
            for _ in range(3):
                gpu.decode(zg, return_dict=False)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            times = []
            for _ in range(args.reps):
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                gpu.decode(zg, return_dict=False)
                b.record()
                torch.cuda.synchronize()
                times.append(a.elapsed_time(b))
            diffusers_ms = sorted(times)[len(times) // 2]
            diffusers_peak = torch.cuda.max_memory_allocated() / 2**30
        torch.cuda.empty_cache()  # give the caching allocator's blocks back before SanaGraph's process runs
        for mb in [m for m in args.im2col_mb.split(",") if m] or [None]:
            image = os.path.join(args.work, f"image{size}.safetensors")
            if os.path.exists(image):
                os.remove(image)
            command = [args.binary, "dcae", "--model", folder, "--inputs", io, "--out", image, "--reps", str(args.reps)]
            run = subprocess.run(command + (["--im2col-mb", mb] if mb else []), capture_output=True, text=True)
            if run.returncode != 0:
                print(run.stdout, run.stderr, file=sys.stderr)
                sys.exit(f"sanagraph-cuda dcae failed ({run.returncode})")
            swift = json.loads(run.stdout.strip().splitlines()[-1])
            ours = load_file(image)["image"]
            row = dict(size=size, cpu_fp32_reference_s=cpu_s, reference_std=float(ref.std()),
                       diffusers_bf16_err=errors(out, ref), sanagraph_err=errors(ours, ref),
                       diffusers_decode_ms=diffusers_ms, diffusers_peak_gib=diffusers_peak, sanagraph=swift)
            results["rows"].append(row)
            print(json.dumps(row), flush=True)
    print(f"\nGPU: {results['gpu']}  (torch {results['torch']}, diffusers eager bf16; SanaGraph bf16 weights, fp32 "
          f"residual stream/norms/multiscale convolutions/linear attention)")
    print("| size | diffusers bf16 err (L2 / max) | SanaGraph err (L2 / max) | diffusers decode ms | SanaGraph decode ms "
          "(GPU) | ratio | peak GiB diffusers / SanaGraph | im2col MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results["rows"]:
        sg = r["sanagraph"]
        print(f"| {r['size']} | {r['diffusers_bf16_err'][0]:.2e} / {r['diffusers_bf16_err'][1]:.2e} "
              f"| {r['sanagraph_err'][0]:.2e} / {r['sanagraph_err'][1]:.2e} | {r['diffusers_decode_ms']:.2f} "
              f"| {sg['decode_ms']:.2f} ({sg['decode_gpu_ms']:.2f}) | {sg['decode_ms'] / r['diffusers_decode_ms']:.2f} "
              f"| {r['diffusers_peak_gib']:.2f} / {sg['peak_gib']:.2f} | {sg['im2col_mb']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
