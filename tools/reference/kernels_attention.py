"""Fixtures for the attention / softmax / RoPE / resampling / shape kernels (Sources/Tensors).

Run from the repository root with the reference venv (make reference-venv):  python tools/reference/kernels_attention.py
Writes Tests/Fixtures/Kernels/{softmax,attention,linear_attention,rope,pixel_shuffle,interpolate,shape_ops}.safetensors.
References are the real library code where it exists (torch.nn.functional, diffusers' Sana attention
processors, transformers' Gemma-2 attention and RoPE); case parameters travel in the safetensors metadata
(key "info", a JSON object with "cases" etc.) so the Swift tests read them instead of repeating them.
"""
import json
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join("Tests", "Fixtures", "Kernels")
SEED = 20261126


def save(name, tensors, cases=None, extra=None):
    os.makedirs(OUT, exist_ok=True)
    # One metadata key: safetensors writes its metadata map in hash order, so several keys would reorder
    # between runs and make regenerated files differ byte-wise.
    info = {"generator": "tools/reference/kernels_attention.py", "torch": torch.__version__}
    if cases is not None:
        info["cases"] = cases
    info |= extra or {}
    meta = {"info": json.dumps(info, sort_keys=True)}
    tensors = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in tensors.items()}
    path = os.path.join(OUT, name + ".safetensors")
    save_file(tensors, path, metadata=meta)
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(tensors)} tensors)")


def softmax_fixtures(g):
    x = torch.randn(3, 5, 7, generator=g) * 4
    x[0, 1, 2] = float("-inf")      # masked entries inside otherwise finite rows
    x[2, :, 3] = float("-inf")
    big = torch.randn(4, 33, generator=g) * 100  # stability: exp would overflow without the max shift
    t = {"x": x, "big": big, "big_out": torch.softmax(big, dim=-1)}
    for axis in (-1, 1, 0):
        t[f"out_axis{axis}"] = torch.softmax(x, dim=axis)
    save("softmax", t)


def gemma_eager(q, k, v, mask, scaling, softcap):
    from transformers.models.gemma2.modeling_gemma2 import eager_attention_forward

    class Module(torch.nn.Module):
        num_key_value_groups = q.shape[1] // k.shape[1]

    m = Module().eval()
    out, _ = eager_attention_forward(m, q, k, v, mask, dropout=0.0, scaling=scaling, softcap=softcap)
    return out.transpose(1, 2)  # eager returns [B, L, H, D]


def attention_fixtures(g):
    t, cases = {}, []
    # 1. plain SDPA, default scale, Lq != Lk.
    q, k, v = (torch.randn(2, 3, n, 8, generator=g) for n in (5, 7, 7))
    t |= {"plain.q": q, "plain.k": k, "plain.v": v, "plain.out": F.scaled_dot_product_attention(q, k, v)}
    cases.append({"name": "plain"})
    # 2. Sana cross-attention: key padding as an additive -10000 bias [B,1,1,Lk], rows of different lengths.
    q, k, v = torch.randn(2, 4, 6, 8, generator=g), torch.randn(2, 4, 9, 8, generator=g), torch.randn(2, 4, 9, 8, generator=g)
    valid = torch.tensor([9, 4])
    keep = (torch.arange(9)[None, :] < valid[:, None]).float()
    bias = ((1 - keep) * -10000.0).view(2, 1, 1, 9)
    t |= {"padmask.q": q, "padmask.k": k, "padmask.v": v, "padmask.mask": bias,
          "padmask.out": F.scaled_dot_product_attention(q, k, v, attn_mask=bias)}
    cases.append({"name": "padmask", "mask": True})
    # 3. Gemma-2: GQA (4 query heads on 2 kv heads), logit softcap, causal + right-padding mask with
    #    finfo.min, scale query_pre_attn_scalar^-0.5; reference = transformers' eager attention.
    q, k, v = torch.randn(2, 4, 7, 16, generator=g) * 3, torch.randn(2, 2, 7, 16, generator=g) * 3, torch.randn(2, 2, 7, 16, generator=g)
    am = (torch.arange(7)[None, :] < torch.tensor([7, 5])[:, None])
    causal = torch.tril(torch.ones(7, 7, dtype=torch.bool))
    allowed = causal[None, :, :] & am[:, None, :]
    mask = torch.zeros(2, 1, 7, 7).masked_fill(~allowed[:, None], torch.finfo(torch.float32).min)
    scaling, softcap = 16 ** -0.5, 2.0
    t |= {"gemma.q": q, "gemma.k": k, "gemma.v": v, "gemma.mask": mask,
          "gemma.out": gemma_eager(q, k, v, mask, scaling, softcap)}
    cases.append({"name": "gemma", "mask": True, "scale": scaling, "softcap": softcap})
    # 4. Odd sizes, head dim 72, a dense random float mask broadcast over heads, explicit scale, Dv != D.
    q, k, v = torch.randn(1, 2, 33, 72, generator=g), torch.randn(1, 2, 37, 72, generator=g), torch.randn(1, 2, 37, 40, generator=g)
    mask = torch.randn(1, 1, 33, 37, generator=g)
    t |= {"odd.q": q, "odd.k": k, "odd.v": v, "odd.mask": mask,
          "odd.out": F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3)}
    cases.append({"name": "odd", "mask": True, "scale": 0.3})
    # 5. Gemma softcap 50 with large logits and a 2-D causal mask [Lq, Lk].
    q, k, v = torch.randn(1, 2, 5, 16, generator=g) * 30, torch.randn(1, 1, 5, 16, generator=g) * 30, torch.randn(1, 1, 5, 16, generator=g)
    mask = torch.zeros(5, 5).masked_fill(~torch.tril(torch.ones(5, 5, dtype=torch.bool)), float("-inf"))
    t |= {"cap50.q": q, "cap50.k": k, "cap50.v": v, "cap50.mask": mask,
          "cap50.out": gemma_eager(q, k, v, mask[None, None], 0.25, 50.0)}
    cases.append({"name": "cap50", "mask": True, "scale": 0.25, "softcap": 50.0})
    save("attention", t, cases)


def linear_attention_fixtures(g):
    from diffusers.models.attention_processor import (Attention, SanaLinearAttnProcessor2_0,
                                                      SanaMultiscaleLinearAttention)

    t = {}
    # Transformer self-attention through the real diffusers processor. to_out is the identity so the processor
    # output is the attention core; q, k, v are recomputed from the projection weights in [B, H, N, D].
    b, n, heads, d = 2, 17, 3, 8
    c = heads * d
    attn = Attention(query_dim=c, heads=heads, dim_head=d, bias=False, out_bias=True,
                     processor=SanaLinearAttnProcessor2_0()).eval()
    with torch.no_grad():
        for lin in (attn.to_q, attn.to_k, attn.to_v):
            lin.weight.copy_(torch.randn(c, c, generator=g) / c ** 0.5)
        attn.to_out[0].weight.copy_(torch.eye(c))
        attn.to_out[0].bias.zero_()
        x = torch.randn(b, n, c, generator=g)
        x[1, 3] = -x[1, 3].abs() * 0  # a token whose q, k are all zero: relu(q)=0 → output 0/(0+eps)
        out = attn(x)
        split = lambda y: y.view(b, n, heads, d).transpose(1, 2)
        t |= {"sana.q": split(attn.to_q(x)), "sana.k": split(attn.to_k(x)), "sana.v": split(attn.to_v(x)),
              "sana.out": split(out)}
    # DC-AE multiscale attention core: packed qkv [B, G, 3d, N]; module methods give the reference.
    ms = SanaMultiscaleLinearAttention(in_channels=16, out_channels=16, attention_head_dim=8,
                                       norm_type="rms_norm", eps=1e-15).eval()
    for name, shape in (("dcae", (2, 4, 24, 40)), ("dcae_quadratic", (1, 2, 24, 6))):
        qkv = torch.randn(*shape, generator=g)
        qq, kk, vv = qkv.chunk(3, dim=2)
        qq, kk = F.relu(qq), F.relu(kk)
        if shape[3] > 8:
            ref = ms.apply_linear_attention(qq, kk, vv)
        else:
            ref = ms.apply_quadratic_attention(qq, kk, vv)
        t |= {f"{name}.qkv": qkv, f"{name}.out": ref}
    save("linear_attention", t)


def rope_fixtures(g):
    from transformers import Gemma2Config
    from transformers.models.gemma2.modeling_gemma2 import Gemma2RotaryEmbedding, apply_rotary_pos_emb

    cfg = Gemma2Config(head_dim=16, num_attention_heads=3, num_key_value_heads=1, hidden_size=48)
    rope = Gemma2RotaryEmbedding(cfg)
    x = torch.randn(2, 3, 5, 16, generator=g)
    pos = torch.stack([torch.arange(5), torch.arange(5) + 290])
    cos, sin = rope(x, pos)
    out, _ = apply_rotary_pos_emb(x, x, cos, sin)
    t = {"x": x, "cos": cos, "sin": sin, "out": out}
    # Real Gemma-2 head size and far positions: checks the cos/sin builder at large angles.
    cfg256 = Gemma2Config()  # head_dim 256, rope_theta 10000
    far = torch.tensor([[0, 1, 7, 100, 299, 509]])
    cos256, sin256 = Gemma2RotaryEmbedding(cfg256)(torch.zeros(1, dtype=torch.float32), far)
    t |= {"cos256": cos256[0], "sin256": sin256[0]}
    save("rope", t, extra={"positions": pos.tolist(), "positions256": far[0].tolist(),
                           "theta": cfg.rope_parameters["rope_theta"]})


def pixel_shuffle_fixtures(g):
    t = {}
    for name, shape, r in (("r2", (2, 12, 3, 5), 2), ("r3", (1, 18, 2, 3), 3)):
        x = torch.randn(*shape, generator=g)
        y = F.pixel_shuffle(x, r)
        z = torch.randn(*y.shape, generator=g)
        t |= {f"{name}.x": x, f"{name}.shuffled": y, f"{name}.z": z, f"{name}.unshuffled": F.pixel_unshuffle(z, r)}
    save("pixel_shuffle", t, [{"name": "r2", "r": 2}, {"name": "r3", "r": 3}])


def interpolate_fixtures(g):
    x = torch.randn(2, 3, 5, 7, generator=g)
    cases = [
        ("nearest_up", "nearest", (10, 14), None, None),
        ("nearest_down", "nearest", (3, 4), None, None),
        ("nearest_odd", "nearest", (7, 9), None, None),
        ("nearest_x2", "nearest", None, 2.0, None),
        ("nearest_x1_5", "nearest", None, 1.5, None),
        ("nearest_exact", "nearest-exact", (8, 11), None, None),
        ("bilinear_up", "bilinear", (9, 11), None, False),
        ("bilinear_up_ac", "bilinear", (9, 11), None, True),
        ("bilinear_down", "bilinear", (3, 4), None, False),
        ("bilinear_down_ac", "bilinear", (3, 4), None, True),
        ("bilinear_same", "bilinear", (5, 7), None, False),
        ("bilinear_x1_5", "bilinear", None, 1.5, False),
        ("bicubic_up", "bicubic", (11, 13), None, False),
        ("bicubic_up_ac", "bicubic", (11, 13), None, True),
        ("bicubic_down", "bicubic", (3, 5), None, False),
        ("bicubic_down_ac", "bicubic", (3, 5), None, True),
        ("bicubic_x2", "bicubic", None, 2.0, False),
        ("bicubic_x0_6", "bicubic", None, 0.6, False),
    ]
    t, meta = {"x": x}, []
    for name, mode, size, scale, ac in cases:
        kw = {"mode": mode}
        if ac is not None:
            kw["align_corners"] = ac
        y = F.interpolate(x, size=size, **kw) if size else F.interpolate(x, scale_factor=scale, **kw)
        t[name] = y
        meta.append({"name": name, "mode": mode, "size": list(size) if size else None, "scale": scale,
                     "align_corners": bool(ac)})
    save("interpolate", t, meta)


def shape_fixtures(g):
    x = torch.randn(2, 3, 4, 5, generator=g)
    y = torch.randn(2, 3, 2, 5, generator=g)
    t = {"x": x, "y": y,
         "concat_axis2": torch.cat([x, y, x], dim=2),
         "concat_axis0": torch.cat([x, x], dim=0),
         "permute_2031": x.permute(2, 0, 3, 1),
         "permute_0231": x.permute(0, 2, 3, 1),
         "permute_0312": x.permute(0, 3, 1, 2),
         "transpose_13": x.transpose(1, 3),
         "transpose_23": x.transpose(2, 3),
         "slice_axis3": x[:, :, :, 1:4],
         "slice_axis0": x[1:2]}
    for i, c in enumerate(torch.chunk(x, 3, dim=3)):
        t[f"chunk3_axis3.{i}"] = c
    for i, c in enumerate(torch.split(x, [1, 2], dim=1)):
        t[f"split12_axis1.{i}"] = c
    save("shape_ops", t)


def main():
    g = torch.Generator().manual_seed(SEED)
    softmax_fixtures(g)
    attention_fixtures(g)
    linear_attention_fixtures(g)
    rope_fixtures(g)
    pixel_shuffle_fixtures(g)
    interpolate_fixtures(g)
    shape_fixtures(g)


if __name__ == "__main__":
    main()
