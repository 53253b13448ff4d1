#!/usr/bin/env python3
"""Tiny random pipelines of the SANA family in diffusers layout, and diffusers' pictures from them (issue #19).

Run from the repository root with the reference venv:  python tools/reference/sana_family_pipelines.py
(needs Tests/Fixtures/Pipeline/tiny-sana from tools/reference/text2img_pipeline.py).

Writes, under Tests/Fixtures/Pipeline/:
  tiny-sprint/   a SanaSprintPipeline folder: transformer/ with Sana-Sprint's switches (qk_norm across heads,
                 guidance_embeds, guidance_embeds_scale 0.1, sample_size 32 as the 1024 px Sprint models),
                 scheduler/ = SCMScheduler as convert_sana_to_diffusers.py writes it;
  tiny-sana15/   SANA 1.5 style: qk_norm across heads (self- and cross-attention), sample_size 32;
  tiny-sana4k/   SANA 4K style: sin-cos PE with interpolation_scale 2.0, sample_size 128 (the 4096 px bins),
                 scheduler flow_shift 6.0;
each with text_encoder/, tokenizer/ and vae/ as relative symlinks to tiny-sana's (same latent space, nothing
duplicated), weights stored fp16 and run in fp32 on both sides. Then renders CASES with SanaSprintPipeline,
SanaSprintImg2ImgPipeline and SanaPipeline (CPU generator seeded with the case's seed, output_type "np", rounded to
uint8 as numpy_to_pil) into Tests/Fixtures/Pipeline/family/<id>.png and family/cases.json, which
Tests/CLITests/SanaFamilyPipelineTests.swift replays through Graphs/sprint.yaml, Graphs/sprint-img2img.yaml and
Graphs/text2img.yaml (unchanged).
"""
import json
import os
import shutil
import tempfile

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = os.path.join("Tests", "Fixtures", "Pipeline")
BASE = os.path.join(ROOT, "tiny-sana")
OUT = os.path.join(ROOT, "family")

TRANSFORMER = dict(in_channels=8, out_channels=8, num_attention_heads=2, attention_head_dim=16, num_layers=2,
                   num_cross_attention_heads=2, cross_attention_head_dim=16, cross_attention_dim=32,
                   caption_channels=64, mlp_ratio=2.5, patch_size=1)
MODELS = {
    "tiny-sprint": dict(transformer=dict(sample_size=32, qk_norm="rms_norm_across_heads", guidance_embeds=True,
                                         guidance_embeds_scale=0.1),
                        scheduler="scm", pipeline="SanaSprintPipeline"),
    "tiny-sana15": dict(transformer=dict(sample_size=32, qk_norm="rms_norm_across_heads"),
                        scheduler="base", pipeline="SanaPipeline"),
    "tiny-sana4k": dict(transformer=dict(sample_size=128, interpolation_scale=2.0),
                        scheduler="dpm6", pipeline="SanaPipeline"),
}

# Sprint: steps 1, 2 (intermediate timestep 1.3, the pipeline's default) and 4 (linspace, no intermediate).
CASES = [
    dict(id="sprint_1step", model="tiny-sprint", graph="sprint", prompt="a red circle above a blue square",
         seed=0, steps=1, width=128, height=96),
    dict(id="sprint_2step", model="tiny-sprint", graph="sprint", prompt="A small yellow STAR in the top left  ",
         seed=3, steps=2, width=96, height=160),
    dict(id="sprint_4step_g3", model="tiny-sprint", graph="sprint", prompt="a green heart on the right",
         seed=42, steps=4, guidance=3.0, width=128, height=128),
    dict(id="sprint_binning_2step", model="tiny-sprint", graph="sprint", prompt="an orange cross at the bottom",
         seed=11, steps=2, width=300, height=200, resolution_binning=True),
    dict(id="sprint_img2img_4step_s05", model="tiny-sprint", graph="sprint-img2img",
         prompt="a purple ring on a gray background", seed=5, steps=4, strength=0.5, width=128, height=96,
         image="input_160x120.png"),
    dict(id="sprint_img2img_2step_s04", model="tiny-sprint", graph="sprint-img2img",
         prompt="three shapes in a row", seed=8, steps=2, strength=0.4, width=96, height=96,
         image="input_96x96.png"),
    dict(id="sana15_dpm_8", model="tiny-sana15", graph="text2img", prompt="a cyan diamond in the center", seed=1,
         steps=8, width=128, height=96),
    dict(id="sana15_binning_5", model="tiny-sana15", graph="text2img", prompt="a black square left of a triangle",
         negative="blurry", seed=4, steps=5, width=250, height=400, resolution_binning=True),
    dict(id="sana4k_dpm_6", model="tiny-sana4k", graph="text2img", prompt="a pink triangle", seed=2, steps=6,
         width=192, height=256),
    dict(id="sana4k_binning_4", model="tiny-sana4k", graph="text2img", prompt="a blue circle on white", seed=6,
         steps=4, width=400, height=300, resolution_binning=True),
]


def input_picture(width: int, height: int) -> Image.Image:
    """A deterministic picture: a gradient with two shapes."""
    x = np.linspace(0, 1, width)[None, :, None]
    y = np.linspace(0, 1, height)[:, None, None]
    arr = np.concatenate([0.2 + 0.6 * x + 0 * y, 0.3 + 0.5 * y + 0 * x, 0.8 - 0.5 * x * y], axis=2)
    img = Image.fromarray((arr * 255).round().astype("uint8"))
    d = ImageDraw.Draw(img)
    d.ellipse([width // 5, height // 5, width // 2, height // 2], fill=(220, 40, 40))
    d.rectangle([width // 2, height // 2, width * 4 // 5, height * 9 // 10], fill=(40, 60, 200))
    return img


def build(name: str, spec: dict) -> None:
    from diffusers import (DPMSolverMultistepScheduler, SanaPipeline, SanaSprintPipeline, SanaTransformer2DModel,
                           SCMScheduler)

    folder = os.path.join(ROOT, name)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    transformer = SanaTransformer2DModel(**TRANSFORMER, **spec["transformer"]).eval()
    for pname, p in transformer.named_parameters():  # every parameter matters (diffusers' tables start tiny)
        p.data = (1.0 + 0.2 * torch.randn_like(p)) if "norm" in pname else 0.3 * torch.randn_like(p)
    if spec["scheduler"] == "scm":
        scheduler = SCMScheduler(num_train_timesteps=1000, prediction_type="trigflow", sigma_data=0.5)
    else:
        config = DPMSolverMultistepScheduler.load_config(os.path.join(BASE, "scheduler"))
        if spec["scheduler"] == "dpm6":
            config["flow_shift"] = 6.0
        scheduler = DPMSolverMultistepScheduler.from_config(config)
    base = SanaPipeline.from_pretrained(BASE, torch_dtype=torch.float16)
    cls = SanaSprintPipeline if spec["pipeline"] == "SanaSprintPipeline" else SanaPipeline
    pipe = cls(tokenizer=base.tokenizer, text_encoder=base.text_encoder, vae=base.vae,
               transformer=transformer.to(torch.float16), scheduler=scheduler)
    with tempfile.TemporaryDirectory() as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
        shutil.copy(os.path.join(tmp, "model_index.json"), folder)
        for sub, cfg in [("transformer", "config.json"), ("scheduler", "scheduler_config.json")]:
            if sub == "scheduler" and spec["scheduler"] == "base":
                continue
            shutil.copytree(os.path.join(tmp, sub), os.path.join(folder, sub))
            path = os.path.join(folder, sub, cfg)
            with open(path) as f:
                data = json.load(f)
            data.pop("_name_or_path", None)
            if data.get("lambda_min_clipped") == float("-inf"):
                del data["lambda_min_clipped"]
            with open(path, "w") as f:
                json.dump(data, f, indent=2, sort_keys=True, allow_nan=False)
                f.write("\n")
    shared = ["text_encoder", "tokenizer", "vae"] + (["scheduler"] if spec["scheduler"] == "base" else [])
    for sub in shared:
        os.symlink(os.path.join("..", "tiny-sana", sub), os.path.join(folder, sub))


def render(case: dict) -> np.ndarray:
    from diffusers import SanaPipeline, SanaSprintImg2ImgPipeline, SanaSprintPipeline

    folder = os.path.join(ROOT, case["model"])
    generator = torch.Generator("cpu").manual_seed(case["seed"])
    common = dict(num_inference_steps=case["steps"], guidance_scale=case.get("guidance", 4.5),
                  height=case["height"], width=case["width"], generator=generator, output_type="np",
                  use_resolution_binning=case.get("resolution_binning", False))
    if case["graph"] == "sprint":
        pipe = SanaSprintPipeline.from_pretrained(folder, torch_dtype=torch.float32)
        pipe.set_progress_bar_config(disable=True)
        images = pipe(case["prompt"], intermediate_timesteps=1.3 if case["steps"] == 2 else None, **common).images
    elif case["graph"] == "sprint-img2img":
        pipe = SanaSprintImg2ImgPipeline.from_pretrained(folder, torch_dtype=torch.float32)
        pipe.set_progress_bar_config(disable=True)
        image = Image.open(os.path.join(OUT, case["image"])).convert("RGB")
        images = pipe(case["prompt"], image=image, strength=case["strength"],
                      intermediate_timesteps=1.3 if case["steps"] == 2 else None, **common).images
    else:
        pipe = SanaPipeline.from_pretrained(folder, torch_dtype=torch.float32)
        pipe.set_progress_bar_config(disable=True)
        images = pipe(case["prompt"], negative_prompt=case.get("negative", ""), **common).images
    return (images[0] * 255).round().astype("uint8")


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(20261201)
    for name, spec in MODELS.items():
        build(name, spec)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    input_picture(160, 120).save(os.path.join(OUT, "input_160x120.png"))
    input_picture(96, 96).save(os.path.join(OUT, "input_96x96.png"))
    cases = []
    for case in CASES:
        img = render(case)
        Image.fromarray(img).save(os.path.join(OUT, case["id"] + ".png"))
        full = {**dict(negative="", guidance=4.5, resolution_binning=False), **case}
        full["expected_width"], full["expected_height"] = img.shape[1], img.shape[0]
        cases.append(full)
        print(f"{case['id']}: {img.shape[1]}x{img.shape[0]} mean {img.mean():.1f} std {img.std():.1f}")
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"cases": cases}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(r, n)) for d in [OUT] + [os.path.join(ROOT, m) for m in MODELS]
                for r, _, fs in os.walk(d) for n in fs)
    print(f"wrote {OUT} and {', '.join(MODELS)}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
