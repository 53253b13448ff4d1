"""Assembles a trained run into the shipped diffusers folder (SanaPipeline layout, fp16 safetensors).

    python tools/train/export.py --src /tmp/run --out models/sana-shapes

--src holds vae/, transformer/, text_encoder/ as written by train.py; the tokenizer comes from --tokenizer
(default: the committed models/sana-shapes/tokenizer, made by tokenizer.py) and the scheduler is SANA's
DPMSolverMultistepScheduler config (configs.scheduler_config). Writes model_index.json through
SanaPipeline.save_pretrained, then checks that the pipeline's own encode_prompt gives exactly the conditioning
train.py trains on.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import configs as C  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def check_conditioning(pipe) -> None:
    """train.py's tokenize_prompts/select_positive must equal SanaPipeline.encode_prompt."""
    prompts = ["a red circle above a blue square on a white background", "A small Green STAR  "]
    L = C.TRAIN_MAX_SEQUENCE_LENGTH
    with torch.no_grad():
        pe, pm, ne, nm = pipe.encode_prompt(prompts, do_classifier_free_guidance=True, negative_prompt="",
                                            max_sequence_length=L,
                                            complex_human_instruction=C.complex_human_instruction())
        ids, mask = C.tokenize_prompts(pipe.tokenizer, prompts, L, C.complex_human_instruction())
        h = pipe.text_encoder(ids, attention_mask=mask)[0]
        h, m = C.select_positive(h, mask, L)
        nids, nmask = C.tokenize_prompts(pipe.tokenizer, [""], L, None)
        hn = pipe.text_encoder(nids, attention_mask=nmask)[0]
    assert torch.equal(m, pm) and torch.equal(nmask.expand(2, -1), nm), "mask mismatch"
    assert torch.allclose(h, pe, atol=1e-5) and torch.allclose(hn.expand(2, -1, -1), ne, atol=1e-5), "embedding mismatch"
    # A longer max_sequence_length (the pipeline default 300) must give the same kept states for the real tokens.
    with torch.no_grad():
        pe300, pm300, _, _ = pipe.encode_prompt(prompts, do_classifier_free_guidance=False, max_sequence_length=300,
                                                complex_human_instruction=C.complex_human_instruction())
    n = int(pm.sum(1).max()) - 1
    assert torch.equal(pm300[:, :1], pm[:, :1]) and torch.allclose(pe300[:, 0], pe[:, 0], atol=1e-5)
    real300 = pe300[pm300.bool()]
    real64 = pe[pm.bool()]
    assert real300.shape == real64.shape and torch.allclose(real300, real64, atol=1e-4), "length dependence"
    print(f"conditioning check OK (encode_prompt == training path; max_sequence_length 300 == {L}; "
          f"longest kept prompt {n} tokens)")


def clean_configs(out: str) -> None:
    """Drops machine-specific keys and keeps every config strict JSON.

    ``_name_or_path`` records the temporary folder the component was loaded from. The scheduler's
    ``lambda_min_clipped`` is -inf, which Python writes as the non-JSON token ``-Infinity``; it is the class default,
    so leaving it out loads the same scheduler and keeps the file readable by strict JSON parsers.
    """
    import json

    for sub, name in [("vae", "config.json"), ("transformer", "config.json"), ("text_encoder", "config.json"),
                      ("scheduler", "scheduler_config.json")]:
        path = os.path.join(out, sub, name)
        with open(path) as f:
            cfg = json.load(f)
        cfg.pop("_name_or_path", None)
        if cfg.get("lambda_min_clipped") == float("-inf"):
            del cfg["lambda_min_clipped"]
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True, allow_nan=False)
            f.write("\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", required=True)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "models", "sana-shapes"))
    ap.add_argument("--tokenizer", default=os.path.join(HERE, "..", "..", "models", "sana-shapes", "tokenizer"))
    args = ap.parse_args()
    torch.set_num_threads(1)

    from diffusers import AutoencoderDC, DPMSolverMultistepScheduler, SanaPipeline, SanaTransformer2DModel
    from transformers import AutoTokenizer, Gemma2Model

    with tempfile.TemporaryDirectory() as tmp:
        tok_dir = os.path.join(tmp, "tokenizer")
        shutil.copytree(args.tokenizer, tok_dir)
        pipe = SanaPipeline(
            tokenizer=AutoTokenizer.from_pretrained(tok_dir),
            text_encoder=Gemma2Model.from_pretrained(os.path.join(args.src, "text_encoder"), torch_dtype=torch.float16),
            vae=AutoencoderDC.from_pretrained(os.path.join(args.src, "vae"), torch_dtype=torch.float16),
            transformer=SanaTransformer2DModel.from_pretrained(os.path.join(args.src, "transformer"),
                                                               torch_dtype=torch.float16),
            scheduler=DPMSolverMultistepScheduler(**C.scheduler_config()),
        )
        staged = os.path.join(tmp, "model")
        pipe.save_pretrained(staged, safe_serialization=True)
        # Keep the committed tokenizer files byte for byte (save_pretrained rewrites its config with local keys).
        shutil.rmtree(os.path.join(staged, "tokenizer"))
        shutil.copytree(tok_dir, os.path.join(staged, "tokenizer"))
        if os.path.exists(os.path.join(args.out, "README.md")):
            shutil.copy(os.path.join(args.out, "README.md"), os.path.join(staged, "README.md"))
        names = ["vae", "transformer", "text_encoder", "scheduler", "model_index.json"]
        if os.path.realpath(args.tokenizer) != os.path.realpath(os.path.join(args.out, "tokenizer")):
            names.append("tokenizer")
        for name in names:
            target = os.path.join(args.out, name)
            if os.path.isdir(target):
                shutil.rmtree(target)
            elif os.path.exists(target):
                os.remove(target)
        os.makedirs(args.out, exist_ok=True)
        for name in names:
            shutil.move(os.path.join(staged, name), os.path.join(args.out, name))

    clean_configs(args.out)
    pipe = SanaPipeline.from_pretrained(args.out, torch_dtype=torch.float32)
    check_conditioning(pipe)
    total = 0
    for root, _, files in os.walk(args.out):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print(f"exported {args.out}: {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
