#!/usr/bin/env python3
"""img2img and inpainting with SANA as diffusers' flow-matching pipelines do them (issue #20).

Run from the repository root with the reference venv:  python tools/reference/flow_img2img_inpaint.py
(needs Tests/Fixtures/Pipeline/tiny-sana from tools/reference/text2img_pipeline.py).

diffusers 0.42.1 has no SANA img2img or inpaint pipeline, so this follows the convention of its flow-matching
ones (StableDiffusion3Img2ImgPipeline / StableDiffusion3InpaintPipeline, FluxImg2ImgPipeline / FluxInpaintPipeline)
on SanaPipeline's own components and loop (encode_prompt, classifier-free guidance, transformer, the SANA
DPMSolverMultistepScheduler):
  * the picture is resized to width x height by the pipeline's image processor (Lanczos) and encoded by the
    AutoencoderDC: x0 = vae.encode(image).latent * scaling_factor;
  * get_timesteps(steps, strength): t_start = int(max(N - min(N * strength, N), 0)), the scheduler's
    set_begin_index(t_start), and the start x = add_noise(x0, noise, timesteps[t_start]) = (1 - s) x0 + s noise
    at that step's sigma s (DPMSolverMultistepScheduler.add_noise; FlowMatchEuler's scale_noise is the same);
    noise = randn_tensor(latent shape, CPU generator seeded with the seed);
  * inpainting: after every scheduler step i the latent is blended as the SD3/Flux inpaint loops do,
    x = (1 - m) * add_noise(x0, noise, sigma_{i+1}) + m * x (the clean x0 after the last step), where m is the
    mask on the latent grid. The mask's preparation is SanaGraph's own (SD3 binarises and takes nearest
    neighbours; documented in docs/workflows.md): grayscale (0.299 R + 0.587 G + 0.114 B) of the mask picture,
    adaptive average pooling to the latent grid, then an optional Gaussian blur of sigma `feather` latent cells
    (taps -r..r with r = ceil(3 sigma), weights normalised, edges replicated), then 1 - m when `invert`.

The inpainting cases start from a picture of the output size: Pillow rounds each resize pass to 8 bits and
image.resize does not (it agrees within 1/255), which this tiny random autoencoder amplifies to 3/255; the img2img
cases cover the resize. The mask picture is 200x150 (pooled to the grid on both sides).

Writes Tests/Fixtures/Pipeline/workflows/<id>.png, the input/mask pictures and cases.json, which
Tests/CLITests/WorkflowPipelineTests.swift replays through Graphs/img2img.yaml and Graphs/inpaint.yaml.
"""
import inspect
import json
import math
import os
import shutil

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

ROOT = os.path.join("Tests", "Fixtures", "Pipeline")
MODEL = os.path.join(ROOT, "tiny-sana")
OUT = os.path.join(ROOT, "workflows")

CASES = [
    dict(id="img2img_s06_10", graph="img2img", prompt="a purple ring on a gray background", seed=3, steps=10,
         strength=0.6, width=128, height=96, image="input_200x150.png"),
    dict(id="img2img_s03_8_nocfg", graph="img2img", prompt="three shapes in a row", seed=8, steps=8,
         strength=0.3, guidance=1.0, width=96, height=96, image="input_200x150.png"),
    dict(id="img2img_s1_5_neg", graph="img2img", prompt="a green heart", negative="blurry", seed=1, steps=5,
         strength=1.0, width=128, height=128, image="input_200x150.png"),
    dict(id="inpaint_s1_10", graph="inpaint", prompt="a yellow star", seed=5, steps=10, strength=1.0,
         feather=0.0, width=256, height=192, image="input_256x192.png", mask="mask_200x150.png"),
    dict(id="inpaint_s08_6_feather", graph="inpaint", prompt="an orange cross", seed=2, steps=6, strength=0.8,
         feather=0.7, width=256, height=192, image="input_256x192.png", mask="mask_200x150.png"),
    dict(id="inpaint_invert_4", graph="inpaint", prompt="a blue circle", seed=9, steps=4, strength=1.0,
         feather=0.0, invert=True, width=256, height=192, image="input_256x192.png", mask="mask_200x150.png"),
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


def mask_picture(width: int, height: int) -> Image.Image:
    """White = repaint: a rectangle over the right half's upper part, black elsewhere (RGB, as users draw them)."""
    img = Image.new("RGB", (width, height), (0, 0, 0))
    ImageDraw.Draw(img).rectangle([width * 11 // 20, height // 10, width * 19 // 20, height * 11 // 20],
                                  fill=(255, 255, 255))
    return img


def latent_mask(picture: Image.Image, grid: tuple, feather: float, invert: bool) -> torch.Tensor:
    """[1, 1, h, w]: SanaGraph's mask preparation (see the module docstring)."""
    rgb = torch.from_numpy(np.asarray(picture, dtype=np.float64) / 255.0)
    luma = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    m = F.adaptive_avg_pool2d(luma[None, None], grid)
    if feather > 0:
        r = math.ceil(3 * feather)
        k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float64) ** 2 / (2 * feather * feather))
        k = k / k.sum()
        m = F.pad(m, (r, r, r, r), mode="replicate")
        m = F.conv2d(m, k.view(1, 1, 1, -1))
        m = F.conv2d(m, k.view(1, 1, -1, 1))
    if invert:
        m = 1 - m
    return m.float()


def render(pipe, case: dict) -> np.ndarray:
    from diffusers.utils.torch_utils import randn_tensor

    width, height, guidance = case["width"], case["height"], case.get("guidance", 4.5)
    cfg = guidance > 1
    instruction = inspect.signature(type(pipe).__call__).parameters["complex_human_instruction"].default
    pos, pos_mask, neg, neg_mask = pipe.encode_prompt(
        case["prompt"], cfg, negative_prompt=case.get("negative", ""), max_sequence_length=300,
        complex_human_instruction=instruction)
    embeds = torch.cat([neg, pos]) if cfg else pos
    mask = torch.cat([neg_mask, pos_mask]) if cfg else pos_mask

    picture = Image.open(os.path.join(OUT, case["image"])).convert("RGB")
    pixels = pipe.image_processor.preprocess(picture, height=height, width=width)
    x0 = pipe.vae.encode(pixels).latent * pipe.vae.config.scaling_factor
    noise = randn_tensor(x0.shape, generator=torch.Generator("cpu").manual_seed(case["seed"]), dtype=torch.float32)

    scheduler = pipe.scheduler
    n = case["steps"]
    scheduler.set_timesteps(n)
    t_start = int(max(n - min(n * case["strength"], n), 0))
    timesteps = scheduler.timesteps[t_start:]
    scheduler.set_begin_index(t_start)
    latents = scheduler.add_noise(x0, noise, timesteps[:1])

    m = None
    if case["graph"] == "inpaint":
        m = latent_mask(Image.open(os.path.join(OUT, case["mask"])).convert("RGB"), tuple(x0.shape[2:]),
                        case.get("feather", 0.0), case.get("invert", False))

    for i, t in enumerate(timesteps):
        model_in = torch.cat([latents] * 2) if cfg else latents
        timestep = t.expand(model_in.shape[0]) * pipe.transformer.config.timestep_scale
        v = pipe.transformer(model_in, encoder_hidden_states=embeds, encoder_attention_mask=mask, timestep=timestep,
                             return_dict=False)[0].float()
        if cfg:
            v_uncond, v_text = v.chunk(2)
            v = v_uncond + guidance * (v_text - v_uncond)
        latents = scheduler.step(v, t, latents, return_dict=False)[0]
        if m is not None:
            # add_noise after a step uses the scheduler's step_index: sigma_{i+1} (0 after the last step).
            proper = scheduler.add_noise(x0, noise, timesteps[:1]) if i < len(timesteps) - 1 else x0
            latents = (1 - m) * proper + m * latents

    image = pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0]
    image = pipe.image_processor.postprocess(image, output_type="np")
    return (image[0] * 255).round().astype("uint8")


def main() -> None:
    from diffusers import SanaPipeline

    torch.set_num_threads(2)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    input_picture(200, 150).save(os.path.join(OUT, "input_200x150.png"))
    input_picture(256, 192).save(os.path.join(OUT, "input_256x192.png"))
    mask_picture(200, 150).save(os.path.join(OUT, "mask_200x150.png"))
    pipe = SanaPipeline.from_pretrained(MODEL, torch_dtype=torch.float32)
    cases = []
    with torch.no_grad():
        for case in CASES:
            img = render(pipe, case)
            Image.fromarray(img).save(os.path.join(OUT, case["id"] + ".png"))
            full = {**dict(negative="", guidance=4.5, feather=0.0, invert=False), **case}
            cases.append(full)
            print(f"{case['id']}: {img.shape[1]}x{img.shape[0]} mean {img.mean():.1f} std {img.std():.1f}")
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"model": MODEL, "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
