"""Semantic check of the shipped model on held-out captions (the kind of check CI will run on Swift renders).

    python tools/train/evaluate.py --count 24 --out /tmp/eval

Draws captions from the dataset grammar with a seed no training run used (--seed, default 1000), renders each with
SanaPipeline at the sampling defaults, and scores:

* background: the colour nearest to the median of the picture's border pixels is the requested one;
* colour: at least 0.3 % of the pixels are near each requested shape colour;
* place: for captions with a position or relation, the centroid of each shape colour's pixels lies where the
  caption says (same half / corner as the training layout; relation = centroid order along the axis).

Shape kinds are not scored (no classifier); look at the saved grid for those.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import configs as C  # noqa: E402
import dataset  # noqa: E402

NAMES = list(dataset.COLOURS)
PALETTE = np.array([dataset.COLOURS[n] for n in NAMES], dtype=np.float32)


def nearest_colour(pixels: np.ndarray) -> np.ndarray:
    d = ((pixels[..., None, :].astype(np.float32) - PALETTE) ** 2).sum(-1)
    return d.argmin(-1)


def score(img: np.ndarray, scene: dataset.Scene, caption: str) -> dict:
    labels = nearest_colour(img)
    dist = np.sqrt(((img[..., None, :].astype(np.float32) - PALETTE) ** 2).sum(-1).min(-1))
    labels[dist > 60] = -1  # pixels far from every named colour (edges, blends)
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    bg = NAMES[int(nearest_colour(np.median(border, axis=0)[None])[0])]
    result = {"caption": caption, "background_ok": None, "colours_ok": True, "place_ok": None}
    if " background" in caption:
        result["background_ok"] = bg == scene.background
    h, w = labels.shape
    centroids = []
    for shape in scene.shapes:
        ys, xs = np.nonzero(labels == NAMES.index(shape.colour))
        if len(xs) < 0.003 * h * w:
            result["colours_ok"] = False
            centroids.append(None)
        else:
            centroids.append((xs.mean() / w, ys.mean() / h))
    words = caption.split(" on a")[0].split(" on an")[0]
    if len(scene.shapes) == 1 and any(p in words for p in dataset.POSITIONS):
        c = centroids[0]
        if c is not None:
            tx, ty = scene.shapes[0].cx, scene.shapes[0].cy
            ok = True
            for got, want in ((c[0], tx), (c[1], ty)):
                if abs(want - 0.5) > 0.15:
                    ok &= (got - 0.5) * (want - 0.5) > 0 and abs(got - 0.5) > 0.08
                else:
                    ok &= abs(got - 0.5) < 0.2
            result["place_ok"] = bool(ok)
        else:
            result["place_ok"] = False
    elif len(scene.shapes) >= 2:
        if None in centroids:
            result["place_ok"] = False
        else:
            axis = 1 if (" above " in words or " below " in words) else 0
            order = [c[axis] for c in centroids]
            want = [s.cy if axis else s.cx for s in scene.shapes]
            result["place_ok"] = bool(np.argsort(order).tolist() == np.argsort(want).tolist())
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(os.path.dirname(__file__), "..", "..", "models", "sana-shapes"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=24)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from diffusers import SanaPipeline
    from PIL import Image

    pipe = SanaPipeline.from_pretrained(args.model, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    os.makedirs(args.out, exist_ok=True)
    results, images = [], []
    for i in range(args.count):
        scene = dataset.sample_scene(random.Random(args.seed * 1_000_003 + i))
        img = pipe(scene.caption, height=C.RESOLUTION, width=C.RESOLUTION, num_inference_steps=C.SAMPLE_STEPS,
                   guidance_scale=C.SAMPLE_GUIDANCE, use_resolution_binning=False,
                   generator=torch.Generator().manual_seed(i)).images[0]
        images.append(img)
        r = score(np.asarray(img), scene, scene.caption)
        results.append(r)
        print(json.dumps(r), flush=True)
    cols = 6
    grid = Image.new("RGB", (C.RESOLUTION * cols, C.RESOLUTION * ((len(images) + cols - 1) // cols)))
    for i, img in enumerate(images):
        grid.paste(img, ((i % cols) * C.RESOLUTION, (i // cols) * C.RESOLUTION))
    grid.save(os.path.join(args.out, "grid.png"))
    summary = {}
    for key in ("background_ok", "colours_ok", "place_ok"):
        vals = [r[key] for r in results if r[key] is not None]
        summary[key] = f"{sum(vals)}/{len(vals)}"
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"summary": summary, "results": results}, f, indent=1)
    print("summary", summary)


if __name__ == "__main__":
    main()
