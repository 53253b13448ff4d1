#!/usr/bin/env python3
"""Whole sampling loops with a tiny random Sana DiT (Tests/Fixtures/FlowSolvers/dit_loop.safetensors).

Run from the repository root with the reference venv:  python tools/reference/dit_sampling_loop.py

Loads the tiny random transformer that tools/reference/linear_dit.py saved in
Tests/Fixtures/LinearDiT/basic_f32/transformer with diffusers' SanaTransformer2DModel and runs
pipeline_sana.py's denoising loop on seeded random conditioning and noise, for DPMSolverMultistepScheduler
(SANA's config, as in flow_solvers.py) and FlowMatchEulerDiscreteScheduler(shift=3), with guidance 4.5
(batch order [negative; positive]) and without (guidance 1, positive only).

Writes dit_loop.safetensors:
  latents                 initial noise [1, C, H, W]
  positive, negative      text embeddings [1, L, D] (random values also at masked positions)
  positive_mask, negative_mask   [1, L] with trailing padding (0)
  <kind>_<steps>_g<guidance>     final latents of each loop
  dpm_<steps>_g4.5_timestep_scale0.5   the DPM loop with the config's timestep_scale set to 0.5
"""
import os
import sys

import torch
from diffusers import SanaTransformer2DModel
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flow_solvers import dpm, euler  # noqa: E402  (the same scheduler construction)

MODEL = os.path.join("Tests", "Fixtures", "LinearDiT", "basic_f32", "transformer")
OUT = os.path.join("Tests", "Fixtures", "FlowSolvers", "dit_loop.safetensors")
STEPS = 6
SHIFT = 3.0


@torch.no_grad()
def run_loop(model, kind, guidance, latents, pos, pos_mask, neg, neg_mask):
    """pipeline_sana.py's denoising loop (SanaPipeline.__call__, step 7)."""
    sch = dpm(SHIFT) if kind == "dpm" else euler(SHIFT)
    sch.set_timesteps(STEPS)
    cfg = guidance > 1.0
    emb = torch.cat([neg, pos]) if cfg else pos
    mask = torch.cat([neg_mask, pos_mask]) if cfg else pos_mask
    for t in sch.timesteps:
        inp = torch.cat([latents] * 2) if cfg else latents
        timestep = t.expand(inp.shape[0])
        timestep = timestep * model.config.timestep_scale
        v = model(inp, encoder_hidden_states=emb, encoder_attention_mask=mask, timestep=timestep,
                  return_dict=False)[0].float()
        if cfg:
            u, c = v.chunk(2)
            v = u + guidance * (c - u)
        latents = sch.step(v, t, latents, return_dict=False)[0]
    return latents


def main():
    torch.set_num_threads(1)
    model = SanaTransformer2DModel.from_pretrained(MODEL, torch_dtype=torch.float32).eval()
    cfg = model.config
    g = torch.Generator().manual_seed(2024)
    L, D = 7, cfg.caption_channels
    latents = torch.randn((1, cfg.in_channels, 4, 6), generator=g)
    pos = torch.randn((1, L, D), generator=g)
    neg = torch.randn((1, L, D), generator=g) * 0.5
    pos_mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0]], dtype=torch.float32)
    neg_mask = torch.tensor([[1, 1, 0, 0, 0, 0, 0]], dtype=torch.float32)
    tensors = dict(latents=latents, positive=pos, negative=neg, positive_mask=pos_mask, negative_mask=neg_mask)
    for kind in ["dpm", "euler"]:
        for guidance in [4.5, 1.0]:
            out = run_loop(model, kind, guidance, latents, pos, pos_mask, neg, neg_mask)
            tensors[f"{kind}_{STEPS}_g{guidance}"] = out.contiguous()
    # A checkpoint whose config scales the timestep (SanaPipeline multiplies by transformer.config.timestep_scale;
    # the Swift test loads basic_f32 with timestep_scale 0.5 written into a copy of its config.json).
    model.register_to_config(timestep_scale=0.5)
    tensors[f"dpm_{STEPS}_g4.5_timestep_scale0.5"] = run_loop(model, "dpm", 4.5, latents, pos, pos_mask, neg,
                                                               neg_mask).contiguous()
    save_file({k: v.contiguous() for k, v in tensors.items()}, OUT)
    print(f"wrote {OUT}: " + ", ".join(k for k in tensors))


if __name__ == "__main__":
    main()
