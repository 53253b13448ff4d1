"""Regenerates Tests/Fixtures/LinearDiT: tiny random SanaTransformer2DModel configs saved in diffusers layout,
with inputs and the diffusers (fp32) output of one forward.

Run from the repository root with the reference venv (make reference-venv):  python tools/reference/linear_dit.py

Each case writes Tests/Fixtures/LinearDiT/<case>/transformer/ (config.json + weights, as save_pretrained does)
and Tests/Fixtures/LinearDiT/<case>/io.safetensors holding hidden_states, encoder_hidden_states,
encoder_attention_mask, timestep, [guidance] and the reference `velocity`.
All weights are randomized (diffusers zero-inits nothing here, but its init of the tables is tiny) so every
parameter matters. F16/BF16 cases are saved in that dtype and the reference runs in fp32 on the up-cast weights.
"""
import os
import shutil

import torch
from diffusers import SanaTransformer2DModel
from safetensors.torch import save_file

ROOT = os.path.join("Tests", "Fixtures", "LinearDiT")

CASES = [
    # name, config overrides, save dtype, shard size, latent (h, w), text length
    dict(name="basic_f32", dtype=torch.float32, shard=None, hw=(4, 6), L=5,
         config=dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=2,
                     num_cross_attention_heads=2, cross_attention_head_dim=8, cross_attention_dim=16,
                     caption_channels=24, sample_size=4, patch_size=1)),
    dict(name="qknorm_pe_f16", dtype=torch.float16, shard=None, hw=(6, 4), L=6,
         config=dict(in_channels=8, out_channels=8, num_attention_heads=2, attention_head_dim=12, num_layers=2,
                     num_cross_attention_heads=4, cross_attention_head_dim=6, cross_attention_dim=24,
                     caption_channels=16, sample_size=4, patch_size=1, interpolation_scale=1.0,
                     qk_norm="rms_norm_across_heads", attention_bias=True)),
    dict(name="guidance_bf16_sharded", dtype=torch.bfloat16, shard="12KB", hw=(4, 8), L=4,
         config=dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=2,
                     num_cross_attention_heads=2, cross_attention_head_dim=8, cross_attention_dim=16,
                     caption_channels=20, sample_size=4, patch_size=2, interpolation_scale=2.0,
                     qk_norm="rms_norm_across_heads", guidance_embeds=True)),
    # One case per released family, with that family's config switches and nothing else (issue #19):
    # SANA 1.5 (qk-norm across heads in self- and cross-attention), Sana-Sprint (qk-norm + guidance embedding,
    # TrigFlow timesteps in [0, 1]), 2K (sin-cos PE, interpolation_scale 1.0, on the native grid, where diffusers
    # uses the PE buffer it built at init) and 4K (interpolation_scale 2.0 on a non-native grid, recomputed).
    dict(name="sana15_bf16", dtype=torch.bfloat16, shard=None, hw=(5, 3), L=7,
         config=dict(in_channels=8, out_channels=8, num_attention_heads=3, attention_head_dim=8, num_layers=3,
                     num_cross_attention_heads=2, cross_attention_head_dim=12, cross_attention_dim=24,
                     caption_channels=16, sample_size=4, patch_size=1, qk_norm="rms_norm_across_heads")),
    dict(name="sprint_bf16", dtype=torch.bfloat16, shard=None, hw=(4, 4), L=5,
         config=dict(in_channels=8, out_channels=8, num_attention_heads=2, attention_head_dim=8, num_layers=2,
                     num_cross_attention_heads=4, cross_attention_head_dim=4, cross_attention_dim=16,
                     caption_channels=16, sample_size=32, patch_size=1, qk_norm="rms_norm_across_heads",
                     guidance_embeds=True, guidance_embeds_scale=0.1)),
    dict(name="pe2k_native_f32", dtype=torch.float32, shard=None, hw=(6, 6), L=4,
         config=dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=2,
                     num_cross_attention_heads=2, cross_attention_head_dim=8, cross_attention_dim=16,
                     caption_channels=12, sample_size=6, patch_size=1, interpolation_scale=1.0)),
    dict(name="pe4k_f16", dtype=torch.float16, shard=None, hw=(7, 12), L=4,
         config=dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=2,
                     num_cross_attention_heads=2, cross_attention_head_dim=8, cross_attention_dim=16,
                     caption_channels=12, sample_size=8, patch_size=1, interpolation_scale=2.0)),
]


def randomize(model: torch.nn.Module) -> None:
    for name, p in model.named_parameters():
        if "norm" in name:  # RMSNorm gains near 1
            p.data = 1.0 + 0.2 * torch.randn_like(p)
        else:
            p.data = 0.25 * torch.randn_like(p)


def main() -> None:
    torch.manual_seed(0)
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    for case in CASES:
        out = os.path.join(ROOT, case["name"])
        folder = os.path.join(out, "transformer")
        model = SanaTransformer2DModel(**case["config"]).eval()
        randomize(model)
        model.to(case["dtype"])
        kwargs = {} if case["shard"] is None else dict(max_shard_size=case["shard"])
        model.save_pretrained(folder, safe_serialization=True, **kwargs)
        # Reference in fp32 on exactly the stored (rounded) weights.
        ref = SanaTransformer2DModel.from_pretrained(folder, torch_dtype=torch.float32).eval()

        cfg = case["config"]
        B, (h, w), L = 2, case["hw"], case["L"]
        x = torch.randn(B, cfg["in_channels"], h, w)
        y = torch.randn(B, L, cfg["caption_channels"])
        mask = torch.ones(B, L)
        mask[1, L - 2:] = 0  # second prompt padded differently
        guided = cfg.get("guidance_embeds", False)
        t = torch.tensor([0.9, 0.35]) if guided else torch.tensor([999.0, 421.0])
        g = torch.tensor([0.45, 0.3]) if guided else None
        with torch.no_grad():
            v = ref(hidden_states=x, encoder_hidden_states=y, timestep=t, guidance=g,
                    encoder_attention_mask=mask, return_dict=False)[0]
        tensors = dict(hidden_states=x, encoder_hidden_states=y, encoder_attention_mask=mask, timestep=t,
                       velocity=v.contiguous())
        if g is not None:
            tensors["guidance"] = g
        save_file({k: t_.contiguous() for k, t_ in tensors.items()}, os.path.join(out, "io.safetensors"))
        print(case["name"], "velocity", tuple(v.shape), "max|v|", float(v.abs().max()))


if __name__ == "__main__":
    main()
