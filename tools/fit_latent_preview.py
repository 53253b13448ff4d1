#!/usr/bin/env python3
"""Fits the linear latent -> RGB projection that `sanagraph run --preview N` draws previews with.

Usage (reference venv, from the repository root):
    python tools/fit_latent_preview.py models/sana-shapes/vae [--size 512] [--images 48]

Encodes a fixed set of synthetic pictures (flat backgrounds, gradients, discs and boxes in saturated and pastel
colours; seeded, so the fit is reproducible) with the folder's diffusers AutoencoderDC, scales the latents by
scaling_factor (the latents the denoiser sees), averages each picture over the autoencoder's cells
(spatial_compression_ratio x ratio pixels) and solves rgb = W z + b by least squares over all cells. Writes
VAE_FOLDER/latent_preview.json = {"weights": [3][C], "bias": [3]} (read by dcae.load; docs/cli.md#previews) and
prints the fit's RMS error on the cells (0..1 scale). A preview is a rough picture one cell per pixel, nothing more.
"""
import argparse
import json
import os

import numpy as np
import torch


def pictures(count: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """[count, 3, size, size] in [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((count, 3, size, size), dtype=np.float32)
    for i in range(count):
        a, b = rng.random(3), rng.random(3)
        angle = rng.random() * 2 * np.pi
        t = (np.cos(angle) * xx + np.sin(angle) * yy + 1) / 2
        img = a[:, None, None] * (1 - t) + b[:, None, None] * t if i % 2 else np.broadcast_to(a[:, None, None], (3, size, size)).copy()
        for _ in range(rng.integers(1, 5)):
            colour = rng.random(3) if rng.random() < 0.5 else (rng.random(3) > 0.5).astype(float)
            cx, cy, r = rng.random(), rng.random(), 0.08 + 0.25 * rng.random()
            inside = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r) if rng.random() < 0.5 else \
                ((abs(xx - cx) < r) & (abs(yy - cy) < r * (0.5 + rng.random())))
            img = np.where(inside[None], colour[:, None, None], img)
        out[i] = img
    return out


def main() -> None:
    from diffusers import AutoencoderDC

    parser = argparse.ArgumentParser()
    parser.add_argument("vae_folder")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--images", type=int, default=48)
    args = parser.parse_args()
    torch.set_num_threads(2)
    vae = AutoencoderDC.from_pretrained(args.vae_folder, torch_dtype=torch.float32).eval()
    f = vae.spatial_compression_ratio
    imgs = pictures(args.images, args.size, np.random.default_rng(20261205))
    zs, rgbs = [], []
    with torch.no_grad():
        for k in range(0, len(imgs), 4):
            x = torch.from_numpy(imgs[k:k + 4])
            z = vae.encode(x * 2 - 1).latent * vae.config.scaling_factor
            zs.append(z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).numpy())
            cells = torch.nn.functional.avg_pool2d(x, f)
            rgbs.append(cells.permute(0, 2, 3, 1).reshape(-1, 3).numpy())
    z, rgb = np.concatenate(zs).astype(np.float64), np.concatenate(rgbs).astype(np.float64)
    design = np.concatenate([z, np.ones((len(z), 1))], axis=1)
    solution, *_ = np.linalg.lstsq(design, rgb, rcond=None)
    fitted = np.clip(design @ solution, 0, 1)
    rms = float(np.sqrt(np.mean((fitted - rgb) ** 2)))
    weights = [[round(float(v), 6) for v in solution[:-1, k]] for k in range(3)]
    bias = [round(float(v), 6) for v in solution[-1]]
    path = os.path.join(args.vae_folder, "latent_preview.json")
    with open(path, "w") as fh:
        json.dump({"weights": weights, "bias": bias}, fh, indent=1)
        fh.write("\n")
    print(f"{path}: {z.shape[1]} channels, {len(z)} cells, RMS error {rms:.4f}")


if __name__ == "__main__":
    main()
