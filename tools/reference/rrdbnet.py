"""Reference RRDBNet (ESRGAN / Real-ESRGAN generator) in plain torch, for the Upscaler tests.

The module layout and parameter names follow Real-ESRGAN's "new-arch" RRDBNet (basicsr.archs.rrdbnet_arch):
conv_first, body.N.rdb{1,2,3}.conv{1..5}, conv_body, conv_up1, conv_up2, conv_hr, conv_last. Scale 2 and 1 models
pixel-unshuffle the input first (conv_first then takes 12 or 48 channels). Weights here are tiny and random.

Run from the repository root with the reference venv (make reference-venv):  python tools/reference/rrdbnet.py
Writes Tests/Fixtures/Upscaler/rrdbnet_x{4,2}.safetensors (weights), rrdbnet_x4_oldarch.safetensors (the same x4
weights under old ESRGAN key names) and rrdbnet_io.safetensors (inputs and reference outputs).
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "Upscaler")


class ResidualDenseBlock(nn.Module):
    def __init__(self, num_feat, num_grow_ch):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2)

    def forward(self, x):
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, num_feat, num_grow_ch):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x):
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    def __init__(self, num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32):
        super().__init__()
        self.scale = scale
        if scale == 2:
            num_in_ch *= 4
        elif scale == 1:
            num_in_ch *= 16
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2)

    def forward(self, x):
        if self.scale == 2:
            feat = F.pixel_unshuffle(x, 2)
        elif self.scale == 1:
            feat = F.pixel_unshuffle(x, 4)
        else:
            feat = x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


def old_arch_keys(state):
    """New-arch names -> the original ESRGAN (x4) names: model.0 / model.1.sub.N.RDBk.convj.0 / model.3 / ..."""
    out = {}
    for k, v in state.items():
        name, kind = k.rsplit(".", 1)
        if name == "conv_first":
            new = "model.0"
        elif name.startswith("body."):
            _, n, rdb, conv = name.split(".")
            new = f"model.1.sub.{n}.RDB{rdb[3:]}.{conv}.0"
        elif name == "conv_body":
            new = f"model.1.sub.{NUM_BLOCK}"
        else:
            new = {"conv_up1": "model.3", "conv_up2": "model.6", "conv_hr": "model.8", "conv_last": "model.10"}[name]
        out[f"{new}.{kind}"] = v
    return out


NUM_FEAT, NUM_GROW, NUM_BLOCK = 8, 4, 2


def make(scale):
    torch.manual_seed(1000 + scale)
    net = RRDBNet(scale=scale, num_feat=NUM_FEAT, num_block=NUM_BLOCK, num_grow_ch=NUM_GROW).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            # Real-ESRGAN initialises the dense blocks' convs at 0.1x (default_init_weights); keep that spirit.
            if name.startswith("body.") and name.endswith("weight"):
                p.mul_(0.1)
            if name.endswith("bias"):
                p.uniform_(-0.05, 0.05)
        # Bring the output into the image range like a trained model (about [0, 1]), so tiling errors show.
        net.conv_last.weight.mul_(12.0)
        net.conv_last.bias.fill_(0.5)
    return net


def main():
    os.makedirs(OUT, exist_ok=True)
    io = {}
    for scale in (4, 2):
        net = make(scale)
        state = {k: v.contiguous() for k, v in net.state_dict().items()}
        save_file(state, os.path.join(OUT, f"rrdbnet_x{scale}.safetensors"))
        if scale == 4:
            save_file(old_arch_keys(state), os.path.join(OUT, "rrdbnet_x4_oldarch.safetensors"))
        g = torch.Generator().manual_seed(7 + scale)
        x = torch.rand(1, 3, 10, 14, generator=g)
        with torch.no_grad():
            y = net(x)
        io[f"x{scale}_input"] = x.contiguous()
        io[f"x{scale}_output"] = y.contiguous()
    save_file(io, os.path.join(OUT, "rrdbnet_io.safetensors"))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
