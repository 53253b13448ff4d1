"""Full-size DC-AE check (not CI): the real dc-ae-f32c32-sana-1.0 architecture with random weights, one 512-px decode
(latent 1×32×16×16) in diffusers and in the sanagraph CLI, both on 2 threads.

    python tools/reference/dcae_full_compare.py --run [--bin .build/release/sanagraph] [--dtype bf16]

Prints the error (max|Δ|/max|ref| and max per-pixel difference of the [0, 1] images), the decode time of each side
and their ratio (Swift/PyTorch), and each process's peak RSS. Without --run it only prints this help (so
`make fixtures`, which runs every generator without arguments, does nothing heavy).
"""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

# mit-han-lab/dc-ae-f32c32-sana-1.0-diffusers config.json (sana-architecture.md §4.1).
CONFIG = dict(
    in_channels=3, latent_channels=32, attention_head_dim=32,
    encoder_block_types=["ResBlock", "ResBlock", "ResBlock", "EfficientViTBlock", "EfficientViTBlock", "EfficientViTBlock"],
    decoder_block_types=["ResBlock", "ResBlock", "ResBlock", "EfficientViTBlock", "EfficientViTBlock", "EfficientViTBlock"],
    encoder_block_out_channels=[128, 256, 512, 512, 1024, 1024],
    decoder_block_out_channels=[128, 256, 512, 512, 1024, 1024],
    encoder_layers_per_block=[2, 2, 2, 3, 3, 3], decoder_layers_per_block=[3, 3, 3, 3, 3, 3],
    encoder_qkv_multiscales=[[], [], [], [5], [5], [5]], decoder_qkv_multiscales=[[], [], [], [5], [5], [5]],
    upsample_block_type="interpolate", downsample_block_type="Conv",
    decoder_norm_types="rms_norm", decoder_act_fns="silu",
    encoder_out_shortcut=True, decoder_in_shortcut=True, decoder_conv_act_fn="relu",
    scaling_factor=0.41407,
)


def make_model(folder: str, dtype_name: str, latent_path: str) -> None:
    import math

    import torch
    from diffusers import AutoencoderDC
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = AutoencoderDC(**CONFIG).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim > 1:
                p.data = torch.randn_like(p) / math.sqrt(p[0].numel())
            elif name.endswith("norm.weight") or name.endswith("norm_out.weight"):
                p.data = 1.0 + 0.2 * torch.randn_like(p)
            else:
                p.data = 0.1 * torch.randn_like(p)
    dtype = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[dtype_name]
    model.to(dtype).save_pretrained(folder, safe_serialization=True)
    save_file({"latent": torch.randn(1, 32, 16, 16)}, latent_path)


def torch_side(folder: str, latent_path: str, out_path: str) -> None:
    """Child process: decode with diffusers on 2 threads, print JSON {seconds, rss_mb}."""
    import torch
    from diffusers import AutoencoderDC
    from safetensors.torch import load_file, save_file

    torch.set_num_threads(2)
    model = AutoencoderDC.from_pretrained(folder, torch_dtype=torch.float32).eval()
    z = load_file(latent_path)["latent"]
    with torch.no_grad():
        start = time.perf_counter()
        x = model.decode(z, return_dict=False)[0]
        seconds = time.perf_counter() - start
    save_file({"image": (x / 2 + 0.5).clamp(0, 1).contiguous()}, out_path)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rss_mb": rss}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="store_true", help="actually run the comparison (heavy: ~2 GB, minutes)")
    parser.add_argument("--bin", default=".build/release/sanagraph", help="the sanagraph binary")
    parser.add_argument("--dtype", default="bf16", choices=["f32", "f16", "bf16"], help="weight file dtype")
    parser.add_argument("--torch-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_child:
        torch_side(*args.torch_child)
        return
    if not args.run:
        parser.print_help()
        return

    import torch
    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory(prefix="dcae-full-") as tmp:
        folder, latent = os.path.join(tmp, "vae"), os.path.join(tmp, "latent.safetensors")
        make_model(folder, args.dtype, latent)
        ref_path, out_path = os.path.join(tmp, "ref.safetensors"), os.path.join(tmp, "swift.safetensors")
        env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2",
                   SANAGRAPH_THREADS="2")
        child = subprocess.run([sys.executable, __file__, "--torch-child", folder, latent, ref_path],
                               env=env, capture_output=True, text=True, check=True)
        torch_result = json.loads(child.stdout.strip().splitlines()[-1])

        graph = os.path.join(tmp, "decode.yaml")
        with open(graph, "w") as fh:
            fh.write(f"""sanagraph: 1
description: full-size DC-AE decode
nodes:
  vae: {{type: dcae.load, params: {{path: "{folder}"}}}}
  z: {{type: tensor.load, params: {{path: "{latent}", name: latent}}}}
  decode: {{type: dcae.decode, inputs: {{vae: vae, latent: z}}, params: {{apply_scaling_factor: false}}}}
  save: {{type: tensor.save, inputs: {{tensor: decode.image}}, params: {{path: "{out_path}", name: image}}}}
""")
        swift = subprocess.run(["/usr/bin/time", "-v", args.bin, "run", "--cache", "off", graph], env=env,
                               capture_output=True, text=True)
        text = swift.stdout + swift.stderr
        if swift.returncode != 0:
            print(text)
            raise SystemExit(f"sanagraph failed with exit {swift.returncode}")
        decode_seconds = float(re.search(r"decode: done in ([0-9.]+)s", text).group(1))
        swift_rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024

        ref, out = load_file(ref_path)["image"], load_file(out_path)["image"]
        rel = ((out - ref).abs().max() / ref.abs().max()).item()
        pixels = ((out - ref).abs().max() * 255).item()
        print(f"dc-ae-f32c32-sana-1.0 (random {args.dtype} weights), latent 1×32×16×16 → {tuple(ref.shape)}")
        print(f"error: max|Δ|/max|ref| = {rel:.3e}, max per-pixel |Δ| = {pixels:.4f}/255")
        print(f"decode time: PyTorch {torch_result['seconds']:.2f} s, Swift {decode_seconds:.2f} s, "
              f"ratio Swift/PyTorch = {decode_seconds / torch_result['seconds']:.2f} (2 threads each)")
        print(f"peak RSS: PyTorch {torch_result['rss_mb']:.0f} MB, Swift {swift_rss:.0f} MB (whole processes)")


if __name__ == "__main__":
    main()
