#!/usr/bin/env python3
"""bf16 accuracy fixtures: PyTorch's bf16 outputs beside its fp32 outputs, on the shipped model (Tests/Fixtures/BF16/).

Run from the repository root with the reference venv:  python tools/reference/bf16_accuracy.py

For models/sana-shapes (a trained model: realistic weights and activations) this records, on the same inputs,
what diffusers/transformers compute in fp32 and with the model in torch.bfloat16 on CPU (which is how a user runs
bf16 in PyTorch): the Gemma-2 prompt encoding (SanaPipeline.encode_prompt, complex human instruction), one
transformer forward (batch 2, CFG-style), one DC-AE decode, and a whole 20-step text-to-image picture. The Swift
tests (Tests/*/BF16AccuracyTests.swift) run SanaGraph with precision bf16 on the same inputs and require its
error against the fp32 output to be at most 1.5x PyTorch bf16's error.
"""
import inspect
import json
import os

import numpy as np
import torch
from safetensors.torch import save_file

MODEL = os.path.join("models", "sana-shapes")
OUT = os.path.join("Tests", "Fixtures", "BF16")
PROMPT = "a red circle above a blue square on a white background"
SEED = 0


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max|a - b| / max|b| (the project's relative error)."""
    return float((a - b).abs().max() / b.abs().max())


def main() -> None:
    torch.set_num_threads(2)
    from diffusers import SanaPipeline

    os.makedirs(OUT, exist_ok=True)
    f32 = SanaPipeline.from_pretrained(MODEL, torch_dtype=torch.float32)
    b16 = SanaPipeline.from_pretrained(MODEL, torch_dtype=torch.bfloat16)
    for p in (f32, b16):
        p.set_progress_bar_config(disable=True)
    chi = list(inspect.signature(SanaPipeline.__call__).parameters["complex_human_instruction"].default)
    out = {}
    report = {}

    with torch.no_grad():
        # Gemma-2: the positive prompt with the complex human instruction, 300 tokens kept.
        emb32, mask, _, _ = f32.encode_prompt(PROMPT, do_classifier_free_guidance=False, device="cpu",
                                              max_sequence_length=300, complex_human_instruction=chi)
        emb16, mask16, _, _ = b16.encode_prompt(PROMPT, do_classifier_free_guidance=False, device="cpu",
                                                max_sequence_length=300, complex_human_instruction=chi)
        assert torch.equal(mask, mask16)
        out["gemma.mask"] = mask.float().contiguous()
        out["gemma.fp32"] = emb32.float().contiguous()
        out["gemma.bf16"] = emb16.contiguous()  # bf16 values: stored as BF16, exactly
        report["gemma"] = rel(emb16.float(), emb32)

        # Transformer: batch 2 (an unconditional row of zeros-masked text and the prompt), one step's timestep.
        g = torch.Generator("cpu").manual_seed(SEED)
        cfg = f32.transformer.config
        latent = torch.randn(2, cfg.in_channels, cfg.sample_size, cfg.sample_size, generator=g)
        text = torch.cat([emb32, emb32 * 0.5]).contiguous()
        text_mask = torch.cat([mask, mask]).contiguous()
        timestep = torch.tensor([999.0, 500.0])
        v32 = f32.transformer(latent, encoder_hidden_states=text, encoder_attention_mask=text_mask,
                              timestep=timestep, return_dict=False)[0]
        v16 = b16.transformer(latent.bfloat16(), encoder_hidden_states=text.bfloat16(),
                              encoder_attention_mask=text_mask, timestep=timestep.bfloat16(), return_dict=False)[0]
        out.update({"dit.latent": latent, "dit.text": text, "dit.mask": text_mask.float(), "dit.timestep": timestep,
                    "dit.fp32": v32.float().contiguous(), "dit.bf16": v16.contiguous()})
        report["dit"] = rel(v16.float(), v32)

        # DC-AE: the fp32 pipeline's final latent for the prompt (realistic statistics), decoded.
        z = f32(PROMPT, negative_prompt="", num_inference_steps=20, guidance_scale=4.5, height=256, width=256,
                use_resolution_binning=False, generator=torch.Generator("cpu").manual_seed(SEED),
                output_type="latent").images
        z = z / f32.vae.config.scaling_factor
        d32 = f32.vae.decode(z, return_dict=False)[0]
        d16 = b16.vae.decode(z.bfloat16(), return_dict=False)[0]
        out.update({"dcae.latent": z.contiguous(), "dcae.fp32": d32.float().contiguous(),
                    "dcae.bf16": d16.contiguous()})
        report["dcae"] = rel(d16.float(), d32)

    # The whole picture: 256 x 256, 20 steps, guidance 4.5, as Graphs/text2img.yaml renders it by default.
    pictures = {}
    for name, pipe in (("fp32", f32), ("bf16", b16)):
        images = pipe(PROMPT, negative_prompt="", num_inference_steps=20, guidance_scale=4.5, height=256, width=256,
                      use_resolution_binning=False, generator=torch.Generator("cpu").manual_seed(SEED),
                      output_type="np").images
        pictures[name] = (images[0] * 255).round().astype("uint8")  # diffusers' numpy_to_pil
        out["text2img." + name] = torch.from_numpy(pictures[name]).contiguous()  # uint8 [H, W, 3]
    diff = np.abs(pictures["bf16"].astype(np.float32) - pictures["fp32"].astype(np.float32))
    report["text2img_mean_abs_255"] = float(diff.mean())
    report["text2img_max_abs_255"] = float(diff.max())

    path = os.path.join(OUT, "sana_shapes.safetensors")
    save_file({k: v.contiguous() for k, v in out.items()}, path)
    os.chmod(path, 0o644)
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"model": MODEL, "prompt": PROMPT, "seed": SEED, "steps": 20, "guidance": 4.5, "width": 256,
                   "height": 256, "torch": torch.__version__, "pytorch_bf16_error": report}, f, indent=1)
        f.write("\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
