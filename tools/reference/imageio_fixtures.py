"""Fixtures for the ImageIO and Upscaler tests: PNGs written by PIL (and a few hand-made ones), the arrays PIL reads
from them, damaged PNGs, and PIL `Image.resize` references for every resampling mode.

Run from the repository root with the reference venv (make reference-venv):  python tools/reference/imageio_fixtures.py
Writes Tests/Fixtures/ImageIO/* and Tests/Fixtures/Upscaler/resize.safetensors (fixed seed, a few KB each).
"""
import os
import struct
import zlib

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGEIO = os.path.join(ROOT, "Tests", "Fixtures", "ImageIO")
UPSCALER = os.path.join(ROOT, "Tests", "Fixtures", "Upscaler")
rng = np.random.default_rng(20261126)


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def raw_png(width, height, bit_depth, color_type, rows: bytes, extra=b"") -> bytes:
    """A PNG written by hand (filter 0 on every row): stands in for 'another tool' where PIL can't write the format."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(rows, 9))
            + chunk(b"IEND", b""))


def pack_rows(arr: np.ndarray, dtype) -> bytes:
    """arr [H, W*C] -> filter-0 rows in big-endian."""
    out = b""
    for row in arr:
        out += b"\x00" + row.astype(dtype).tobytes()
    return out


def image_tensor(rgb: np.ndarray) -> torch.Tensor:
    """[H, W, 3] floats -> [1, 3, H, W] float32."""
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)[None]).astype(np.float32))


def smooth(h, w, c):
    """A smooth gradient plus noise, so resampling has both edges and flat parts to get right."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 17) % 256], -1)[..., :c]
    noise = rng.integers(-40, 41, size=(h, w, c))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def imageio_fixtures():
    os.makedirs(IMAGEIO, exist_ok=True)
    expected = {}

    def save_pil(name, im, **kw):
        path = os.path.join(IMAGEIO, name + ".png")
        im.save(path, **kw)
        back = Image.open(path)
        back.load()
        expected[name] = image_tensor(np.asarray(back.convert("RGB"), dtype=np.float32) / 255.0)

    rgb = smooth(7, 9, 3)
    save_pil("rgb8", Image.fromarray(rgb, "RGB"))
    save_pil("gray8", Image.fromarray(smooth(6, 5, 1)[..., 0], "L"))
    la = np.concatenate([smooth(5, 6, 1), rng.integers(0, 256, size=(5, 6, 1), dtype=np.uint8)], -1)
    save_pil("gray_alpha8", Image.fromarray(la, "LA"))
    rgba = np.concatenate([smooth(6, 7, 3), rng.integers(0, 256, size=(6, 7, 1), dtype=np.uint8)], -1)
    rgba[0, :, 3] = 0  # fully transparent row: PIL keeps the colour, so must we
    save_pil("rgba8", Image.fromarray(rgba, "RGBA"))
    save_pil("palette8", Image.fromarray(rgb, "RGB").quantize(colors=60))  # > 16 colours: 8-bit indices
    pal = Image.fromarray(rgb, "RGB").quantize(colors=16)  # <= 16 colours: PIL writes 4-bit indices
    save_pil("palette4", pal)
    pal_t = pal.copy()
    pal_t.info["transparency"] = 3
    save_pil("palette_trns", pal_t, transparency=3)
    save_pil("bilevel1", Image.fromarray(rng.integers(0, 2, size=(5, 11), dtype=np.uint8) * 255, "L").convert("1"))

    # 16-bit gray: PIL writes mode I;16. PIL's own convert("RGB") clips it to 8 bits, so the expected values are
    # the stored samples / 65535 (what the file means), read back through PIL as an array.
    g16 = rng.integers(0, 65536, size=(4, 6), dtype=np.uint16)
    g16[0, 0], g16[0, 1] = 0, 65535
    path = os.path.join(IMAGEIO, "gray16.png")
    Image.fromarray(g16).save(path)  # mode I;16
    back = np.asarray(Image.open(path), dtype=np.float64)
    assert (back == g16).all()
    expected["gray16"] = image_tensor(np.repeat(back[..., None], 3, -1) / 65535.0)

    # 16-bit RGB and RGBA (PIL cannot write them): hand-made. RGBA alpha stays >= 32768 (see docs: 16-bit alpha).
    rgb16 = rng.integers(0, 65536, size=(5, 4, 3), dtype=np.uint16)
    with open(os.path.join(IMAGEIO, "rgb16.png"), "wb") as f:
        f.write(raw_png(4, 5, 16, 2, pack_rows(rgb16.reshape(5, 12), ">u2")))
    expected["rgb16"] = image_tensor(rgb16.astype(np.float64) / 65535.0)
    rgba16 = rng.integers(0, 65536, size=(3, 5, 4), dtype=np.uint16)
    rgba16[..., 3] = rng.integers(32768, 65536, size=(3, 5), dtype=np.uint16)
    rgba16[0, 0, 3] = 65535
    with open(os.path.join(IMAGEIO, "rgba16.png"), "wb") as f:
        f.write(raw_png(5, 3, 16, 6, pack_rows(rgba16.reshape(3, 20), ">u2")))
    expected["rgba16"] = image_tensor(rgba16[..., :3].astype(np.float64) / 65535.0)

    # 8-bit RGB with gAMA 1.0: PIL ignores the chunk and so do we (no gamma conversion).
    gam = smooth(4, 4, 3)
    gama_chunk = chunk(b"gAMA", struct.pack(">I", 100000))
    with open(os.path.join(IMAGEIO, "gamma8.png"), "wb") as f:
        f.write(raw_png(4, 4, 8, 2, pack_rows(gam.reshape(4, 12), "u1"), extra=gama_chunk))
    back = Image.open(os.path.join(IMAGEIO, "gamma8.png"))
    expected["gamma8"] = image_tensor(np.asarray(back.convert("RGB"), dtype=np.float32) / 255.0)
    assert (np.asarray(back.convert("RGB")) == gam).all()

    save_file({k: v.contiguous() for k, v in expected.items()}, os.path.join(IMAGEIO, "expected.safetensors"))

    # Damaged files.
    good = open(os.path.join(IMAGEIO, "rgb8.png"), "rb").read()
    with open(os.path.join(IMAGEIO, "bad_truncated.png"), "wb") as f:
        f.write(good[: len(good) // 2])
    idat = good.index(b"IDAT")
    flipped = bytearray(good)
    flipped[idat + 6] ^= 0xFF  # inside IDAT's data: CRC no longer matches
    with open(os.path.join(IMAGEIO, "bad_crc.png"), "wb") as f:
        f.write(bytes(flipped))
    with open(os.path.join(IMAGEIO, "bad_notpng.png"), "wb") as f:
        f.write(b"GIF89a this is not a PNG file\n")
    with open(os.path.join(IMAGEIO, "bad_zero.png"), "wb") as f:
        f.write(raw_png(0, 4, 8, 2, b""))
    # A 100000 x 100000 header over a few bytes of data: a decompression bomb in spirit.
    with open(os.path.join(IMAGEIO, "bad_huge.png"), "wb") as f:
        f.write(raw_png(100000, 100000, 8, 2, b"\x00" * 64))
    # Valid chunks, but the zlib stream inside IDAT is garbage.
    ihdr = struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)
    with open(os.path.join(IMAGEIO, "bad_zlib.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"\x78\x9c garbage!!")
                + chunk(b"IEND", b""))


def resize_fixtures():
    os.makedirs(UPSCALER, exist_ok=True)
    src = smooth(17, 23, 3)
    im = Image.fromarray(src, "RGB")
    tensors = {"src": image_tensor(src.astype(np.float32) / 255.0)}
    modes = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
             "bicubic": Image.Resampling.BICUBIC, "lanczos3": Image.Resampling.LANCZOS}
    # up, down, mixed, one axis, one axis down, and two where Pillow >= 13 runs the vertical pass first
    # (height cut by more than twice the width's cut, python-pillow/Pillow#9549): the order matters where a pass clips.
    sizes = [(50, 37), (9, 7), (40, 10), (23, 30), (16, 17), (20, 5), (21, 3)]
    for name, mode in modes.items():
        for w, h in sizes:
            tensors[f"{name}_{w}x{h}"] = image_tensor(np.asarray(im.resize((w, h), mode), dtype=np.float32) / 255.0)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(UPSCALER, "resize.safetensors"))


if __name__ == "__main__":
    imageio_fixtures()
    resize_fixtures()
    print("wrote", IMAGEIO, "and", os.path.join(UPSCALER, "resize.safetensors"))
