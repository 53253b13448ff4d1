"""Samples the shipped model with diffusers' SanaPipeline on the CPU (the reference for the Swift pipeline).

    python tools/train/sample.py --model models/sana-shapes --out /tmp/samples \
        --prompt "a red circle above a blue square on a white background" --seed 0

Sampling defaults of the shipped model: 256 x 256, 20 Flow-DPM-Solver steps, guidance 4.5, negative prompt "",
default complex human instruction, use_resolution_binning=False (with sample_size 16 the pipeline would
otherwise pick the 512 px bin and resize). Without --prompt a fixed list of prompts is drawn and a grid saved.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import configs as C  # noqa: E402

PROMPTS = [
    "a red circle on a white background",
    "a blue square on a yellow background",
    "a large green triangle on a black background",
    "a small yellow star in the top left corner on a blue background",
    "a red circle above a blue square on a white background",
    "a purple heart left of an orange ring on a gray background",
    "a white cross below a black diamond on a pink background",
    "a red circle, a green square and a blue triangle on a white background",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(os.path.dirname(__file__), "..", "..", "models", "sana-shapes"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--prompt", action="append")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=1, help="pictures per prompt (seeds seed..seed+n-1)")
    ap.add_argument("--steps", type=int, default=C.SAMPLE_STEPS)
    ap.add_argument("--guidance", type=float, default=C.SAMPLE_GUIDANCE)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from diffusers import SanaPipeline
    from PIL import Image

    pipe = SanaPipeline.from_pretrained(args.model, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    os.makedirs(args.out, exist_ok=True)
    prompts = args.prompt or PROMPTS
    images = []
    for pi, prompt in enumerate(prompts):
        for s in range(args.seed, args.seed + args.seeds):
            t0 = time.time()
            img = pipe(prompt, height=C.RESOLUTION, width=C.RESOLUTION, num_inference_steps=args.steps,
                       guidance_scale=args.guidance, use_resolution_binning=False,
                       generator=torch.Generator().manual_seed(s)).images[0]
            name = f"p{pi:02d}_s{s}.png"
            img.save(os.path.join(args.out, name))
            images.append(img)
            print(f"{name}  {time.time() - t0:.1f} s  {prompt}", flush=True)
    cols = args.seeds
    grid = Image.new("RGB", (C.RESOLUTION * cols, C.RESOLUTION * len(prompts)))
    for i, img in enumerate(images):
        grid.paste(img, ((i % cols) * C.RESOLUTION, (i // cols) * C.RESOLUTION))
    grid.save(os.path.join(args.out, "grid.png"))


if __name__ == "__main__":
    main()
