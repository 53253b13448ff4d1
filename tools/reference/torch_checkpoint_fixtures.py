#!/usr/bin/env python3
"""PyTorch checkpoints for the restricted .pth reader (Tests/Fixtures/TorchCheckpoint/).

Run from the repository root with the reference venv:  python tools/reference/torch_checkpoint_fixtures.py

Good files (torch.save, and the same tensors contiguous in a safetensors file to compare with):
  state_dict.pth / state_dict.safetensors   fp32, fp16, bf16 and int64 tensors; one storage viewed three times
                                            (whole, a column slice, the transpose: non-contiguous views); a view
                                            with a storage offset; a 0-d and an empty tensor
  nested_params.pth                         {"state_dict": nn.Module.state_dict(keep_vars=True) (Parameters), "epoch",
                                            "note", "history": [tensor]} -> names state_dict.weight, history.0, ...
  protocol4.pth                             torch.save(pickle_protocol=4): FRAME, MEMOIZE, SHORT_BINUNICODE
  zip64.pth                                 state_dict.pth re-zipped with ZIP64 records (as torch writes > 4 GB)
Hostile or broken files (each must be refused with exit 4, nothing executed; executing hostile_global.pth would
create /tmp/sanagraph_pickle_executed):
  hostile_global.pth        GLOBAL posix.system + REDUCE (a class whose __reduce__ calls os.system)
  hostile_eval.pth          GLOBAL __builtin__.eval + REDUCE (protocol 2 spelling of builtins.eval)
  hostile_stack_global.pth  protocol 4 STACK_GLOBAL subprocess.Popen
  hostile_reduce.pth        REDUCE of an allowed global that is not a tensor-record function (torch.FloatStorage)
  hostile_newobj.pth        NEWOBJ of collections.OrderedDict
  hostile_persid.pth        a persistent id that is not a storage record
  out_of_range.pth          a tensor view reaching past its storage
  truncated.pth             the first half of state_dict.pth
  legacy.pth                the pre-1.6 non-zip format (_use_new_zipfile_serialization=False)
"""
import collections
import io
import os
import pickle
import zipfile

import torch
from safetensors.torch import save_file

OUT = os.path.join("Tests", "Fixtures", "TorchCheckpoint")


def torch_zip(path: str, pkl: bytes, storages: dict) -> None:
    """A zip laid out as torch.save does (archive/data.pkl, archive/data/<key>, archive/byteorder)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        for key, data in storages.items():
            z.writestr(f"archive/data/{key}", data)
        z.writestr("archive/version", "3\n")


class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/sanagraph_pickle_executed",))


class EvalEvil:
    def __reduce__(self):
        return (eval, ("__import__('os').system('touch /tmp/sanagraph_pickle_executed')",))


def main() -> None:
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    base = torch.randn(4, 6)
    bf = torch.randn(3, 2, 4).bfloat16()
    sd = collections.OrderedDict()
    sd["f32"] = base
    sd["f32_columns"] = base[:, 1:4]          # shares base's storage, strides (6, 1), offset 1
    sd["f32_transposed"] = base.t()           # shares base's storage, strides (1, 6)
    sd["f16"] = torch.randn(3, 5).half()
    sd["bf16"] = bf
    sd["bf16_row"] = bf[1]                    # storage offset 8
    sd["bf16_strided"] = bf[:, :, ::2]        # every other element
    sd["i64_scalar"] = torch.tensor(12345678901, dtype=torch.int64)
    sd["empty"] = torch.zeros(0, 3)
    torch.save(sd, os.path.join(OUT, "state_dict.pth"))
    save_file({k: v.contiguous().clone() for k, v in sd.items()}, os.path.join(OUT, "state_dict.safetensors"))

    linear = torch.nn.Linear(3, 2)
    torch.save({"state_dict": linear.state_dict(keep_vars=True), "epoch": 7, "note": "trained",
                "history": [torch.arange(4, dtype=torch.float32)], "lr": 1e-4},
               os.path.join(OUT, "nested_params.pth"))
    save_file({"state_dict.weight": linear.weight.detach().clone(), "state_dict.bias": linear.bias.detach().clone(),
               "history.0": torch.arange(4, dtype=torch.float32)}, os.path.join(OUT, "nested_params.safetensors"))
    torch.save(sd, os.path.join(OUT, "protocol4.pth"), pickle_protocol=4)

    with zipfile.ZipFile(os.path.join(OUT, "state_dict.pth")) as src, \
            zipfile.ZipFile(os.path.join(OUT, "zip64.pth"), "w", compression=zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            with dst.open(info.filename, "w", force_zip64=True) as f:
                f.write(src.read(info.filename))

    torch_zip(os.path.join(OUT, "hostile_global.pth"), pickle.dumps({"state_dict": Evil()}, protocol=2), {})
    torch_zip(os.path.join(OUT, "hostile_eval.pth"), pickle.dumps({"x": EvalEvil()}, protocol=2), {})
    stack_global = (b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00"
                    b"\x8c\x0asubprocess\x94\x8c\x05Popen\x94\x93\x94\x8c\x04true\x94\x85\x94R\x94.")
    torch_zip(os.path.join(OUT, "hostile_stack_global.pth"), stack_global, {})
    torch_zip(os.path.join(OUT, "hostile_reduce.pth"), b"\x80\x02ctorch\nFloatStorage\n(K\x03tR.", {})
    torch_zip(os.path.join(OUT, "hostile_newobj.pth"), b"\x80\x02ccollections\nOrderedDict\n)\x81.", {})
    torch_zip(os.path.join(OUT, "hostile_persid.pth"), b"\x80\x02(X\x04\x00\x00\x00evilK\x01tQ.", {})
    # _rebuild_tensor_v2(storage('0', FloatStorage, 4 elements), offset 2, size (3,), stride (1,)): reaches element 4.
    out_of_range = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage"
                    b"ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x02K\x03\x85K\x01\x85"
                    b"\x89ccollections\nOrderedDict\n)RtR.")
    torch_zip(os.path.join(OUT, "out_of_range.pth"), out_of_range, {"0": bytes(16)})
    with open(os.path.join(OUT, "state_dict.pth"), "rb") as f:
        whole = f.read()
    with open(os.path.join(OUT, "truncated.pth"), "wb") as f:
        f.write(whole[: len(whole) // 2])
    torch.save(sd, os.path.join(OUT, "legacy.pth"), _use_new_zipfile_serialization=False)

    # The reference reader agrees: torch.load(weights_only=True) of the good files, refusal of the hostile ones.
    assert torch.equal(torch.load(os.path.join(OUT, "zip64.pth"), weights_only=True)["bf16_strided"], sd["bf16_strided"])
    for name in ["hostile_global.pth", "hostile_eval.pth", "hostile_reduce.pth"]:
        try:
            torch.load(os.path.join(OUT, name), weights_only=True)
            raise SystemExit(f"{name} loaded")
        except Exception:  # UnpicklingError, or TypeError for REDUCE of a storage type
            pass
    assert not os.path.exists("/tmp/sanagraph_pickle_executed")
    print("wrote", ", ".join(sorted(os.listdir(OUT))))


if __name__ == "__main__":
    main()
