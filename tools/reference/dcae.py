"""Regenerates Tests/Fixtures/DCAE: tiny random AutoencoderDC configs saved in diffusers layout, with inputs and
the diffusers (fp32) outputs of the decoder and encoder, plus a decode/encode through the shipped
models/sana-shapes/vae.

Run from the repository root with the reference venv:  python tools/reference/dcae.py

Each case writes Tests/Fixtures/DCAE/<case>/vae/ (config.json + weights, as save_pretrained does) and
Tests/Fixtures/DCAE/<case>/io.safetensors holding
  latent            raw latent z [B, C, h, w]
  decoded           decoder(z)
  scaled_latent     z · scaling_factor (what the denoiser produces)
  image             SanaPipeline's decode path: vae.decode(scaled_latent / sf) → resize_and_crop_tensor(width,
                    height) when metadata gives them → clamp(x/2 + 0.5, 0, 1)
  sample            image in [-1, 1] [B, 3, H, W]
  encoded           encoder(sample)
  sample01          (sample + 1) / 2, the dcae.encode node's input
  latent_node       encode(sample01 · 2 − 1) · sf, the dcae.encode node's output
  tiled_decoded / tiled_encoded (when metadata has tile/stride): diffusers tiled_decode / tiled_encode with
                    enable_tiling(tile, tile, stride, stride) on a larger latent/sample (tiled_latent / tiled_sample)
Metadata: width/height for the resize, tile/stride for tiling.

All parameters (and BatchNorm running statistics) are randomized so every one matters. F16/BF16 cases are saved
in that dtype and the reference runs in fp32 on the up-cast weights.
"""
import json
import math
import os
import shutil

import torch
from diffusers import AutoencoderDC
from diffusers.image_processor import PixArtImageProcessor
from safetensors.torch import save_file

ROOT = os.path.join("Tests", "Fixtures", "DCAE")
SHIPPED = os.path.join("models", "sana-shapes", "vae")

CASES = [
    # ResBlock + EfficientViT stages, strided-conv down / interpolate up, shortcuts on, multiscale (3, 5) and none,
    # batch 2, non-square; tiled decode/encode; resize-and-crop to a non-multiple size.
    dict(name="mixed_interpolate_f32", dtype=torch.float32, shard=None, latent=(2, 4, 3, 5),
         tiled_latent=(2, 4, 7, 9), tile=16, stride=12, width=26, height=14,
         config=dict(in_channels=3, latent_channels=4, attention_head_dim=8,
                     encoder_block_types=["ResBlock", "EfficientViTBlock", "EfficientViTBlock"],
                     decoder_block_types=["ResBlock", "EfficientViTBlock", "EfficientViTBlock"],
                     encoder_block_out_channels=[8, 16, 32], decoder_block_out_channels=[8, 16, 32],
                     encoder_layers_per_block=[1, 1, 2], decoder_layers_per_block=[2, 1, 2],
                     encoder_qkv_multiscales=[[], [5], [3, 5]], decoder_qkv_multiscales=[[], [], [5]],
                     downsample_block_type="Conv", upsample_block_type="interpolate",
                     scaling_factor=0.41407)),
    # pixel_shuffle up / pixel_unshuffle down, per-stage norm (batch_norm + rms_norm) and activations (relu, gelu,
    # mish, silu), no in/out shortcuts, silu conv act; a 2×2 deepest map exercises the quadratic attention; F16.
    dict(name="shuffle_batchnorm_f16", dtype=torch.float16, shard=None, latent=(1, 8, 2, 2), width=0, height=0,
         config=dict(in_channels=3, latent_channels=8, attention_head_dim=8,
                     encoder_block_types=["ResBlock", "ResBlock", "EfficientViTBlock", "EfficientViTBlock"],
                     decoder_block_types=["ResBlock", "ResBlock", "EfficientViTBlock", "EfficientViTBlock"],
                     encoder_block_out_channels=[8, 16, 16, 32], decoder_block_out_channels=[8, 16, 16, 32],
                     encoder_layers_per_block=[1, 1, 1, 1], decoder_layers_per_block=[1, 2, 1, 1],
                     encoder_qkv_multiscales=[[], [], [5], [5]], decoder_qkv_multiscales=[[], [], [5], [3]],
                     downsample_block_type="pixel_unshuffle", upsample_block_type="pixel_shuffle",
                     decoder_norm_types=["batch_norm", "rms_norm", "batch_norm", "rms_norm"],
                     decoder_act_fns=["relu", "gelu", "mish", "silu"],
                     encoder_out_shortcut=False, decoder_in_shortcut=False, decoder_conv_act_fn="silu",
                     scaling_factor=1.5)),
    # layers_per_block[0] = 0 (conv_in/conv_out become shortcut-less down/up blocks), one block type string for
    # all stages, head dim 4, BF16 weights in shards with an index.
    dict(name="stemless_bf16_sharded", dtype=torch.bfloat16, shard="20KB", latent=(2, 4, 4, 3), width=0, height=0,
         config=dict(in_channels=3, latent_channels=4, attention_head_dim=4,
                     encoder_block_types="EfficientViTBlock", decoder_block_types="EfficientViTBlock",
                     encoder_block_out_channels=[8, 8, 16], decoder_block_out_channels=[8, 8, 16],
                     encoder_layers_per_block=[0, 1, 1], decoder_layers_per_block=[0, 1, 2],
                     encoder_qkv_multiscales=[[], [5], [5]], decoder_qkv_multiscales=[[], [5], [5]],
                     downsample_block_type="Conv", upsample_block_type="interpolate")),
]


def randomize(model: torch.nn.Module) -> None:
    for name, p in model.named_parameters():
        if p.ndim > 1:  # conv / linear weights: unit-variance outputs
            fan_in = p[0].numel()
            p.data = torch.randn_like(p) / math.sqrt(fan_in)
        elif name.endswith("norm.weight") or name.endswith("norm_out.weight"):
            p.data = 1.0 + 0.2 * torch.randn_like(p)
        else:
            p.data = 0.2 * torch.randn_like(p)
    for name, b in model.named_buffers():
        if name.endswith("running_mean"):
            b.data = 0.3 * torch.randn_like(b)
        elif name.endswith("running_var"):
            b.data = 0.5 + torch.rand_like(b)


def smooth_image(shape, seed_scale=1.0) -> torch.Tensor:
    """A picture-like test input in [-1, 1]: low-frequency blobs plus a little noise."""
    b, c, h, w = shape
    coarse = torch.randn(b, c, max(1, h // 4), max(1, w // 4))
    x = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    x = x + 0.1 * torch.randn(b, c, h, w)
    return x.clamp(-1, 1) * seed_scale


def pipeline_image(model, scaled_latent, width, height):
    sf = model.config.scaling_factor
    image = model.decode(scaled_latent / sf, return_dict=False)[0]
    if width and height:
        image = PixArtImageProcessor.resize_and_crop_tensor(image, width, height)
    return (image / 2 + 0.5).clamp(0, 1)


@torch.no_grad()
def make_case(case) -> None:
    out = os.path.join(ROOT, case["name"])
    folder = os.path.join(out, "vae")
    model = AutoencoderDC(**case["config"]).eval()
    randomize(model)
    model.to(case["dtype"])
    kwargs = {} if case["shard"] is None else dict(max_shard_size=case["shard"])
    model.save_pretrained(folder, safe_serialization=True, **kwargs)
    model.to(torch.float32)  # reference in fp32 on exactly the stored (rounded) weights

    f = model.spatial_compression_ratio
    latent = torch.randn(*case["latent"])
    b, _, h, w = case["latent"]
    sample = smooth_image((b, 3, h * f, w * f))
    sf = model.config.scaling_factor
    tensors = {
        "latent": latent,
        "decoded": model.decoder(latent),
        "scaled_latent": latent * sf,
        "sample": sample,
        "encoded": model.encoder(sample),
        "sample01": (sample + 1) / 2,
    }
    tensors["image"] = pipeline_image(model, tensors["scaled_latent"], case["width"], case["height"])
    tensors["latent_node"] = model.encode(tensors["sample01"] * 2 - 1, return_dict=False)[0] * sf
    meta = {"width": str(case["width"]), "height": str(case["height"])}
    if "tile" in case:
        tiled_latent = torch.randn(*case["tiled_latent"])
        tb, _, th, tw = case["tiled_latent"]
        tiled_sample = smooth_image((tb, 3, th * f, tw * f))
        model.enable_tiling(case["tile"], case["tile"], case["stride"], case["stride"])
        tensors["tiled_latent"] = tiled_latent
        tensors["tiled_decoded"] = model.decode(tiled_latent, return_dict=False)[0]
        tensors["tiled_sample"] = tiled_sample
        tensors["tiled_encoded"] = model.encode(tiled_sample, return_dict=False)[0]
        model.use_tiling = False
        tensors["untiled_decoded"] = model.decode(tiled_latent, return_dict=False)[0]
        meta.update(tile=str(case["tile"]), stride=str(case["stride"]))
    save_file({k: v.contiguous().float() for k, v in tensors.items()}, os.path.join(out, "io.safetensors"), metadata=meta)
    print(f"{case['name']}: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items()))


@torch.no_grad()
def make_shipped() -> None:
    """Decode a 4×4 latent and encode a 128² picture with the shipped models/sana-shapes/vae (f16 → fp32)."""
    model = AutoencoderDC.from_pretrained(SHIPPED, torch_dtype=torch.float32).eval()
    f = model.spatial_compression_ratio
    latent = torch.randn(1, model.config.latent_channels, 4, 4)
    sample = smooth_image((1, 3, 4 * f, 4 * f))
    tensors = {"latent": latent, "decoded": model.decoder(latent), "sample": sample, "encoded": model.encoder(sample)}
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(ROOT, "shipped_io.safetensors"))
    print("shipped: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items()))


def main() -> None:
    torch.manual_seed(0)
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(ROOT)
    for case in CASES:
        make_case(case)
    make_shipped()
    with open(os.path.join(ROOT, "README.md"), "w") as fh:
        fh.write("Generated by `python tools/reference/dcae.py` (diffusers AutoencoderDC, seed 0). Do not edit.\n")


if __name__ == "__main__":
    main()
