"""Fixtures for the TextEncoder model tests: a tiny random Gemma-2 text encoder and diffusers' SanaPipeline.encode_prompt.

A tiny Gemma2Model (random weights, a sliding window shorter than the prompts and a small logit softcap so both
matter) is saved with save_pretrained in diffusers layout next to the project's Gemma-style test tokenizer
(Tests/Fixtures/TextEncoder/varied/tokenizer.json, made by tools/reference/tokenizer_fixtures.py). A SanaPipeline
is built from them (transformer/vae/scheduler left out: encode_prompt does not use them) and encode_prompt is run
for several prompt batches with the default complex human instruction, a custom one and none (also through the
pipeline's negative-prompt branch). The same weights are also saved as a sharded BF16 Gemma2ForCausalLM
(`model.` key prefix) to test that loader path, with its own reference.

Run from the repository root:  /work/venv/ref/bin/python tools/reference/gemma2_encoder.py
Writes Tests/Fixtures/TextEncoder/tiny-gemma2/ (fixed seed, < 1 MB).
"""
import inspect
import json
import os
import shutil

import torch
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "Tests", "Fixtures", "TextEncoder")
OUT = os.path.join(FIX, "tiny-gemma2")
TOKENIZER = os.path.join(FIX, "varied", "tokenizer.json")
SEED = 1126

# Cases: (name, prompts, instruction: "default" | "none" | custom text, max_sequence_length).
CASES = [
    ("chi_batch", ["A Red Circle above a blue square", "  ÉCOLE Straße ΣΟΦΟΣ 東京  \t"], "default", 300),
    ("chi_short", ["a cat sleeping on a warm windowsill " * 12], "default", 24),
    ("none_empty", [""], "none", 300),
    ("none_truncated", ["the city street at dusk, " * 30, "Émoji 🙂 and   spaces"], "none", 40),
    ("custom", ["A DOG"], "Describe the scene:\nPrompt: ", 32),
]


SHAPES_PROMPT = "A red circle above a small blue square"


def default_chi() -> list[str]:
    from diffusers import SanaPipeline

    return list(inspect.signature(SanaPipeline.__call__).parameters["complex_human_instruction"].default)


def tiny_config(vocab_size: int):
    from transformers import Gemma2Config

    return Gemma2Config(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=24, sliding_window=8, attn_logit_softcapping=5.0,
        max_position_embeddings=1024, pad_token_id=0, bos_token_id=2, eos_token_id=1)


def add_lm_head(folder: str, weight: torch.Tensor) -> None:
    """Writes the (tied) lm_head.weight into the last shard as CausalLM checkpoints on the hub carry it."""
    from safetensors.torch import load_file

    index_path = os.path.join(folder, "model.safetensors.index.json")
    with open(index_path) as f:
        index = json.load(f)
    shard = sorted(set(index["weight_map"].values()))[-1]
    tensors = load_file(os.path.join(folder, shard))
    tensors["lm_head.weight"] = weight.clone().contiguous()
    save_file(tensors, os.path.join(folder, shard), metadata={"format": "pt"})
    index["weight_map"]["lm_head.weight"] = shard
    with open(index_path, "w") as f:
        json.dump(index, f, indent=2)


def main() -> None:
    from diffusers import SanaPipeline
    from transformers import Gemma2ForCausalLM, Gemma2Model, GemmaTokenizerFast

    torch.manual_seed(SEED)
    tokenizer = GemmaTokenizerFast(tokenizer_file=TOKENIZER)
    tokenizer.padding_side = "right"
    config = tiny_config(len(tokenizer))
    model = Gemma2Model(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            # Larger than the default init so that attention scores reach the softcap; norms get offsets.
            p.copy_(torch.randn_like(p) * (0.3 if "norm" in name else 0.25))

    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    model.save_pretrained(os.path.join(OUT, "text_encoder"), safe_serialization=True)
    os.makedirs(os.path.join(OUT, "tokenizer"))
    shutil.copy(TOKENIZER, os.path.join(OUT, "tokenizer", "tokenizer.json"))

    pipe = SanaPipeline(tokenizer=tokenizer, text_encoder=model, vae=None, transformer=None, scheduler=None)
    chi = default_chi()
    tensors, cases = {}, []
    with torch.no_grad():
        for name, prompts, instruction, max_len in CASES:
            chi_arg = chi if instruction == "default" else None if instruction == "none" else [instruction]
            emb, mask, _, _ = pipe.encode_prompt(prompts, do_classifier_free_guidance=False, device="cpu",
                                                 max_sequence_length=max_len, complex_human_instruction=chi_arg)
            tensors[name + ".embeddings"] = emb.float().contiguous()
            tensors[name + ".mask"] = mask.float().contiguous()
            cases.append({"name": name, "prompts": prompts, "instruction": instruction, "max_sequence_length": max_len})
        # The pipeline's own negative branch (no instruction, no re-indexing) for "" and a negative prompt.
        _, _, neg, neg_mask = pipe.encode_prompt("a prompt", do_classifier_free_guidance=True, device="cpu",
                                                 negative_prompt="  Blurry, LOW quality ", max_sequence_length=300,
                                                 complex_human_instruction=chi)
        tensors["negative.embeddings"] = neg.float().contiguous()
        tensors["negative.mask"] = neg_mask.float().contiguous()
        cases.append({"name": "negative", "prompts": ["  Blurry, LOW quality "], "instruction": "none",
                      "max_sequence_length": 300})

        # Python's lower()+strip() of tricky strings, for the preprocessing test.
        tricky = ["  ÉCOLE Straße ΣΟΦΟΣ 東京  \t", "İSTANBUL", "ΌΣΟΣ Σ.", "\u3000\u00a0x\u2028\x1c", "ǅUNGLA ǈ"]
        lowered = [t.lower().strip() for t in tricky]

        # BF16 sharded CausalLM copy with the `model.` prefix; reference = same forward with bf16-rounded weights.
        causal = Gemma2ForCausalLM(config).eval()
        causal.model.load_state_dict(model.state_dict())
        causal = causal.to(torch.bfloat16)
        causal.save_pretrained(os.path.join(OUT, "text_encoder_bf16_sharded"), safe_serialization=True,
                               max_shard_size="150KB")
        add_lm_head(os.path.join(OUT, "text_encoder_bf16_sharded"), causal.lm_head.weight.detach())
        rounded = Gemma2Model(config).eval()
        rounded.load_state_dict({k: v.to(torch.bfloat16).float() for k, v in model.state_dict().items()})
        pipe_bf16 = SanaPipeline(tokenizer=tokenizer, text_encoder=rounded, vae=None, transformer=None, scheduler=None)
        emb, mask, _, _ = pipe_bf16.encode_prompt(CASES[0][1], do_classifier_free_guidance=False, device="cpu",
                                                  max_sequence_length=300, complex_human_instruction=chi)
        tensors["bf16.embeddings"] = emb.float().contiguous()
        tensors["bf16.mask"] = mask.float().contiguous()

        # The shipped models/sana-shapes text encoder (f16 weights, run in fp32) with its own tokenizer.
        shapes = os.path.join(ROOT, "models", "sana-shapes")
        te = Gemma2Model.from_pretrained(os.path.join(shapes, "text_encoder"), torch_dtype=torch.float32).eval()
        tok = GemmaTokenizerFast.from_pretrained(os.path.join(shapes, "tokenizer"))
        pipe_shapes = SanaPipeline(tokenizer=tok, text_encoder=te, vae=None, transformer=None, scheduler=None)
        emb, mask, _, _ = pipe_shapes.encode_prompt(SHAPES_PROMPT, do_classifier_free_guidance=False, device="cpu",
                                                    max_sequence_length=64, complex_human_instruction=chi)
        tensors["sana_shapes.embeddings"] = emb.float().contiguous()
        tensors["sana_shapes.mask"] = mask.float().contiguous()

    save_file(tensors, os.path.join(OUT, "expected.safetensors"))
    n_chi = len(tokenizer.encode("\n".join(chi)))
    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"cases": cases, "bf16": {"prompts": CASES[0][1], "instruction": "default", "max_sequence_length": 300},
                   "default_instruction": "\n".join(chi), "n_chi": n_chi,
                   "sana_shapes": {"prompts": [SHAPES_PROMPT], "instruction": "default", "max_sequence_length": 64},
                   "preprocess": [{"input": a, "expected": b} for a, b in zip(tricky, lowered)]},
                  f, ensure_ascii=False, indent=1)
    size = sum(os.path.getsize(os.path.join(d, x)) for d, _, xs in os.walk(OUT) for x in xs)
    print(f"wrote {OUT} ({size / 1e6:.2f} MB), n_chi = {n_chi}")


if __name__ == "__main__":
    main()
