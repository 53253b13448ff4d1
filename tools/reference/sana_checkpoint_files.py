#!/usr/bin/env python3
"""Single-file SANA transformer checkpoints as users have them (Tests/Fixtures/LinearDiT/checkpoints/).

Run from the repository root with the reference venv, after tools/reference/linear_dit.py:
    python tools/reference/sana_checkpoint_files.py

For tiny random transformers of tools/reference/linear_dit.py, writes their weights in the original NVlabs layout
(the inverse of diffusers' scripts/convert_sana_to_diffusers.py: fused attn.qkv and cross_attn.kv_linear, t_embedder /
cfg_embedder / t_block / final_layer names, plus the keys the conversion drops: y_embedder.y_embedding, pos_embed,
logvar_linear):
  <case>.pth                     torch.save({"state_dict": ..., "epoch": ...}) as NVlabs ships its .pth files
  sprint_bf16_comfy.safetensors  the same keys under "model.diffusion_model." in one safetensors file (ComfyUI)
  sana15_bf16_diffusers.safetensors  diffusers keys in one file, without config.json
  tiny_sprint.pth                the transformer of Tests/Fixtures/Pipeline/tiny-sprint
  <case>.config.json             the config keys a tiny model's shapes cannot tell (head counts: SANA's linear
                                 heads are 32 wide, and the cross-attention heads are known only
                                 for hidden sizes 1152 and 2240; sample_size and interpolation_scale)
The mapping is checked here: applying convert_sana_to_diffusers.py's renames and chunks to the written .pth
gives back every diffusers tensor bit for bit. The Swift tests load these files and compare one forward with
Tests/Fixtures/LinearDiT/<case>/io.safetensors (diffusers' output).
"""
import json
import os

import torch
from safetensors.torch import load_file, save_file

ROOT = os.path.join("Tests", "Fixtures", "LinearDiT")
OUT = os.path.join(ROOT, "checkpoints")
CASES = ["sprint_bf16", "sana15_bf16", "pe4k_f16", "qknorm_pe_f16", "tiny_sprint"]
# The transformer of the tiny Sana-Sprint pipeline (tools/reference/sana_family_pipelines.py): its .pth converted
# with `sanagraph convert --base` must render that pipeline's pictures.
FOLDERS = {"tiny_sprint": os.path.join("Tests", "Fixtures", "Pipeline", "tiny-sprint", "transformer")}


def to_original(sd: dict, config: dict) -> dict:
    out = {}
    sprint = config.get("guidance_embeds", False)
    t_prefix = "time_embed.timestep_embedder" if sprint else "time_embed.emb.timestep_embedder"
    renames = {
        "patch_embed.proj": "x_embedder.proj", "caption_projection.linear_1": "y_embedder.y_proj.fc1",
        "caption_projection.linear_2": "y_embedder.y_proj.fc2", f"{t_prefix}.linear_1": "t_embedder.mlp.0",
        f"{t_prefix}.linear_2": "t_embedder.mlp.2", "time_embed.guidance_embedder.linear_1": "cfg_embedder.mlp.0",
        "time_embed.guidance_embedder.linear_2": "cfg_embedder.mlp.2", "time_embed.linear": "t_block.1",
        "caption_norm": "attention_y_norm", "proj_out": "final_layer.linear",
    }
    block = {"attn1.norm_q": "attn.q_norm", "attn1.norm_k": "attn.k_norm", "attn1.to_out.0": "attn.proj",
             "ff.conv_inverted": "mlp.inverted_conv.conv", "ff.conv_depth": "mlp.depth_conv.conv",
             "ff.conv_point": "mlp.point_conv.conv", "attn2.to_q": "cross_attn.q_linear",
             "attn2.norm_q": "cross_attn.q_norm", "attn2.norm_k": "cross_attn.k_norm",
             "attn2.to_out.0": "cross_attn.proj"}
    for key, value in sd.items():
        if key == "scale_shift_table":
            out["final_layer.scale_shift_table"] = value
            continue
        if key.startswith("transformer_blocks."):
            _, i, rest = key.split(".", 2)
            if rest == "scale_shift_table":
                out[f"blocks.{i}.scale_shift_table"] = value
                continue
            name, kind = rest.rsplit(".", 1)
            if name in block:
                out[f"blocks.{i}.{block[name]}.{kind}"] = value
            elif name in ("attn1.to_q", "attn2.to_k"):
                parts = [sd[key.replace(name, n)] for n in
                         (["attn1.to_q", "attn1.to_k", "attn1.to_v"] if name == "attn1.to_q" else ["attn2.to_k", "attn2.to_v"])]
                fused = "attn.qkv" if name == "attn1.to_q" else "cross_attn.kv_linear"
                out[f"blocks.{i}.{fused}.{kind}"] = torch.cat(parts, dim=0).contiguous()
            elif name in ("attn1.to_k", "attn1.to_v", "attn2.to_v"):
                continue
            else:
                raise KeyError(key)
            continue
        name, kind = key.rsplit(".", 1)
        out[f"{renames[name]}.{kind}"] = value
    d = config["num_attention_heads"] * config["attention_head_dim"]
    out["y_embedder.y_embedding"] = torch.randn(7, config["caption_channels"]).to(sd["caption_norm.weight"].dtype)
    n = config["sample_size"] // config["patch_size"]
    out["pos_embed"] = torch.zeros(1, n * n, d)
    out["logvar_linear.weight"] = torch.zeros(1, d)
    out["logvar_linear.bias"] = torch.zeros(1)
    return out


def to_diffusers(orig: dict, sprint: bool) -> dict:
    """convert_sana_to_diffusers.py's mapping (renames and torch.chunk), to check to_original against."""
    sd = dict(orig)
    out = {}
    for k in ["y_embedder.y_embedding", "pos_embed", "logvar_linear.weight", "logvar_linear.bias"]:
        sd.pop(k, None)
    t = "time_embed.timestep_embedder" if sprint else "time_embed.emb.timestep_embedder"
    simple = {"x_embedder.proj": "patch_embed.proj", "y_embedder.y_proj.fc1": "caption_projection.linear_1",
              "y_embedder.y_proj.fc2": "caption_projection.linear_2", "t_embedder.mlp.0": f"{t}.linear_1",
              "t_embedder.mlp.2": f"{t}.linear_2", "cfg_embedder.mlp.0": "time_embed.guidance_embedder.linear_1",
              "cfg_embedder.mlp.2": "time_embed.guidance_embedder.linear_2", "t_block.1": "time_embed.linear",
              "attention_y_norm": "caption_norm", "final_layer.linear": "proj_out"}
    for key in list(sd):
        if key == "final_layer.scale_shift_table":
            out["scale_shift_table"] = sd.pop(key)
        elif key.startswith("blocks."):
            _, i, rest = key.split(".", 2)
            b = f"transformer_blocks.{i}."
            v = sd.pop(key)
            if rest.startswith("attn.qkv."):
                for n, c in zip(["to_q", "to_k", "to_v"], torch.chunk(v, 3, dim=0)):
                    out[b + f"attn1.{n}." + rest.split(".")[-1]] = c
            elif rest.startswith("cross_attn.kv_linear."):
                for n, c in zip(["to_k", "to_v"], torch.chunk(v, 2, dim=0)):
                    out[b + f"attn2.{n}." + rest.split(".")[-1]] = c
            else:
                m = {"scale_shift_table": "scale_shift_table", "attn.q_norm.weight": "attn1.norm_q.weight",
                     "attn.k_norm.weight": "attn1.norm_k.weight", "attn.proj.weight": "attn1.to_out.0.weight",
                     "attn.proj.bias": "attn1.to_out.0.bias"}
                if rest in m:
                    out[b + m[rest]] = v
                else:
                    name, kind = rest.rsplit(".", 1)
                    mm = {"mlp.inverted_conv.conv": "ff.conv_inverted", "mlp.depth_conv.conv": "ff.conv_depth",
                          "mlp.point_conv.conv": "ff.conv_point", "cross_attn.q_linear": "attn2.to_q",
                          "cross_attn.q_norm": "attn2.norm_q", "cross_attn.k_norm": "attn2.norm_k",
                          "cross_attn.proj": "attn2.to_out.0"}
                    out[b + mm[name] + "." + kind] = v
        else:
            name, kind = key.rsplit(".", 1)
            out[simple[name] + "." + kind] = sd.pop(key)
    return out


def main() -> None:
    torch.manual_seed(19)
    os.makedirs(OUT, exist_ok=True)
    for case in CASES:
        folder = FOLDERS.get(case, os.path.join(ROOT, case, "transformer"))
        with open(os.path.join(folder, "config.json")) as f:
            config = json.load(f)
        sd = load_file(os.path.join(folder, "diffusion_pytorch_model.safetensors"))
        orig = to_original(sd, config)
        back = to_diffusers(orig, config.get("guidance_embeds", False))
        assert back.keys() == sd.keys() and all(torch.equal(back[k], sd[k]) for k in sd), case
        torch.save({"state_dict": orig, "epoch": 3}, os.path.join(OUT, f"{case}.pth"))
        reloaded = torch.load(os.path.join(OUT, f"{case}.pth"), weights_only=True)["state_dict"]
        assert all(torch.equal(reloaded[k], orig[k]) for k in orig)
        keys = ["num_attention_heads", "attention_head_dim", "num_cross_attention_heads", "cross_attention_head_dim",
                "sample_size", "interpolation_scale"]
        with open(os.path.join(OUT, f"{case}.config.json"), "w") as f:
            json.dump({k: config[k] for k in keys}, f, indent=1, sort_keys=True)
            f.write("\n")
        if case == "sprint_bf16":
            save_file({"model.diffusion_model." + k: v for k, v in orig.items()},
                      os.path.join(OUT, "sprint_bf16_comfy.safetensors"))
        if case == "sana15_bf16":
            save_file(sd, os.path.join(OUT, "sana15_bf16_diffusers.safetensors"))
        print(case, len(orig), "original keys")


if __name__ == "__main__":
    main()
