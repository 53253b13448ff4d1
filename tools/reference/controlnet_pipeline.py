#!/usr/bin/env python3
"""ControlNet: random SanaControlNetModel folders and diffusers' SanaControlNetPipeline pictures.

Run from the repository root with the reference venv:  python tools/reference/controlnet_pipeline.py

Writes, with fixed seeds:
- Tests/Fixtures/Pipeline/tiny-controlnet/: a SanaControlNetModel (2 blocks) matched to the tiny random pipeline
  Tests/Fixtures/Pipeline/tiny-sana (text2img_pipeline.py), and Tests/Fixtures/Pipeline/controlnet/: control
  images, SanaControlNetPipeline pictures (CPU, torch CPU generator seeded with the case's seed, output_type "np",
  rounded to uint8 as diffusers' numpy_to_pil does) and cases.json, replayed by
  Tests/CLITests/ModelWorkflowTests.swift through Graphs/controlnet.yaml.
- Tests/Fixtures/Pipeline/shapes-controlnet/: a random 1-block ControlNet matched to the shipped model
  (models/sana-shapes), so Graphs/controlnet.yaml can run on it in `make test` (its pictures are not meaningful).

diffusers zero-initialises input_block and controlnet_blocks (a fresh ControlNet changes nothing); here they are
random so that the residuals matter. Weights are stored as fp16 and run in fp32 on both sides.
"""
import json
import os
import shutil

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = os.path.join("Tests", "Fixtures", "Pipeline")
MODEL = os.path.join(ROOT, "tiny-sana")
NET = os.path.join(ROOT, "tiny-controlnet")
SHAPES_NET = os.path.join(ROOT, "shapes-controlnet")
OUT = os.path.join(ROOT, "controlnet")

CASES = [
    dict(id="cn_dpm_6", prompt="a red circle above a blue square on a white background", seed=0, steps=6,
         width=64, height=64, guidance=4.5, conditioning_scale=1.0, control_image="control_64x64.png"),
    dict(id="cn_scale05_noguidance_5", prompt="a purple ring", seed=3, steps=5, width=64, height=64,
         guidance=1.0, conditioning_scale=0.5, control_image="control_64x64.png"),
    dict(id="cn_resized_negative_4", prompt="three shapes in a row", negative="blurry", seed=7, steps=4,
         width=96, height=64, guidance=3.0, conditioning_scale=1.5, control_image="control_64x64.png"),
]


def control_image(width: int, height: int) -> Image.Image:
    """Black outlines on white, as an edge-map ControlNet takes."""
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    d.ellipse([width * 0.1, height * 0.1, width * 0.5, height * 0.5], outline="black", width=max(1, width // 32))
    d.rectangle([width * 0.55, height * 0.45, width * 0.9, height * 0.9], outline="black", width=max(1, width // 32))
    return img


def save_controlnet(folder: str, seed: int, **config) -> None:
    from diffusers import SanaControlNetModel

    torch.manual_seed(seed)
    net = SanaControlNetModel(**config).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.startswith("input_block") or name.startswith("controlnet_blocks"):
                p.normal_(0.0, 0.05)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    net.to(torch.float16).save_pretrained(folder, safe_serialization=True)
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg.pop("_name_or_path", None)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True, allow_nan=False)
        f.write("\n")


def main() -> None:
    torch.set_num_threads(2)
    from diffusers import SanaControlNetModel, SanaControlNetPipeline, SanaPipeline

    base = SanaPipeline.from_pretrained(MODEL, torch_dtype=torch.float32)
    t = base.transformer.config
    save_controlnet(NET, 20261205, in_channels=t.in_channels, out_channels=t.out_channels,
                    num_attention_heads=t.num_attention_heads, attention_head_dim=t.attention_head_dim, num_layers=2,
                    num_cross_attention_heads=t.num_cross_attention_heads,
                    cross_attention_head_dim=t.cross_attention_head_dim,
                    cross_attention_dim=t.cross_attention_dim, caption_channels=t.caption_channels,
                    mlp_ratio=t.mlp_ratio, sample_size=t.sample_size, patch_size=t.patch_size,
                    interpolation_scale=t.interpolation_scale)
    with open(os.path.join("models", "sana-shapes", "transformer", "config.json")) as f:
        s = json.load(f)
    save_controlnet(SHAPES_NET, 20261206, in_channels=s["in_channels"], out_channels=s["out_channels"],
                    num_attention_heads=s["num_attention_heads"], attention_head_dim=s["attention_head_dim"],
                    num_layers=1, num_cross_attention_heads=s["num_cross_attention_heads"],
                    cross_attention_head_dim=s["cross_attention_head_dim"],
                    cross_attention_dim=s["cross_attention_dim"], caption_channels=s["caption_channels"],
                    mlp_ratio=s["mlp_ratio"], sample_size=s["sample_size"], patch_size=s["patch_size"],
                    interpolation_scale=s["interpolation_scale"])

    net = SanaControlNetModel.from_pretrained(NET, torch_dtype=torch.float32)
    pipe = SanaControlNetPipeline(tokenizer=base.tokenizer, text_encoder=base.text_encoder, vae=base.vae,
                                  transformer=base.transformer, controlnet=net, scheduler=base.scheduler)
    pipe.set_progress_bar_config(disable=True)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    control_image(64, 64).save(os.path.join(OUT, "control_64x64.png"))
    control_image(256, 256).save(os.path.join(OUT, "control_256x256.png"))
    cases = []
    for case in CASES:
        control = Image.open(os.path.join(OUT, case["control_image"])).convert("RGB")
        images = pipe(case["prompt"], negative_prompt=case.get("negative", ""), num_inference_steps=case["steps"],
                      guidance_scale=case["guidance"], height=case["height"], width=case["width"],
                      control_image=control, controlnet_conditioning_scale=case["conditioning_scale"],
                      use_resolution_binning=False, generator=torch.Generator("cpu").manual_seed(case["seed"]),
                      output_type="np").images
        img = (images[0] * 255).round().astype("uint8")
        Image.fromarray(img).save(os.path.join(OUT, case["id"] + ".png"))
        cases.append({**dict(negative=""), **case})
        print(f"{case['id']}: {img.shape[1]}x{img.shape[0]} mean {img.mean():.1f} std {img.std():.1f}")
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"model": MODEL, "controlnet": NET, "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
