"""Fixtures for the core CPU kernels (Sources/Tensors/Ops+{Matmul,Conv,Norm,Activation,Elementwise}.swift).

Run from the repository root with the reference venv (make reference-venv):  python tools/reference/kernels_core.py
Writes Tests/Fixtures/Kernels/core_{matmul,conv2d,norm,activation,elementwise}.safetensors.

References are PyTorch's own functions (torch.matmul, F.linear, F.conv2d, F.layer_norm, F.group_norm,
F.silu/gelu/relu/leaky_relu, broadcasting operators) and the real module classes for the RMSNorm flavours
(diffusers RMSNorm, transformers Gemma2RMSNorm, diffusers' DC-AE channel RMSNorm = RMSNorm over movedim(1,-1)).
Each case's parameters travel in the safetensors metadata ("cases", a JSON list) so the Swift tests read them
instead of repeating them. Shapes are small and deliberately odd (7, 13, 33 channels, non-square images).
"""
import json
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join("Tests", "Fixtures", "Kernels")
SEED = 3_2026_11


def save(name, tensors, cases):
    os.makedirs(OUT, exist_ok=True)
    meta = {"generator": "tools/reference/kernels_core.py", "torch": torch.__version__, "cases": json.dumps(cases)}
    tensors = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in tensors.items()}
    path = os.path.join(OUT, f"core_{name}.safetensors")
    save_file(tensors, path, metadata=meta)
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(tensors)} tensors, {len(cases)} cases)")


def randn(g, *shape, scale=1.0):
    return torch.randn(*shape, generator=g) * scale


def matmul_fixtures(g):
    t, cases = {}, []

    def mm(name, a, b, ta=False, tb=False):
        a_used = a.transpose(-1, -2) if ta else a
        b_used = b.transpose(-1, -2) if tb else b
        t.update({f"{name}.a": a, f"{name}.b": b, f"{name}.out": torch.matmul(a_used, b_used)})
        cases.append({"name": name, "kind": "matmul", "transposeA": ta, "transposeB": tb})

    mm("plain", randn(g, 33, 17), randn(g, 17, 13))
    mm("transposeA", randn(g, 17, 33), randn(g, 17, 13), ta=True)
    mm("transposeB", randn(g, 33, 17), randn(g, 13, 17), tb=True)
    mm("transposeBoth", randn(g, 17, 7), randn(g, 5, 17), ta=True, tb=True)
    mm("batched", randn(g, 2, 3, 7, 9), randn(g, 2, 3, 9, 5))
    mm("batchedTransposeB", randn(g, 2, 3, 7, 9), randn(g, 2, 3, 5, 9), tb=True)
    mm("sharedB", randn(g, 2, 5, 11), randn(g, 11, 6))                 # folds into one GEMM
    mm("broadcastBatch", randn(g, 2, 1, 4, 6), randn(g, 3, 6, 5))      # batch dims [2,1] x [3] -> [2,3]
    mm("sharedA", randn(g, 7, 9), randn(g, 2, 9, 4))                   # 2-D A against batched B

    def lin(name, x, w, b):
        t.update({f"{name}.x": x, f"{name}.weight": w, f"{name}.out": F.linear(x, w, b)})
        if b is not None:
            t[f"{name}.bias"] = b
        cases.append({"name": name, "kind": "linear", "bias": b is not None})

    lin("linearBias", randn(g, 2, 5, 33), randn(g, 13, 33, scale=0.2), randn(g, 13))
    lin("linearNoBias", randn(g, 7, 20), randn(g, 9, 20, scale=0.2), None)
    lin("linear1D", randn(g, 12), randn(g, 7, 12), randn(g, 7))
    save("matmul", t, cases)


def conv_fixtures(g):
    t, cases = {}, []

    def conv(name, x, cout, k, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, bias=True):
        kh, kw = (k, k) if isinstance(k, int) else k
        w = randn(g, cout, x.shape[1] // groups, kh, kw, scale=0.3)
        b = randn(g, cout) if bias else None
        out = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
        t.update({f"{name}.x": x, f"{name}.weight": w, f"{name}.out": out})
        if b is not None:
            t[f"{name}.bias"] = b
        cases.append({"name": name, "stride": list(stride), "padding": list(padding), "dilation": list(dilation),
                      "groups": groups, "bias": bias})

    # general im2col path
    conv("k3pad1", randn(g, 2, 7, 9, 11), 13, 3, padding=(1, 1))
    conv("k3stride2", randn(g, 2, 5, 10, 7), 6, 3, stride=(2, 2), padding=(1, 1), bias=False)
    conv("rgbIn", randn(g, 1, 3, 16, 12), 8, 3, padding=(1, 1))
    conv("k7pad3", randn(g, 1, 4, 13, 9), 5, 7, padding=(3, 3))
    conv("anisotropic", randn(g, 2, 3, 11, 10), 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(2, 1))
    conv("dilated", randn(g, 1, 5, 12, 12), 3, 3, padding=(2, 2), dilation=(2, 2))
    conv("k1stride2", randn(g, 2, 6, 9, 8), 4, 1, stride=(2, 2))
    conv("k4stride4", randn(g, 1, 3, 16, 20), 7, 4, stride=(4, 4))     # patch-embed style
    conv("grouped3x3", randn(g, 1, 6, 8, 9), 4, 3, padding=(1, 1), groups=2)
    conv("channelMultiplier", randn(g, 1, 4, 6, 6), 8, 3, padding=(1, 1), groups=4)
    # pointwise GEMM path
    conv("k1", randn(g, 2, 13, 6, 5), 7, 1)
    conv("k1groups2", randn(g, 2, 12, 5, 7), 8, 1, groups=2, bias=False)
    conv("k1groups4", randn(g, 1, 16, 3, 5), 12, 1, groups=4)          # DC-AE proj_out style
    # depthwise direct path
    conv("dw3", randn(g, 2, 7, 9, 11), 7, 3, padding=(1, 1), groups=7)
    conv("dw5", randn(g, 1, 9, 12, 10), 9, 5, padding=(2, 2), groups=9, bias=False)
    conv("dw3stride2", randn(g, 1, 5, 9, 8), 5, 3, stride=(2, 2), padding=(1, 1), groups=5)
    conv("dw3nopad", randn(g, 1, 3, 6, 7), 3, 3, groups=3)
    conv("dw3dilated", randn(g, 1, 4, 10, 9), 4, 3, padding=(2, 2), dilation=(2, 2), groups=4)
    conv("dw5narrow", randn(g, 1, 3, 7, 3), 3, 5, padding=(2, 2), groups=3)  # narrower than the kernel
    conv("dw4", randn(g, 1, 3, 8, 8), 3, 4, padding=(1, 1), groups=3)
    conv("dw1", randn(g, 1, 6, 4, 5), 6, 1, groups=6)
    # Winograd F(2×2, 3×3) path (3×3, stride 1, ≥ 16 channels each side, ≥ 256 output tiles); its own generator
    # so the cases above and the other fixture files keep their values
    g = torch.Generator().manual_seed(SEED + 1)
    conv("winogradOdd", randn(g, 1, 16, 33, 31), 17, 3, padding=(1, 1))   # odd sizes: partial edge tiles
    conv("winogradPad2x1", randn(g, 1, 16, 30, 32), 16, 3, padding=(2, 1), bias=False)
    # few output channels (stride 1, ≤ 4 out): direct path
    conv("fewOut3x3", randn(g, 1, 12, 17, 23), 3, 3, padding=(1, 1))       # DC-AE conv_out style
    conv("fewOutK5", randn(g, 2, 5, 9, 11), 2, (5, 3), padding=(2, 0), bias=False)
    save("conv2d", t, cases)


def norm_fixtures(g):
    from diffusers.models.normalization import RMSNorm
    from transformers.models.gemma2.modeling_gemma2 import Gemma2RMSNorm

    t, cases = {}, []

    def case(name, kind, eps, **params):
        cases.append({"name": name, "kind": kind, "eps": eps, **params})

    # LayerNorm: affine, no affine, weight only; a large mean checks the two-pass variance.
    x = randn(g, 2, 5, 33) + 3.0
    w, b = randn(g, 33), randn(g, 33)
    t.update({"ln.x": x, "ln.weight": w, "ln.bias": b, "ln.out": F.layer_norm(x, (33,), w, b, 1e-5)})
    case("ln", "layerNorm", 1e-5, weight=True, bias=True)
    x = randn(g, 3, 1152, scale=2.0) + 10.0
    t.update({"lnPlain.x": x, "lnPlain.out": F.layer_norm(x, (1152,), None, None, 1e-6)})
    case("lnPlain", "layerNorm", 1e-6, weight=False, bias=False)
    x = randn(g, 4, 7)
    w = randn(g, 7)
    t.update({"lnWeight.x": x, "lnWeight.weight": w, "lnWeight.out": F.layer_norm(x, (7,), w, None, 1e-5)})
    case("lnWeight", "layerNorm", 1e-5, weight=True, bias=False)

    # diffusers RMSNorm with and without weight.
    norm = RMSNorm(33, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(randn(g, 33))
    x = randn(g, 2, 5, 33)
    t.update({"rms.x": x, "rms.weight": norm.weight, "rms.out": norm(x)})
    case("rms", "rmsNorm", 1e-5, weight=True)
    norm = RMSNorm(13, eps=1e-6, elementwise_affine=False)
    x = randn(g, 3, 13, scale=5.0)
    t.update({"rmsPlain.x": x, "rmsPlain.out": norm(x)})
    case("rmsPlain", "rmsNorm", 1e-6, weight=False)

    # Gemma-2 RMSNorm, (1 + w).
    norm = Gemma2RMSNorm(40, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(randn(g, 40, scale=0.5))
    x = randn(g, 2, 3, 40, scale=3.0)
    t.update({"gemma.x": x, "gemma.weight": norm.weight, "gemma.out": norm(x)})
    case("gemma", "gemmaRMSNorm", 1e-6)

    # DC-AE channel RMSNorm: diffusers RMSNorm(C, eps=1e-5, bias=True) over movedim(1, -1).
    def channel(name, x, affine):
        norm = RMSNorm(x.shape[1], eps=1e-5, elementwise_affine=affine, bias=affine)
        if affine:
            with torch.no_grad():
                norm.weight.copy_(randn(g, x.shape[1]))
                norm.bias.copy_(randn(g, x.shape[1]))
            t.update({f"{name}.weight": norm.weight, f"{name}.bias": norm.bias})
        t.update({f"{name}.x": x, f"{name}.out": norm(x.movedim(1, -1)).movedim(-1, 1)})
        case(name, "channelRMSNorm", 1e-5, weight=affine, bias=affine)

    channel("channel", randn(g, 2, 13, 5, 7), True)
    channel("channelPlain", randn(g, 1, 7, 3, 9), False)
    channel("channelWide", randn(g, 1, 6, 27, 25), True)    # > one 512-pixel tile

    # GroupNorm.
    x = randn(g, 2, 12, 5, 7) + 1.5
    w, b = randn(g, 12), randn(g, 12)
    t.update({"gn.x": x, "gn.weight": w, "gn.bias": b, "gn.out": F.group_norm(x, 4, w, b, 1e-5)})
    case("gn", "groupNorm", 1e-5, groups=4, weight=True, bias=True)
    x = randn(g, 3, 6, 9)
    t.update({"gnPlain.x": x, "gnPlain.out": F.group_norm(x, 3, None, None, 1e-6)})
    case("gnPlain", "groupNorm", 1e-6, groups=3, weight=False, bias=False)
    x = randn(g, 1, 7, 4, 4)
    w, b = randn(g, 7), randn(g, 7)
    t.update({"gnOne.x": x, "gnOne.weight": w, "gnOne.bias": b, "gnOne.out": F.group_norm(x, 1, w, b, 1e-5)})
    case("gnOne", "groupNorm", 1e-5, groups=1, weight=True, bias=True)
    save("norm", t, cases)


def activation_fixtures(g):
    # Random values plus small edges; odd total length exercises the vector tail. `extreme` holds overflow
    # territory for exp (checked element by element, since it would swamp a max-normalised error).
    x = torch.cat([randn(g, 997, scale=4.0),
                   torch.tensor([0.0, -0.0, 1e-8, -1e-8, 5.0, -5.0, 10.0, -10.0, 20.0, -20.0])]).reshape(1, -1)
    extreme = torch.tensor([88.0, -88.0, 90.0, -90.0, 100.0, -100.0, 1e4, -1e4, 1e30, -1e30, 0.5, -0.5])
    t, cases = {}, []
    fns = {"silu": F.silu,
           "gelu": F.gelu,
           "geluTanh": lambda v: F.gelu(v, approximate="tanh"),
           "relu": F.relu,
           "leakyReLU": F.leaky_relu,
           "leakyReLU02": lambda v: F.leaky_relu(v, 0.2)}
    t["x"], t["extreme"] = x, extreme
    for name, fn in fns.items():
        t[name] = fn(x)
        t[f"{name}.extreme"] = fn(extreme)
        cases.append({"name": name, **({"negativeSlope": 0.2 if name.endswith("02") else 0.01} if "leaky" in name else {})})
    save("activation", t, cases)


def elementwise_fixtures(g):
    t, cases = {}, []
    ops = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}

    def binary(name, op, a, b):
        t.update({f"{name}.a": a, f"{name}.b": b, f"{name}.out": ops[op](a, b)})
        cases.append({"name": name, "op": op})

    binary("sameShape", "add", randn(g, 3, 5, 7), randn(g, 3, 5, 7))
    binary("biasRow", "add", randn(g, 2, 3, 4, 5), randn(g, 5))
    binary("modulate", "mul", randn(g, 2, 6, 33), randn(g, 2, 1, 33))      # adaLN [B,1,C]
    binary("perChannel", "mul", randn(g, 2, 7, 4, 5), randn(g, 1, 7, 1, 1))
    binary("perImageChannel", "sub", randn(g, 2, 7, 4, 5), randn(g, 2, 7, 1, 1))
    binary("outer", "sub", randn(g, 3, 1, 5), randn(g, 4, 1))             # -> [3,4,5]
    binary("bothStretch", "div", randn(g, 2, 1, 3), randn(g, 1, 4, 1).abs() + 0.5)
    binary("middle", "mul", randn(g, 2, 3, 4, 5), randn(g, 2, 1, 4, 1))
    binary("scalarTensor", "div", randn(g, 4, 6), torch.tensor([2.5]))
    binary("tensorScalarLeft", "sub", torch.tensor([1.0]), randn(g, 4, 6))
    binary("rankUp", "add", randn(g, 5), randn(g, 3, 1))

    x = randn(g, 3, 11)
    t["scalar.x"] = x
    t["scalar.add"] = x + 1.25
    t["scalar.sub"] = x - 0.75
    t["scalar.rsub"] = 2.0 - x
    t["scalar.mul"] = x * -3.0
    t["scalar.div"] = x / 0.3
    t["scalar.rdiv"] = 1.5 / x
    save("elementwise", t, cases)


def main():
    torch.manual_seed(SEED)
    g = torch.Generator().manual_seed(SEED)
    matmul_fixtures(g)
    conv_fixtures(g)
    norm_fixtures(g)
    activation_fixtures(g)
    elementwise_fixtures(g)


if __name__ == "__main__":
    main()
