"""Fixtures for the Safetensors tests: files written by Python's safetensors (torch), with the fp32 values
Python reads back stored beside them so the Swift reader can be checked against the reference.

Run from the repository root with the reference venv (make reference-venv):  python tools/reference/safetensors_fixtures.py
Writes Tests/Fixtures/Safetensors/ (a few KB). Deterministic (fixed seed).

Files:
- dtypes.safetensors: tensors `f32`, `f16`, `bf16`, `i64`, `i32`, `u8`, `bool` (odd shapes, special values)
  and, for each, `<name>.expected` = the tensor converted by torch to float32 (what a reader must return).
  Metadata {"format": "pt", "source": "safetensors_fixtures.py"}.
- rounding.safetensors: `source` (F32 values chosen to exercise rounding: ties, subnormals, overflow, inf, NaN)
  with `source.f16` = source.half() and `source.bf16` = source.bfloat16() as torch converts them; the Swift
  writer must produce the same bits.
- python_written.safetensors: a mix of dtypes written by safetensors.torch.save_file with metadata
  {"format": "pt"}; the Swift writer, given the same values and dtypes, must reproduce the file byte for byte.
- sharded/: model.safetensors.index.json + model-0000{1,2}-of-00002.safetensors written by
  huggingface_hub.save_torch_state_dict (the same code transformers uses); sharded_expected.safetensors holds
  every tensor in F32.
"""

import json
import os
import shutil

import torch
from huggingface_hub import save_torch_state_dict
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "Tests", "Fixtures", "Safetensors")


def dtypes_fixture():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(3, 5, 7, generator=g) * 3
    specials = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 6.0e-8, 1e-5, float("inf"), float("-inf"), 3.0e38])
    t = {
        "f32": torch.cat([base.flatten(), specials]).reshape(5, 23),
        "f16": torch.cat([base.flatten()[:95], specials[:7]]).to(torch.float16).reshape(2, 3, 17),
        "bf16": torch.cat([base.flatten()[:99], specials]).to(torch.bfloat16).reshape(109),
        "i64": torch.tensor([[0, 1, -1, 2**24, -(2**31), 123456789], [7, 8, 9, 10, 11, 12]], dtype=torch.int64),
        "i32": torch.arange(-5, 6, dtype=torch.int32).reshape(11, 1),
        "u8": torch.tensor([0, 1, 127, 128, 255], dtype=torch.uint8),
        "bool": torch.tensor([[True, False, True], [False, False, True]]),
        "scalar": torch.tensor(1.5),
        "empty": torch.zeros(0, 4),
    }
    out = dict(t)
    for name, v in t.items():
        out[name + ".expected"] = v.to(torch.float32).clone()
    save_file(out, os.path.join(OUT, "dtypes.safetensors"),
              metadata={"format": "pt", "source": "safetensors_fixtures.py"})


def rounding_fixture():
    g = torch.Generator().manual_seed(1)
    random = torch.randn(200, generator=g) * torch.logspace(-8, 8, 200)
    # BF16 ties: a value exactly halfway between two bf16 numbers (low 16 bits 0x8000), both parities.
    ties = torch.tensor([0x3F808000, 0x3F818000, 0xBF808000, 0x7F7F8000, 0x00018000], dtype=torch.int64)
    ties = ties.to(torch.int32).view(torch.float32)
    # F16 ties, subnormals, overflow, and specials.
    f16 = torch.tensor([1.0 + 2**-11, 1.0 + 3 * 2**-11, 2**-24, 2**-25, 3 * 2**-26, 6.1e-5, 65519.0, 65520.0,
                        70000.0, -70000.0, float("inf"), float("-inf"), float("nan"), 0.0, -0.0, 1e-30])
    source = torch.cat([random, ties, f16]).contiguous()
    save_file({"source": source, "source.f16": source.half(), "source.bf16": source.bfloat16()},
              os.path.join(OUT, "rounding.safetensors"))


def python_written_fixture():
    g = torch.Generator().manual_seed(2)
    t = {
        "weight": (torch.randn(4, 6, generator=g)).to(torch.float16),
        "bias": torch.randn(6, generator=g),
        "norm.weight": torch.randn(3, 5, generator=g).to(torch.bfloat16),
        "ids": torch.tensor([[3, 1, 4, 1, 5]], dtype=torch.int64),
        "positions": torch.arange(7, dtype=torch.int32),
        "mask": torch.tensor([True, True, False]),
        "pixels": torch.tensor([0, 17, 255], dtype=torch.uint8),
        "z \"quoted\"/name\u00e9": torch.ones(2),
    }
    save_file(t, os.path.join(OUT, "python_written.safetensors"), metadata={"format": "pt"})


def sharded_fixture():
    g = torch.Generator().manual_seed(3)
    d = os.path.join(OUT, "sharded")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    state = {
        "embed.weight": torch.randn(16, 8, generator=g),
        "layers.0.weight": torch.randn(8, 8, generator=g).to(torch.float16),
        "layers.0.bias": torch.randn(8, generator=g).to(torch.bfloat16),
        "layers.1.weight": torch.randn(8, 8, generator=g),
        "head.weight": torch.randn(4, 8, generator=g),
    }
    save_torch_state_dict(state, d, max_shard_size=700)
    index = json.load(open(os.path.join(d, "model.safetensors.index.json")))
    assert len(set(index["weight_map"].values())) >= 2, "expected a sharded checkpoint"
    save_file({k: v.to(torch.float32).contiguous() for k, v in state.items()},
              os.path.join(OUT, "sharded_expected.safetensors"))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    dtypes_fixture()
    rounding_fixture()
    python_written_fixture()
    sharded_fixture()
    for p, _, fs in os.walk(OUT):
        for f in fs:
            os.chmod(os.path.join(p, f), 0o644)
    total = sum(os.path.getsize(os.path.join(p, f)) for p, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT} ({total} bytes)")
