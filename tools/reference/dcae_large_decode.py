#!/usr/bin/env python3
"""Peak memory of a large DC-AE decode through the CLI (not CI; issue #19).

    python tools/reference/dcae_large_decode.py --run [--size 4096] [--bin .build/release/sanagraph]
                                                [--compare-bin OTHER/sanagraph] [--work DIR]

Builds the real dc-ae-f32c32-sana-1.0 architecture with random BF16 weights (as dcae_full_compare.py) and a random
latent of [1, 32, size/32, size/32], then runs `tensor.load -> dcae.load -> dcae.decode -> tensor.save` with each
binary, on 2 threads, and prints wall time and peak RSS (GNU time's %M). With --compare-bin, also the
largest difference between the two decodes (e.g. the memory-bounded EfficientViT blocks against a build without
them). Without --run it only prints this help (so `make fixtures` does nothing heavy).
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def build(work: str, size: int) -> tuple:
    import torch
    from diffusers import AutoencoderDC
    from safetensors.torch import save_file

    from dcae_full_compare import CONFIG

    vae_dir = os.path.join(work, "vae")
    if not os.path.exists(os.path.join(vae_dir, "config.json")):
        torch.manual_seed(0)
        model = AutoencoderDC(**CONFIG).eval()
        for p in model.parameters():
            p.data = p.data + 0.02 * torch.randn_like(p)
        model.to(torch.bfloat16).save_pretrained(vae_dir, safe_serialization=True)
    latent = os.path.join(work, f"latent_{size}.safetensors")
    if not os.path.exists(latent):
        g = torch.Generator().manual_seed(size)
        save_file({"latent": torch.randn(1, 32, size // 32, size // 32, generator=g) * 0.41407}, latent)
    return vae_dir, latent


def run(binary: str, vae: str, latent: str, out: str, work: str) -> tuple:
    graph = os.path.join(work, "decode.yaml")
    with open(graph, "w") as f:
        f.write(f"""sanagraph: 1
nodes:
  z: {{type: tensor.load, params: {{path: "{latent}", name: latent}}}}
  vae: {{type: dcae.load, params: {{path: "{vae}"}}}}
  image: {{type: dcae.decode, inputs: {{vae: vae, latent: z}}}}
  save: {{type: tensor.save, inputs: {{tensor: image}}, params: {{path: "{out}", name: image}}}}
""")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2")
    rss = os.path.join(work, "rss.txt")
    start = time.time()
    # GNU time's %M: the child's own peak RSS in KiB (getrusage of children would be a running maximum).
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss, binary, "run", graph, "--cache", "off", "--no-metadata"],
                   check=True, env=env)
    with open(rss) as f:
        peak = int(f.read().split()[-1])
    return time.time() - start, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", action="store_true")
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--bin", default=".build/release/sanagraph")
    ap.add_argument("--compare-bin")
    ap.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "sanagraph-dcae-large"))
    args = ap.parse_args()
    if not args.run:
        print(__doc__)
        return
    os.makedirs(args.work, exist_ok=True)
    vae, latent = build(args.work, args.size)
    results = {}
    for name, binary in ([("compare", args.compare_bin)] if args.compare_bin else []) + [("this", args.bin)]:
        out = os.path.join(args.work, f"image_{name}_{args.size}.safetensors")
        seconds, peak = run(binary, vae, latent, out, args.work)
        results[name] = out
        print(f"{name} ({binary}): {args.size}x{args.size} decode {seconds:.0f} s, peak RSS "
              + f"{peak / 1024 / 1024:.2f} GiB", flush=True)
    if args.compare_bin:
        from safetensors.torch import load_file
        a = load_file(results["compare"])["image"]
        b = load_file(results["this"])["image"]
        d = (a - b).abs().max().item()
        print(f"max |difference| {d:.3g} (output range {a.abs().max().item():.3g}); in 8-bit pixels {d / 2 * 255:.3g}/255")


if __name__ == "__main__":
    main()
