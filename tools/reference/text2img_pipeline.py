#!/usr/bin/env python3
"""A tiny random SANA pipeline in diffusers layout, and SanaPipeline's images from it (Tests/Fixtures/Pipeline/).

Run from the repository root with the reference venv:  python tools/reference/text2img_pipeline.py

Builds, with fixed seeds, a `SanaPipeline` folder Tests/Fixtures/Pipeline/tiny-sana/ (model_index.json,
text_encoder/ = transformers Gemma2Model, tokenizer/ = the shipped models/sana-shapes tokenizer (a Gemma-style
tokenizer.json), transformer/ = SanaTransformer2DModel, vae/ = AutoencoderDC with 6 stages (spatial factor 32 as
SANA's DC-AE f32c32), scheduler/ = SANA's DPMSolverMultistepScheduler config), every class the real one with tiny
sizes, weights stored as fp16 and run in fp32 on both sides. Then renders each case of CASES with diffusers'
SanaPipeline on the CPU (torch CPU generator seeded with the case's seed, output_type "np", rounded to uint8 as
diffusers' numpy_to_pil does) and writes Tests/Fixtures/Pipeline/tiny/<id>.png plus tiny/cases.json, which the Swift test
(Tests/CLITests/Text2ImgPipelineTests.swift) replays through Graphs/text2img.yaml / Graphs/text2img-euler.yaml.

The Euler cases swap in FlowMatchEulerDiscreteScheduler(shift=<the DPM config's flow_shift>), which is what
sample.flow_euler does with the model's scheduler config.
"""
import json
import os
import shutil

import numpy as np
import torch
from PIL import Image

ROOT = os.path.join("Tests", "Fixtures", "Pipeline")
MODEL = os.path.join(ROOT, "tiny-sana")
OUT = os.path.join(ROOT, "tiny")
TOKENIZER = os.path.join("models", "sana-shapes", "tokenizer")

# SanaPipeline's defaults are guidance 4.5, 20 steps, negative "". Width/height 0 = the model's native size
# (sample_size 16 × vae factor 32 = 512 px), as the graphs' "auto". Sizes are small to keep CI fast.
CASES = [
    dict(id="dpm_square_20", graph="text2img", prompt="a red circle above a blue square on a white background",
         seed=0, steps=20, width=64, height=64),
    dict(id="dpm_wide_8", graph="text2img", prompt="A small yellow STAR in the top left corner  ",
         seed=1, steps=8, width=160, height=96),
    dict(id="dpm_tall_5_g3", graph="text2img", prompt="a green heart on the right", seed=42, steps=5,
         guidance=3.0, width=64, height=128),
    dict(id="dpm_negative_6", graph="text2img", prompt="three shapes in a row", negative="blurry, low quality",
         seed=7, steps=6, width=96, height=96),
    dict(id="dpm_noguidance_4", graph="text2img", prompt="a purple ring", seed=3, steps=4, guidance=1.0,
         width=128, height=64),
    dict(id="dpm_auto_3", graph="text2img", prompt="a cyan diamond in the center", seed=5, steps=3,
         width=0, height=0),
    dict(id="dpm_binning_4", graph="text2img", prompt="an orange cross at the bottom", seed=11, steps=4,
         width=320, height=200, resolution_binning=True),
    dict(id="euler_square_10", graph="text2img-euler", prompt="a red circle above a blue square on a white background",
         seed=0, steps=10, width=64, height=64),
    dict(id="euler_wide_4", graph="text2img-euler", prompt="a black square left of a pink triangle", seed=9,
         steps=4, width=128, height=96),
    dict(id="euler_tall_7_g6", graph="text2img-euler", prompt="ünïcödé, CJK 漢字 and emoji 🎨", seed=123,
         steps=7, guidance=6.0, width=96, height=160),
]


def build(folder: str) -> None:
    from diffusers import AutoencoderDC, DPMSolverMultistepScheduler, SanaPipeline, SanaTransformer2DModel
    from transformers import AutoTokenizer, Gemma2Config, Gemma2Model

    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
    torch.manual_seed(20261126)
    text_encoder = Gemma2Model(Gemma2Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=1024,
        rms_norm_eps=1e-6, rope_theta=10000.0, attention_bias=False, hidden_activation="gelu_pytorch_tanh",
        query_pre_attn_scalar=32, sliding_window=4096, final_logit_softcapping=30.0, attn_logit_softcapping=50.0,
        pad_token_id=0, eos_token_id=1, bos_token_id=2)).eval()
    transformer = SanaTransformer2DModel(
        in_channels=8, out_channels=8, num_attention_heads=2, attention_head_dim=16, num_layers=2,
        num_cross_attention_heads=2, cross_attention_head_dim=16, cross_attention_dim=32, caption_channels=64,
        mlp_ratio=2.5, sample_size=16, patch_size=1, interpolation_scale=None).eval()
    vae = AutoencoderDC(
        in_channels=3, latent_channels=8, attention_head_dim=8,
        encoder_block_types=["ResBlock"] * 3 + ["EfficientViTBlock"] * 3,
        decoder_block_types=["ResBlock"] * 3 + ["EfficientViTBlock"] * 3,
        encoder_block_out_channels=[8, 8, 16, 16, 32, 32], decoder_block_out_channels=[8, 8, 16, 16, 32, 32],
        encoder_layers_per_block=[1, 1, 1, 1, 1, 1], decoder_layers_per_block=[1, 1, 1, 1, 1, 1],
        encoder_qkv_multiscales=[[], [], [], [5], [5], [5]], decoder_qkv_multiscales=[[], [], [], [5], [5], [5]],
        upsample_block_type="interpolate", downsample_block_type="Conv", decoder_norm_types="rms_norm",
        decoder_act_fns="silu", scaling_factor=0.41407).eval()
    pipe = SanaPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                        scheduler=DPMSolverMultistepScheduler(
                            num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                            solver_order=2, prediction_type="flow_prediction", thresholding=False,
                            algorithm_type="dpmsolver++", solver_type="midpoint", lower_order_final=True,
                            euler_at_final=False, final_sigmas_type="zero", use_flow_sigmas=True, flow_shift=3.0))
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    # fp16 files (half the size; both sides load them as fp32, so the references use the fp16-rounded weights).
    pipe.to(torch.float16)
    pipe.save_pretrained(folder, safe_serialization=True)
    # The tokenizer byte for byte as shipped (save_pretrained rewrites its config with local keys).
    shutil.rmtree(os.path.join(folder, "tokenizer"))
    shutil.copytree(TOKENIZER, os.path.join(folder, "tokenizer"))
    # Strict JSON, no machine-specific keys (as tools/train/export.py does for the shipped model).
    for sub, name in [("vae", "config.json"), ("transformer", "config.json"), ("text_encoder", "config.json"),
                      ("scheduler", "scheduler_config.json")]:
        path = os.path.join(folder, sub, name)
        with open(path) as f:
            cfg = json.load(f)
        cfg.pop("_name_or_path", None)
        if cfg.get("lambda_min_clipped") == float("-inf"):
            del cfg["lambda_min_clipped"]
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True, allow_nan=False)
            f.write("\n")


def render(pipe, case: dict) -> np.ndarray:
    from diffusers import DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler

    dpm_config = DPMSolverMultistepScheduler.load_config(os.path.join(MODEL, "scheduler"))
    if case["graph"] == "text2img-euler":
        pipe.scheduler = FlowMatchEulerDiscreteScheduler(shift=dpm_config["flow_shift"])
    else:
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(dpm_config)
    native = pipe.transformer.config.sample_size * pipe.vae_scale_factor
    images = pipe(case["prompt"], negative_prompt=case.get("negative", ""), num_inference_steps=case["steps"],
                  guidance_scale=case.get("guidance", 4.5), height=case["height"] or native,
                  width=case["width"] or native, use_resolution_binning=case.get("resolution_binning", False),
                  generator=torch.Generator("cpu").manual_seed(case["seed"]), output_type="np").images
    return (images[0] * 255).round().astype("uint8")  # diffusers' numpy_to_pil


def main() -> None:
    torch.set_num_threads(2)
    from diffusers import SanaPipeline

    build(MODEL)
    pipe = SanaPipeline.from_pretrained(MODEL, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    cases = []
    for case in CASES:
        img = render(pipe, case)
        Image.fromarray(img).save(os.path.join(OUT, case["id"] + ".png"))
        full = {**dict(negative="", guidance=4.5, resolution_binning=False), **case}
        full["expected_width"], full["expected_height"] = img.shape[1], img.shape[0]
        cases.append(full)
        print(f"{case['id']}: {img.shape[1]}x{img.shape[0]} mean {img.mean():.1f} std {img.std():.1f}")
    # Graphs/text2img-upscale.yaml: the first case, then a x2 Lanczos resize (PIL's, which image.resize matches).
    first = Image.open(os.path.join(OUT, CASES[0]["id"] + ".png"))
    first.resize((first.width * 2, first.height * 2), Image.LANCZOS).save(os.path.join(OUT, "upscale_x2.png"))
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"model": MODEL, "cases": cases, "upscale": {"case": CASES[0]["id"], "factor": 2,
                                                               "reference": "upscale_x2.png"}},
                  f, indent=1, ensure_ascii=False)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(r, n)) for d in (MODEL, OUT) for r, _, fs in os.walk(d) for n in fs)
    print(f"wrote {MODEL} and {OUT}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
