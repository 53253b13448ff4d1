#!/usr/bin/env python3
"""LoRA: random LoRA files in the layout SanaPipeline.load_lora_weights reads, and diffusers' pictures with them.

Run from the repository root with the reference venv, which needs peft (`make reference-venv` installs it;
diffusers' LoRA loading needs its PEFT backend), or add it beside another venv:
    pip install --target /tmp/peft-lib --no-deps peft==0.21.2 accelerate==1.16.0 psutil
    PYTHONPATH=/tmp/peft-lib python tools/reference/lora_pipeline.py

Writes Tests/Fixtures/Pipeline/lora/:
- lora_r4.safetensors: rank 4 on every attention projection (attn1/attn2 to_q, to_k, to_v, to_out.0) of the tiny
  random pipeline Tests/Fixtures/Pipeline/tiny-sana, with lora_adapter_metadata r=4, lora_alpha=8 (scale 2);
- lora_r16.safetensors: rank 16 on the Mix-FFN 1x1 convs (4-D [r, in, 1, 1] / [out, r, 1, 1] matrices), proj_out,
  time_embed.linear and caption_projection.linear_1, without metadata (diffusers then takes alpha = rank);
- bad_keys.safetensors (a block the model does not have), bad_shape.safetensors (a rank-4 pair of the wrong
  width), for the error tests;
- shapes_r4.safetensors: rank 4 on the shipped model's (models/sana-shapes) self-attention, so
  Graphs/text2img-lora.yaml runs on it in `make test` (the picture is not meaningful);
- <id>.png and cases.json: SanaPipeline after load_lora_weights (+ set_adapters with the cases' strengths) on
  the CPU (torch CPU generator seeded with the case's seed, output_type "np", rounded as numpy_to_pil does),
  replayed by Tests/CLITests/ModelWorkflowTests.swift through Graphs/text2img-lora.yaml (one lora.apply per LoRA).
"""
import json
import os
import shutil

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

ROOT = os.path.join("Tests", "Fixtures", "Pipeline")
MODEL = os.path.join(ROOT, "tiny-sana")
OUT = os.path.join(ROOT, "lora")

CASES = [
    dict(id="lora_r4_s1", loras=[["lora_r4.safetensors", 1.0]], prompt="a red circle above a blue square",
         seed=0, steps=6, width=64, height=64, guidance=4.5),
    dict(id="lora_r16_s05", loras=[["lora_r16.safetensors", 0.5]], prompt="a purple ring", seed=3, steps=5,
         width=96, height=64, guidance=3.0),
    dict(id="lora_stacked", loras=[["lora_r4.safetensors", 0.5], ["lora_r16.safetensors", 1.0]],
         prompt="three shapes in a row", seed=7, steps=5, width=64, height=64, guidance=4.5),
]


def lora_pair(gen, out_f, in_f, rank, conv=False, std=0.08):
    a = torch.randn(rank, in_f, generator=gen) * std
    b = torch.randn(out_f, rank, generator=gen) * std
    if conv:
        a, b = a[:, :, None, None], b[:, :, None, None]
    return a.contiguous(), b.contiguous()


def write(path, modules, shapes, rank, gen, metadata=None, dtype=torch.float32, conv=(), std=0.08):
    sd = {}
    for m in modules:
        out_f, in_f = shapes[m]
        a, b = lora_pair(gen, out_f, in_f, rank, conv=m in conv, std=std)
        sd[f"transformer.{m}.lora_A.weight"] = a.to(dtype)
        sd[f"transformer.{m}.lora_B.weight"] = b.to(dtype)
    meta = {"format": "pt"}
    if metadata:
        meta["lora_adapter_metadata"] = json.dumps({f"transformer.{k}": v for k, v in metadata.items()},
                                                   indent=2, sort_keys=True)
    save_file(sd, path, metadata=meta)


def linear_shapes(transformer):
    shapes = {}
    for name, mod in transformer.named_modules():
        if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)):
            shapes[name] = (mod.weight.shape[0], mod.weight.shape[1])
    return shapes


def main() -> None:
    torch.set_num_threads(2)
    from diffusers import SanaPipeline, SanaTransformer2DModel

    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    gen = torch.Generator().manual_seed(20261207)
    tiny = SanaTransformer2DModel.from_pretrained(os.path.join(MODEL, "transformer"))
    shapes = linear_shapes(tiny)
    layers = tiny.config.num_layers
    attn = [f"transformer_blocks.{i}.{a}.{p}" for i in range(layers) for a in ("attn1", "attn2")
            for p in ("to_q", "to_k", "to_v", "to_out.0")]
    write(os.path.join(OUT, "lora_r4.safetensors"), attn, shapes, 4, gen,
          metadata=dict(r=4, lora_alpha=8, target_modules=sorted({m.split(".", 2)[2] for m in attn})))
    ffn = [f"transformer_blocks.{i}.ff.{c}" for i in range(layers) for c in ("conv_inverted", "conv_point")]
    write(os.path.join(OUT, "lora_r16.safetensors"),
          ffn + ["proj_out", "time_embed.linear", "caption_projection.linear_1"], shapes, 16, gen, conv=set(ffn))
    write(os.path.join(OUT, "bad_keys.safetensors"), ["transformer_blocks.9.attn1.to_q"],
          {"transformer_blocks.9.attn1.to_q": (32, 32)}, 4, gen)
    write(os.path.join(OUT, "bad_shape.safetensors"), ["transformer_blocks.0.attn1.to_q"],
          {"transformer_blocks.0.attn1.to_q": (32, 48)}, 4, gen)

    shipped = SanaTransformer2DModel.from_pretrained(os.path.join("models", "sana-shapes", "transformer"))
    s_shapes = linear_shapes(shipped)
    s_attn = [f"transformer_blocks.{i}.attn1.{p}" for i in range(shipped.config.num_layers)
              for p in ("to_q", "to_k", "to_v", "to_out.0")]
    write(os.path.join(OUT, "shapes_r4.safetensors"), s_attn, s_shapes, 4, gen, dtype=torch.float16, std=0.05)

    cases = []
    for case in CASES:
        pipe = SanaPipeline.from_pretrained(MODEL, torch_dtype=torch.float32)
        pipe.set_progress_bar_config(disable=True)
        names = []
        for i, (file, _) in enumerate(case["loras"]):
            pipe.load_lora_weights(OUT, weight_name=file, adapter_name=f"a{i}")
            names.append(f"a{i}")
        pipe.set_adapters(names, adapter_weights=[s for _, s in case["loras"]])
        images = pipe(case["prompt"], negative_prompt="", num_inference_steps=case["steps"],
                      guidance_scale=case["guidance"], height=case["height"], width=case["width"],
                      use_resolution_binning=False, generator=torch.Generator("cpu").manual_seed(case["seed"]),
                      output_type="np").images
        img = (images[0] * 255).round().astype("uint8")
        Image.fromarray(img).save(os.path.join(OUT, case["id"] + ".png"))
        cases.append(case)
        print(f"{case['id']}: {img.shape[1]}x{img.shape[0]} mean {img.mean():.1f} std {img.std():.1f}")
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"model": MODEL, "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
