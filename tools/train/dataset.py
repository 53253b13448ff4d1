"""Procedural captioned pictures for training the shipped SANA-architecture model.

Every example is a pure function of ``(seed, index)``: one to three flat-coloured shapes on a plain
background, drawn with PIL at 4x the training resolution and box-filtered down (antialiased edges),
with an English caption in the small language described below.

Caption language (all lower case, as SanaPipeline lowercases prompts anyway):

* one shape:    "a [small|large] <colour> <shape> [<position>] [on a <colour> background]"
  positions:    "in the center", "on the left", "on the right", "at the top", "at the bottom",
                "in the top left corner", "in the top right corner", "in the bottom left corner",
                "in the bottom right corner"; no position phrase = anywhere.
* two shapes:   "a <colour> <shape> <relation> a <colour> <shape> [on a <colour> background]"
  relations:    "above", "below", "left of", "right of"
* three shapes: "a <colour> <shape>, a <colour> <shape> and a <colour> <shape> [on a ...]",
                listed from left to right.

No size word means a medium shape. No background phrase (10 % of captions) means any background.

Run ``python tools/train/dataset.py --out /tmp/ds --count 16`` to write a few PNGs + captions to look at.
"""

from __future__ import annotations

import argparse
import math
import os
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 35),
    "green": (30, 160, 60),
    "blue": (35, 75, 220),
    "yellow": (245, 215, 35),
    "orange": (245, 135, 20),
    "purple": (135, 50, 180),
    "pink": (245, 135, 190),
    "brown": (125, 75, 35),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "gray": (128, 128, 128),
    "cyan": (40, 200, 220),
}

SHAPES = ["circle", "square", "triangle", "star", "heart", "cross", "ring", "diamond"]

# Fraction of the picture's side covered by the shape's bounding box.
SIZES = {"small": (0.16, 0.20), "medium": (0.26, 0.31), "large": (0.40, 0.46)}

POSITIONS: dict[str, tuple[float, float]] = {
    "in the center": (0.5, 0.5),
    "on the left": (0.25, 0.5),
    "on the right": (0.75, 0.5),
    "at the top": (0.5, 0.25),
    "at the bottom": (0.5, 0.75),
    "in the top left corner": (0.25, 0.25),
    "in the top right corner": (0.75, 0.25),
    "in the bottom left corner": (0.25, 0.75),
    "in the bottom right corner": (0.75, 0.75),
}

RELATIONS = ["above", "below", "left of", "right of"]

SUPERSAMPLE = 4


@dataclass
class Shape:
    kind: str
    colour: str
    size: float  # bounding-box side as a fraction of the picture side
    cx: float  # centre, fractions of the picture side (x right, y down)
    cy: float


@dataclass
class Scene:
    background: str
    shapes: list[Shape]
    caption: str


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _phrase(size_word: str | None, colour: str, kind: str) -> str:
    words = ([size_word] if size_word else []) + [colour, kind]
    return f"{_article(words[0])} {' '.join(words)}"


def _clamp_centre(c: float, size: float) -> float:
    half = size / 2 + 0.02
    return min(max(c, half), 1 - half)


def sample_scene(rng: random.Random) -> Scene:
    """Draws one scene description (shapes, colours, layout and caption) from ``rng``."""
    colour_names = list(COLOURS)
    background = rng.choice(colour_names)
    fg_colours = [c for c in colour_names if c != background]
    count = rng.choices([1, 2, 3], weights=[0.45, 0.40, 0.15])[0]
    colours = rng.sample(fg_colours, count)
    kinds = [rng.choice(SHAPES) for _ in range(count)]
    shapes: list[Shape] = []

    if count == 1:
        size_word = rng.choices(["small", None, "large"], weights=[0.35, 0.35, 0.30])[0]
        size = rng.uniform(*SIZES[size_word or "medium"])
        if rng.random() < 0.25:
            pos_phrase = None
            cx, cy = rng.uniform(0, 1), rng.uniform(0, 1)
        else:
            pos_phrase = rng.choice(list(POSITIONS))
            cx, cy = POSITIONS[pos_phrase]
            cx += rng.uniform(-0.04, 0.04)
            cy += rng.uniform(-0.04, 0.04)
        shapes.append(Shape(kinds[0], colours[0], size, _clamp_centre(cx, size), _clamp_centre(cy, size)))
        caption = _phrase(size_word, colours[0], kinds[0])
        if pos_phrase:
            caption += " " + pos_phrase
    elif count == 2:
        relation = rng.choice(RELATIONS)
        size_words = [rng.choices(["small", None, "large"], weights=[0.35, 0.45, 0.20])[0] for _ in range(2)]
        if size_words == ["large", "large"]:
            size_words[1] = None
        sizes = [rng.uniform(*SIZES[w or "medium"]) for w in size_words]
        near, far = 0.27 + rng.uniform(-0.03, 0.03), 0.73 + rng.uniform(-0.03, 0.03)
        across = [0.5 + rng.uniform(-0.15, 0.15), 0.5 + rng.uniform(-0.15, 0.15)]
        # First-named shape A is "<relation>" the second one B.
        along = {"above": (near, far), "below": (far, near), "left of": (near, far), "right of": (far, near)}[relation]
        for i in range(2):
            if relation in ("above", "below"):
                cx, cy = across[i], along[i]
            else:
                cx, cy = along[i], across[i]
            shapes.append(Shape(kinds[i], colours[i], sizes[i], _clamp_centre(cx, sizes[i]), _clamp_centre(cy, sizes[i])))
        caption = f"{_phrase(size_words[0], colours[0], kinds[0])} {relation} {_phrase(size_words[1], colours[1], kinds[1])}"
    else:
        parts = []
        for i in range(3):
            size_word = rng.choices(["small", None], weights=[0.5, 0.5])[0]
            size = rng.uniform(*SIZES[size_word or "medium"])
            cx = 0.2 + 0.3 * i + rng.uniform(-0.03, 0.03)
            cy = 0.5 + rng.uniform(-0.12, 0.12)
            shapes.append(Shape(kinds[i], colours[i], size, _clamp_centre(cx, size), _clamp_centre(cy, size)))
            parts.append(_phrase(size_word, colours[i], kinds[i]))
        caption = f"{parts[0]}, {parts[1]} and {parts[2]}"

    if rng.random() < 0.9:
        caption += f" on {_article(background)} {background} background"
    return Scene(background, shapes, caption)


def _star(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    pts = []
    for k in range(10):
        rad = r if k % 2 == 0 else r * 0.42
        a = -math.pi / 2 + k * math.pi / 5
        pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a) + r * 0.1))
    return pts


def _heart(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    pts = []
    for k in range(96):
        t = 2 * math.pi * k / 96
        x = 16 * math.sin(t) ** 3
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        pts.append((cx + x * r / 16.5, cy - (y + 2.5) * r / 16.5))
    return pts


def draw_shape(draw: ImageDraw.ImageDraw, shape: Shape, side: int, background: tuple[int, int, int]) -> None:
    """Draws ``shape`` on a ``side``-pixel canvas."""
    fill = COLOURS[shape.colour]
    cx, cy, r = shape.cx * side, shape.cy * side, shape.size * side / 2
    if shape.kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape.kind == "square":
        h = r * 0.9
        draw.rectangle([cx - h, cy - h, cx + h, cy + h], fill=fill)
    elif shape.kind == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r * 0.8), (cx + r, cy + r * 0.8)], fill=fill)
    elif shape.kind == "star":
        draw.polygon(_star(cx, cy, r), fill=fill)
    elif shape.kind == "heart":
        draw.polygon(_heart(cx, cy, r), fill=fill)
    elif shape.kind == "cross":
        t = r * 0.34
        draw.rectangle([cx - r, cy - t, cx + r, cy + t], fill=fill)
        draw.rectangle([cx - t, cy - r, cx + t, cy + r], fill=fill)
    elif shape.kind == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
        inner = r * 0.55
        draw.ellipse([cx - inner, cy - inner, cx + inner, cy + inner], fill=background)
    elif shape.kind == "diamond":
        draw.polygon([(cx, cy - r), (cx + r * 0.8, cy), (cx, cy + r), (cx - r * 0.8, cy)], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape.kind!r}")


def render(scene: Scene, resolution: int) -> Image.Image:
    """Renders ``scene`` as an RGB picture of ``resolution`` x ``resolution`` pixels."""
    side = resolution * SUPERSAMPLE
    bg = COLOURS[scene.background]
    img = Image.new("RGB", (side, side), bg)
    draw = ImageDraw.Draw(img)
    for shape in scene.shapes:
        draw_shape(draw, shape, side, bg)
    return img.reduce(SUPERSAMPLE)


def example(seed: int, index: int, resolution: int = 256) -> tuple[Image.Image, str]:
    """The ``index``-th example of the dataset with ``seed``: (picture, caption)."""
    rng = random.Random(seed * 1_000_003 + index)
    scene = sample_scene(rng)
    return render(scene, resolution), scene.caption


def caption_only(seed: int, index: int) -> str:
    """The caption of ``example(seed, index)`` without rendering it."""
    return sample_scene(random.Random(seed * 1_000_003 + index)).caption


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=16)
    ap.add_argument("--resolution", type=int, default=256)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "captions.txt"), "w") as f:
        for i in range(args.count):
            img, cap = example(args.seed, i, args.resolution)
            img.save(os.path.join(args.out, f"{i:05d}.png"))
            f.write(f"{i:05d}.png\t{cap}\n")
            print(f"{i:05d}.png  {cap}")


if __name__ == "__main__":
    main()
