#!/usr/bin/env python3
"""diffusers' SanaPipeline pictures from the shipped model (Tests/Fixtures/Pipeline/shipped/).

Run from the repository root with the reference venv:  python tools/reference/shipped_model_parity.py

Renders each prompt of CASES with models/sana-shapes at the model card's defaults (256 x 256, 20 steps, guidance
4.5, negative "", DPMSolverMultistepScheduler as shipped, use_resolution_binning=False, torch CPU generator seeded
with the case's seed, output_type "np" rounded to uint8 as diffusers' numpy_to_pil does) and writes
shipped/<id>.png plus shipped/cases.json. Each case also lists what the picture must show (the background colour,
and for each shape colour the box, in fractions of the side, where most of its pixels must lie); the script
checks these on diffusers' pictures before writing, and Tests/CLITests/ShippedModelTests.swift checks the same
on the pictures Graphs/text2img.yaml renders (and that they equal these within 2/255).
"""
import json
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image

MODEL = os.path.join("models", "sana-shapes")
OUT = os.path.join("Tests", "Fixtures", "Pipeline", "shipped")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
from dataset import COLOURS  # noqa: E402  (the palette the model was trained on)

TOP, BOTTOM, LEFT, RIGHT = [0, 0, 1, 0.5], [0, 0.5, 1, 1], [0, 0, 0.5, 1], [0.5, 0, 1, 1]
TOP_LEFT = [0, 0, 0.5, 0.5]

# Prompts the model draws reliably (models/sana-shapes/README.md, "What it can and cannot draw").
CASES = [
    dict(id="red_circle_above_blue_square", seed=0,
         prompt="a red circle above a blue square on a white background",
         background="white", shapes=[dict(colour="red", box=TOP), dict(colour="blue", box=BOTTOM)]),
    dict(id="yellow_star_top_left", seed=0,
         prompt="a small yellow star in the top left corner on a blue background",
         background="blue", shapes=[dict(colour="yellow", box=TOP_LEFT)]),
    dict(id="purple_heart_left_of_orange_ring", seed=1,
         prompt="a purple heart left of an orange ring on a gray background",
         background="gray", shapes=[dict(colour="purple", box=LEFT), dict(colour="orange", box=RIGHT)]),
    dict(id="green_triangle_right", seed=2,
         prompt="a large green triangle on the right on a black background",
         background="black", shapes=[dict(colour="green", box=RIGHT)]),
]

NAMES = list(COLOURS)
PALETTE = np.array([COLOURS[n] for n in NAMES], dtype=np.float32)
# A pixel counts as a named colour when it is within this RGB distance of it (tools/train/evaluate.py's rule).
MAX_DISTANCE = 60.0
# The share of a colour's pixels that must lie inside its box.
MIN_SHARE_IN_BOX = 0.8
# The least area (fraction of the picture) a requested shape colour must cover.
MIN_AREA = 0.005


def check(img: np.ndarray, case: dict) -> list[str]:
    """The semantic checks the Swift test repeats; returns the failures."""
    px = img.astype(np.float32)
    d = ((px[..., None, :] - PALETTE) ** 2).sum(-1)
    labels = d.argmin(-1)
    labels[np.sqrt(d.min(-1)) > MAX_DISTANCE] = -1
    border = np.concatenate([px[0], px[-1], px[:, 0], px[:, -1]])
    median = np.median(border, axis=0)
    bg = NAMES[int(((median - PALETTE) ** 2).sum(-1).argmin())]
    failures = [] if bg == case["background"] else [f"background {bg}, wanted {case['background']}"]
    h, w = labels.shape
    for shape in case["shapes"]:
        ys, xs = np.nonzero(labels == NAMES.index(shape["colour"]))
        if len(xs) < MIN_AREA * h * w:
            failures.append(f"{shape['colour']}: {len(xs)} pixels")
            continue
        x0, y0, x1, y1 = shape["box"]
        inside = ((xs + 0.5 >= x0 * w) & (xs + 0.5 <= x1 * w) & (ys + 0.5 >= y0 * h) & (ys + 0.5 <= y1 * h)).mean()
        if inside < MIN_SHARE_IN_BOX:
            failures.append(f"{shape['colour']}: {inside:.2f} of its pixels in {shape['box']}")
    return failures


def main() -> None:
    torch.set_num_threads(2)
    from diffusers import SanaPipeline

    pipe = SanaPipeline.from_pretrained(MODEL, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    cases = []
    for case in CASES:
        images = pipe(case["prompt"], negative_prompt="", num_inference_steps=20, guidance_scale=4.5, height=256,
                      width=256, use_resolution_binning=False,
                      generator=torch.Generator("cpu").manual_seed(case["seed"]), output_type="np").images
        img = (images[0] * 255).round().astype("uint8")  # diffusers' numpy_to_pil
        failures = check(img, case)
        if failures:
            raise SystemExit(f"{case['id']}: diffusers' picture fails its own checks: {failures}; pick another "
                             "prompt or seed")
        Image.fromarray(img).save(os.path.join(OUT, case["id"] + ".png"))
        cases.append({**case, "steps": 20, "guidance": 4.5, "width": 256, "height": 256})
        print(f"{case['id']}: ok")
    palette = {n: list(COLOURS[n]) for n in NAMES}
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"model": MODEL, "palette": palette, "max_distance": MAX_DISTANCE,
                   "min_share_in_box": MIN_SHARE_IN_BOX, "min_area": MIN_AREA, "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
