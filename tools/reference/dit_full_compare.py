"""NOT run in CI (and not a fixture generator): builds the full Sana-600M transformer config with random weights in
diffusers, runs one forward at 512 px (latent 16x16, batch 2, 300 text tokens) in PyTorch and in SanaGraph (through
`sanagraph run` on a tensor.load -> dit.load -> dit.predict -> tensor.save graph), and prints max|Δ|/max|ref|, the
time ratio Swift/PyTorch and Swift's peak RSS.

Usage (repo root, after `swift build -c release`):
    python tools/reference/dit_full_compare.py [--work /tmp/dit-full] [--binary .build/release/sanagraph]
Needs ~8 GB free disk/RAM. `make fixtures` skips it (it needs --run).
"""
import argparse
import os
import resource
import subprocess
import sys
import time

import torch
from diffusers import SanaTransformer2DModel
from safetensors.torch import load_file, save_file

SANA_600M = dict(in_channels=32, out_channels=32, num_attention_heads=36, attention_head_dim=32, num_layers=28,
                 num_cross_attention_heads=16, cross_attention_head_dim=72, cross_attention_dim=1152,
                 caption_channels=2304, mlp_ratio=2.5, sample_size=16, patch_size=1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", action="store_true", help="actually run (guard against `make fixtures`)")
    ap.add_argument("--work", default="/tmp/dit-full")
    ap.add_argument("--binary", default=".build/release/sanagraph")
    args = ap.parse_args()
    if not args.run:
        print(__doc__)
        return
    os.makedirs(args.work, exist_ok=True)
    torch.manual_seed(0)
    model = SanaTransformer2DModel(**SANA_600M).eval()
    for name, p in model.named_parameters():
        std = 1.0 / (p.shape[-1] ** 0.5) if p.ndim >= 2 and "table" not in name else 0.02
        p.data = (1.0 + 0.1 * torch.randn_like(p)) if "norm" in name else std * torch.randn_like(p)
    folder = os.path.join(args.work, "transformer")
    model.save_pretrained(folder, safe_serialization=True)

    B, L = 2, 300
    x = torch.randn(B, 32, 16, 16)
    y = torch.randn(B, L, 2304)
    mask = torch.zeros(B, L)
    mask[0, :120] = 1
    mask[1, :37] = 1
    t = torch.tensor([999.0, 500.0])
    io = os.path.join(args.work, "io.safetensors")
    save_file(dict(hidden_states=x, encoder_hidden_states=y, encoder_attention_mask=mask, timestep=t), io)

    torch.set_num_threads(len(os.sched_getaffinity(0)))  # the CPUs this process may use (taskset), not the machine's
    with torch.no_grad():
        model(hidden_states=x, encoder_hidden_states=y, timestep=t, encoder_attention_mask=mask)  # warm-up
        start = time.perf_counter()
        ref = model(hidden_states=x, encoder_hidden_states=y, timestep=t, encoder_attention_mask=mask,
                    return_dict=False)[0]
        torch_s = time.perf_counter() - start

    out = os.path.join(args.work, "velocity.safetensors")
    graph = os.path.join(args.work, "dit.yaml")
    with open(graph, "w") as f:
        f.write(f"""sanagraph: 1
description: Sana-600M forward parity
nodes:
  dit: {{type: dit.load, params: {{path: "{folder}"}}}}
  x: {{type: tensor.load, params: {{path: "{io}", name: hidden_states}}}}
  y: {{type: tensor.load, params: {{path: "{io}", name: encoder_hidden_states}}}}
  m: {{type: tensor.load, params: {{path: "{io}", name: encoder_attention_mask}}}}
  t: {{type: tensor.load, params: {{path: "{io}", name: timestep}}}}
  v:
    type: dit.predict
    inputs: {{model: dit, latent: x, encoder_hidden_states: y, encoder_attention_mask: m, timestep: t}}
  save: {{type: tensor.save, inputs: {{tensor: v}}, params: {{path: "{out}", name: velocity}}}}
""")
    if os.path.exists(out):
        os.remove(out)
    start = time.perf_counter()
    subprocess.run([args.binary, "run", graph, "--verbose"], check=True)
    swift_total_s = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    v = load_file(out)["velocity"]
    err = float((v - ref).abs().max() / ref.abs().max())
    print(f"max|Δ|/max|ref| = {err:.3e}")
    print(f"PyTorch forward {torch_s:.2f} s; sanagraph run (load + forward) {swift_total_s:.2f} s; "
          f"ratio {swift_total_s / torch_s:.2f} (includes Swift's weight load; see --verbose timings)")
    print(f"Swift peak RSS {peak_kb / 1024 / 1024:.2f} GiB")
    sys.exit(0 if err <= 1e-3 else 1)


if __name__ == "__main__":
    main()
