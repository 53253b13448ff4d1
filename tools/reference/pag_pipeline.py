#!/usr/bin/env python3
"""Perturbed-attention guidance: diffusers' SanaPAGPipeline pictures from the tiny random SANA pipeline
(Tests/Fixtures/Pipeline/tiny-sana, built by text2img_pipeline.py) into Tests/Fixtures/Pipeline/pag/.

Run from the repository root with the reference venv:  python tools/reference/pag_pipeline.py

Each case is rendered on the CPU with `SanaPAGPipeline(..., pag_applied_layers=<case's layers>)` (torch CPU
generator seeded with the case's seed, output_type "np", rounded to uint8 as diffusers' numpy_to_pil does) and
written as pag/<id>.png plus pag/cases.json, which Tests/CLITests/ModelWorkflowTests.swift replays through
Graphs/text2img-pag.yaml (sample.flow_dpm_solver / sample.flow_euler with pag_scale, pag_applied_layers,
pag_adaptive_scale). The Euler case swaps in FlowMatchEulerDiscreteScheduler(shift=<the DPM config's flow_shift>).
"""
import json
import os
import shutil

import numpy as np
import torch
from PIL import Image

ROOT = os.path.join("Tests", "Fixtures", "Pipeline")
MODEL = os.path.join(ROOT, "tiny-sana")
OUT = os.path.join(ROOT, "pag")

# pag_applied_layers is one string here (the graph's param: comma-separated patterns); diffusers gets the list.
CASES = [
    dict(id="pag_dpm_8", solver="flow_dpm_solver", prompt="a red circle above a blue square on a white background",
         seed=0, steps=8, width=64, height=64, guidance=4.5, pag_scale=3.0, pag_applied_layers="transformer_blocks.1"),
    dict(id="pag_noguidance_6", solver="flow_dpm_solver", prompt="a purple ring", seed=3, steps=6, width=96,
         height=64, guidance=1.0, pag_scale=2.0, pag_applied_layers="transformer_blocks.0"),
    dict(id="pag_two_layers_5", solver="flow_dpm_solver", prompt="three shapes in a row", negative="blurry",
         seed=7, steps=5, width=64, height=96, guidance=3.0, pag_scale=1.5,
         pag_applied_layers="transformer_blocks.0, transformer_blocks.1"),
    dict(id="pag_euler_adaptive_6", solver="flow_euler", prompt="a green heart on the right", seed=42, steps=6,
         width=64, height=64, guidance=4.5, pag_scale=3.0, pag_adaptive_scale=0.004,
         pag_applied_layers=r"blocks\.(0|1)"),
]


def render(case: dict) -> np.ndarray:
    from diffusers import DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler, SanaPAGPipeline

    layers = [p.strip() for p in case["pag_applied_layers"].split(",")]
    pipe = SanaPAGPipeline.from_pretrained(MODEL, torch_dtype=torch.float32, pag_applied_layers=layers)
    pipe.set_progress_bar_config(disable=True)
    dpm_config = DPMSolverMultistepScheduler.load_config(os.path.join(MODEL, "scheduler"))
    if case["solver"] == "flow_euler":
        pipe.scheduler = FlowMatchEulerDiscreteScheduler(shift=dpm_config["flow_shift"])
    else:
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(dpm_config)
    images = pipe(case["prompt"], negative_prompt=case.get("negative", ""), num_inference_steps=case["steps"],
                  guidance_scale=case["guidance"], height=case["height"], width=case["width"],
                  use_resolution_binning=False, pag_scale=case["pag_scale"],
                  pag_adaptive_scale=case.get("pag_adaptive_scale", 0.0),
                  generator=torch.Generator("cpu").manual_seed(case["seed"]), output_type="np").images
    return (images[0] * 255).round().astype("uint8")  # diffusers' numpy_to_pil


def main() -> None:
    torch.set_num_threads(2)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    cases = []
    for case in CASES:
        img = render(case)
        Image.fromarray(img).save(os.path.join(OUT, case["id"] + ".png"))
        cases.append({**dict(negative="", pag_adaptive_scale=0.0), **case})
        print(f"{case['id']}: {img.shape[1]}x{img.shape[0]} mean {img.mean():.1f} std {img.std():.1f}")
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"model": MODEL, "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
