"""Fixtures for the TextEncoder tokenizer tests: HF GemmaTokenizerFast ids and decodes for a corpus of tricky strings.

Two tokenizers are checked:
  * sana-shapes: the project's caption tokenizer (models/sana-shapes/tokenizer/tokenizer.json, made by
    tools/train/tokenizer.py), copied to Tests/Fixtures/TextEncoder/sana-shapes/tokenizer.json;
  * varied: a small SentencePiece BPE trained here with Gemma's settings on a multilingual corpus (accents, CJK,
    emoji kept rare so byte fallback is exercised, Gemma-style <start_of_turn>/<end_of_turn> added tokens),
    converted by transformers to tokenizer.json (only that file is kept).

Run from the repository root with the reference venv (make reference-venv):  python tools/reference/tokenizer_fixtures.py
Writes Tests/Fixtures/TextEncoder/{sana-shapes,varied}/tokenizer.json and expected.json (fixed seed, < 200 KB).
"""
import inspect
import json
import os
import random
import shutil
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "TextEncoder")
SANA_SHAPES = os.path.join(ROOT, "models", "sana-shapes", "tokenizer", "tokenizer.json")
SEED = 20261126


def chi() -> str:
    from diffusers import SanaPipeline

    return "\n".join(inspect.signature(SanaPipeline.__call__).parameters["complex_human_instruction"].default)


def training_corpus(rng: random.Random) -> list[str]:
    words = ("the a red blue green circle square triangle above below left right of cat dog sleeping city street "
             "café naïve résumé über straße façade élève niño señor 東京 北京 日本語 中文 汉字 こんにちは 世界 "
             "привет мир γειά σου 123 4567 2026 — … “quoted” 'single' (paren) [bracket] a-b a_b x/y").split()
    lines = []
    for _ in range(6000):
        n = rng.randint(1, 14)
        line = " ".join(rng.choice(words) for _ in range(n))
        if rng.random() < 0.3:
            line = " " + line
        if rng.random() < 0.1:
            line = line.replace(" ", "  ", 1)
        lines.append(line)
    lines += ["🙂 emoji 🚀"] * 2  # too rare to become pieces: byte fallback
    return lines


def train_varied(out_dir: str) -> None:
    import sentencepiece as spm
    from transformers import GemmaTokenizer

    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "tokenizer")
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(training_corpus(rng)), model_prefix=prefix, model_type="bpe", vocab_size=700,
            character_coverage=0.995, byte_fallback=True, split_digits=True, normalization_rule_name="identity",
            add_dummy_prefix=False, remove_extra_whitespaces=False, allow_whitespace_only_pieces=True,
            split_by_whitespace=True, pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>",
            bos_piece="<bos>", unk_piece="<unk>", user_defined_symbols=["<mask>", "<start_of_turn>", "<end_of_turn>"],
            hard_vocab_limit=False, num_threads=1, minloglevel=2, seed_sentencepiece_size=100000)
        hf_dir = os.path.join(tmp, "hf")
        tok = GemmaTokenizer.from_pretrained(tmp, add_bos_token=True, add_eos_token=False)
        tok.save_pretrained(hf_dir)
        os.makedirs(out_dir, exist_ok=True)
        shutil.copy(os.path.join(hf_dir, "tokenizer.json"), os.path.join(out_dir, "tokenizer.json"))


def tricky_strings() -> list[str]:
    rng = random.Random(SEED + 1)
    long_pool = "abc déf 東京 🙂 12 \t\n  xyz <bos> "
    very_long = "".join(rng.choice(long_pool) for _ in range(5000))
    c = chi()
    return [
        "", " ", "  ", "   leading", "trailing   ", "  both  ", "a red circle above a blue square",
        "A Red Circle", "tabs\tand\ttabs", "new\nlines\n\n", "\r\n windows", "multiple     spaces   here",
        "digits 0123456789 and 3.14159 and 1,000,000", "café naïve résumé über straße", "e\u0301 decomposed vs é",
        "東京は日本の首都です", "中文汉字测试", "こんにちは世界", "привет мир", "γειά σου", "emoji 🙂🚀👍🏽 mix",
        "family 👨‍👩‍👧‍👦 zwj", "flags 🇫🇷🇯🇵", "\u0000 nul and \u007f del", "zero\u200bwidth", "nbsp\u00a0here",
        "<bos>", "<bos>hello", "hello<eos>", "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n",
        "<bos><bos> twice", "<unk> literal", "<mask>", "<pad> pad", "< bos >", "<0x41> not a byte token", "▁already",
        "punctuation!?.,;:'\"()[]{}", "x" * 300, "a" * 64 + " " + "b" * 64, very_long,
        c + "a red circle above a blue square", c + "東京 🙂 café", c,
    ]


def expected(tokenizer_dir: str, strings: list[str]) -> list[dict]:
    from transformers import GemmaTokenizerFast

    tok = GemmaTokenizerFast.from_pretrained(tokenizer_dir)
    cases = []
    for s in strings:
        ids = tok(s, add_special_tokens=True)["input_ids"]
        plain = tok(s, add_special_tokens=False)["input_ids"]
        decoded = tok.decode(plain, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        decoded_skip = tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        cases.append({"text": s, "ids": ids, "ids_no_special": plain, "decoded": decoded,
                      "decoded_skip_special": decoded_skip})
    return cases


def main() -> None:
    shapes_dir = os.path.join(OUT, "sana-shapes")
    os.makedirs(shapes_dir, exist_ok=True)
    shutil.copy(SANA_SHAPES, os.path.join(shapes_dir, "tokenizer.json"))
    varied_dir = os.path.join(OUT, "varied")
    train_varied(varied_dir)
    strings = tricky_strings()
    for d in (shapes_dir, varied_dir):
        cases = expected(d, strings)
        with open(os.path.join(d, "expected.json"), "w", encoding="utf-8") as f:
            json.dump({"generator": "tools/reference/tokenizer_fixtures.py", "cases": cases}, f, ensure_ascii=False)
        roundtrip = sum(c["decoded"] == c["text"] for c in cases)
        print(f"{os.path.relpath(d, ROOT)}: {len(cases)} strings, {sum(len(c['ids']) for c in cases)} ids, "
              f"decode round-trips {roundtrip}/{len(cases)}")


if __name__ == "__main__":
    main()
