"""Trains the caption tokenizer: a SentencePiece BPE model with Gemma's settings, converted to a HF tokenizer.json.

Settings copied from Gemma's tokenizer (see docs/reference/sana-architecture.md §2.2): BPE, byte fallback,
identity normalisation, no dummy prefix, whitespace kept as "▁", split digits, and the special ids
<pad>=0, <eos>=1, <bos>=2, <unk>=3, <mask>=4. The corpus is captions from the dataset plus SANA's
complex human instruction (the diffusers default, which SanaPipeline prepends to every prompt), so that
instruction tokenizes into whole words instead of byte pieces.

    python tools/train/tokenizer.py --out models/sana-shapes/tokenizer

writes tokenizer.model (SentencePiece), tokenizer.json + tokenizer_config.json (transformers GemmaTokenizer)
and checks that the HF tokenizer gives the same ids as SentencePiece on captions and on instruction + caption.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dataset  # noqa: E402

VOCAB_SIZE = 1024
CORPUS_SEED = 12345
CORPUS_CAPTIONS = 60000


def complex_human_instruction() -> list[str]:
    """SanaPipeline's default complex human instruction (the list diffusers joins with newlines)."""
    import inspect

    from diffusers import SanaPipeline

    default = inspect.signature(SanaPipeline.__call__).parameters["complex_human_instruction"].default
    return list(default)


def corpus_lines() -> list[str]:
    lines = []
    chi = complex_human_instruction()
    for _ in range(200):  # weight the instruction's words so they become whole pieces
        lines.extend(chi)
    extra_words = " ".join(list(dataset.COLOURS) + dataset.SHAPES + list(dataset.POSITIONS) + dataset.RELATIONS)
    lines.extend([" " + extra_words] * 50)
    for i in range(CORPUS_CAPTIONS):
        # Captions follow "User Prompt: " in the pipeline, so train them with the leading space they get there.
        lines.append(" " + dataset.caption_only(CORPUS_SEED, i))
    return lines


def train(out_dir: str) -> None:
    import sentencepiece as spm

    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "sp")
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(corpus_lines()),
            model_prefix=prefix,
            model_type="bpe",
            vocab_size=VOCAB_SIZE,
            character_coverage=1.0,
            byte_fallback=True,
            split_digits=True,
            normalization_rule_name="identity",
            add_dummy_prefix=False,
            remove_extra_whitespaces=False,
            allow_whitespace_only_pieces=True,
            split_by_whitespace=True,
            pad_id=0,
            eos_id=1,
            bos_id=2,
            unk_id=3,
            pad_piece="<pad>",
            eos_piece="<eos>",
            bos_piece="<bos>",
            unk_piece="<unk>",
            user_defined_symbols=["<mask>"],
            hard_vocab_limit=False,
            num_threads=1,
            minloglevel=2,
        )
        # The trainer records its temporary output prefix in the model; fix it so the file is byte-reproducible.
        from sentencepiece import sentencepiece_model_pb2

        proto = sentencepiece_model_pb2.ModelProto()
        with open(prefix + ".model", "rb") as f:
            proto.ParseFromString(f.read())
        proto.trainer_spec.model_prefix = "tokenizer"
        with open(os.path.join(out_dir, "tokenizer.model"), "wb") as f:
            f.write(proto.SerializeToString())

    from transformers import GemmaTokenizer

    # transformers converts the SentencePiece model (GemmaConverter) into a tokenizers BPE with byte fallback.
    tok = GemmaTokenizer.from_pretrained(out_dir, add_bos_token=True, add_eos_token=False)
    tok.padding_side = "right"
    tok.save_pretrained(out_dir)
    # Drop machine-specific keys transformers writes (absolute vocab path, load flags); keep Gemma's BOS setting.
    cfg_path = os.path.join(out_dir, "tokenizer_config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    for key in ("vocab_file", "is_local", "local_files_only"):
        cfg.pop(key, None)
    cfg.update(add_bos_token=True, add_eos_token=False, padding_side="right")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    check(out_dir)


def check(out_dir: str) -> None:
    import sentencepiece as spm
    from transformers import AutoTokenizer

    sp = spm.SentencePieceProcessor(model_file=os.path.join(out_dir, "tokenizer.model"))
    tok = AutoTokenizer.from_pretrained(out_dir)
    for name, want in [("<pad>", 0), ("<eos>", 1), ("<bos>", 2), ("<unk>", 3), ("<mask>", 4)]:
        got = tok.convert_tokens_to_ids(name)
        assert got == want and sp.piece_to_id(name) == want, f"{name}: hf {got}, sp {sp.piece_to_id(name)}, want {want}"
    assert tok.pad_token_id == 0 and tok.bos_token_id == 2 and tok.eos_token_id == 1 and tok.unk_token_id == 3
    chi = "\n".join(complex_human_instruction())
    texts = [dataset.caption_only(999, i) for i in range(2000)]
    texts += [chi + t for t in texts[:200]] + [chi, "", "a red circle", "Ünïcödé ☃ 123 tabs\tand  spaces"]
    for t in texts:
        hf = tok(t, add_special_tokens=True)["input_ids"]
        ref = [2] + sp.encode(t)
        assert hf == ref, f"tokenizer mismatch on {t!r}:\n hf {hf}\n sp {ref}"
    n_chi = len(tok.encode(chi))
    print(f"tokenizer OK: vocab {len(tok)}, instruction = {n_chi} tokens incl. <bos>; "
          f"'a red circle above a blue square' -> {tok.tokenize('a red circle above a blue square')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models/sana-shapes/tokenizer")
    ap.add_argument("--check-only", action="store_true")
    args = ap.parse_args()
    if args.check_only:
        check(args.out)
    else:
        train(args.out)


if __name__ == "__main__":
    main()
