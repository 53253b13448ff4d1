"""Gemma-2-2B text encoder (SANA's, transformers `Gemma2Model`: last hidden state after the final norm) on one NVIDIA
GPU: SanaGraph (`sanagraph-cuda gemma`, bf16) beside transformers eager bf16 on the same GPU in the same run, both
measured against transformers fp32 on the CPU. Random full-size weights (gemma-2-2b-it config, seed 0), rounded to
bf16 once so every side computes with the same weights; saved as a bf16 text_encoder/ folder. Not run by CI.

    python3 tools/bench/cuda_gemma.py --binary BUNDLE/sanagraph-cuda [--reps 20] [--json OUT.json]

Cases (batch 1 × 300 tokens, as SanaPipeline pads a prompt): 20 real tokens + 280 padding, and 300 real tokens.
Prints per case: relative L2 error and max|Δ|/max|ref| over the unmasked rows of each side vs the fp32 reference,
median encode times (transformers' forward; SanaGraph's whole encode with host gather/upload/download, and its
decoder alone on the GPU) and GPU peak memory.

Both transformers sides are loaded from the saved folder with `from_pretrained` (fp32 on the CPU, bf16 on the GPU),
as SanaPipeline loads its text encoder: that keeps the RoPE inverse frequencies (a non-persistent fp32 buffer) exact.
`model.to(torch.bfloat16)` would round that buffer to bf16 too (and `.float()` does not undo it): RoPE angles then
drift by up to ~0.4 rad at position 299, which the reference and transformers bf16 would share and SanaGraph (exact
fp32 inv_freq, as transformers computes it) would not — an "error" growing with the number of real tokens. The script
checks the buffer on both sides, and also prints the errors over the first 20 rows and over the rest, so
position-dependent drift shows.

`--layers N` keeps the width but builds N layers (a dry run of the full-size shapes in less memory); `--tiny` runs a
small random config instead (seconds on a CPU; with no GPU, torch's "GPU" side runs in bf16 on the
CPU and `--binary` may point at a build run through tools/cuda-emulator): a dry run of everything but the GPU.
Uses only APIs present in both transformers 5.17 (the device machine) and 5.24 (the pinned reference venv).
"""
import argparse
import gc
import json
import os
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file, save_file
from transformers import Gemma2Config, Gemma2Model

GEMMA_2_2B = dict(vocab_size=256000, hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
                  num_attention_heads=8, num_key_value_heads=4, head_dim=256, hidden_activation="gelu_pytorch_tanh",
                  query_pre_attn_scalar=256, sliding_window=4096, attn_logit_softcapping=50.0,
                  final_logit_softcapping=30.0, rms_norm_eps=1e-6, max_position_embeddings=8192,
                  pad_token_id=0, bos_token_id=2, eos_token_id=1)
TINY = dict(GEMMA_2_2B, vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
            num_attention_heads=4, num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=16)


def errors(out, ref, mask):
    """Relative L2 error and max|Δ|/max|ref| over the rows the mask keeps."""
    keep = mask.bool()
    o, r = out.float()[keep], ref[keep]
    d = (o - r).flatten()
    return float(d.norm() / r.flatten().norm()), float(d.abs().max() / r.abs().max())


def errors_by_rows(out, ref, real):
    """Relative L2 error over rows [0, 20) and [20, real): growth with position (RoPE, long attention) shows here."""
    split = min(20, real)
    parts = [(0, split), (split, real)]
    return [float((out.float()[0, a:b] - ref[0, a:b]).norm() / ref[0, a:b].norm()) if b > a else None for a, b in parts]


def check_rope(model, label):
    """Exits unless the model's RoPE inverse frequencies are fp32 and what transformers computes at init in fp32
    (as `from_pretrained` keeps them in any dtype); a bf16-rounded buffer moves the angles by up to ~0.4 rad at
    position 299 (see the module doc)."""
    config = model.config
    theta = ((getattr(config, "rope_parameters", None) or {}).get("rope_theta") or getattr(config, "rope_theta", None)
             or 10000.0)  # Gemma-2's default; 5.x keeps it in rope_parameters
    dim = config.head_dim
    want = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float) / dim))
    for name, buf in model.named_buffers():
        # A few ulp of slack (another device's pow); bf16 rounding is ~1e-3 relative.
        if name.endswith("inv_freq") and (buf.dtype != torch.float32
                                          or not torch.allclose(buf.cpu(), want, rtol=1e-6, atol=0)):
            sys.exit(f"{label}: {name} is {buf.dtype}, max |Δ| {float((buf.cpu().float() - want).abs().max()):.2e} "
                     f"from transformers' fp32 inv_freq: load the model with from_pretrained(dtype=...), not .to(dtype)")


def timed(fn, reps, device):
    """Median milliseconds of `fn` (CUDA events on a GPU, wall clock otherwise) after 3 warm-up calls."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        if device == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize()
            times.append(a.elapsed_time(b))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
    return sorted(times)[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", help="sanagraph-cuda (omit to run the transformers side only)")
    ap.add_argument("--work", default="/tmp/sanagraph-cuda-gemma")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--tiny", action="store_true", help="a small random config (dry run, CPU is enough)")
    ap.add_argument("--layers", type=int, help="override num_hidden_layers (a full-width dry run with less memory)")
    ap.add_argument("--json")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    spec = dict(TINY if args.tiny else GEMMA_2_2B)
    if args.layers is not None:
        spec["num_hidden_layers"] = args.layers
    config = Gemma2Config(**spec)
    config._attn_implementation = "eager"  # what Gemma2 uses (sdpa cannot soft-cap); explicit for both versions
    t0 = time.perf_counter()
    model = Gemma2Model(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(0.1 * torch.randn_like(p))  # Gemma norms scale by 1 + w
        # Round once to bf16: the fp32 reference, transformers bf16 and SanaGraph all use the same weights.
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    folder = os.path.join(args.work, "text_encoder")
    model.to(torch.bfloat16).save_pretrained(folder, safe_serialization=True)
    del model  # its RoPE buffer is bf16 now: both sides are loaded from the folder instead (see the module doc)
    gc.collect()
    print(f"built and saved random {'tiny' if args.tiny else 'Gemma-2-2B'} weights (bf16) in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    ref_model = Gemma2Model.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    test_model = Gemma2Model.from_pretrained(folder, dtype=torch.bfloat16, attn_implementation="eager").to(device).eval()
    check_rope(ref_model, "fp32 reference")
    check_rope(test_model, "transformers bf16")
    results = {"gpu": torch.cuda.get_device_name() if device == "cuda" else "cpu (no CUDA)", "torch": torch.__version__,
               "transformers": __import__("transformers").__version__, "config": "tiny" if args.tiny else "gemma-2-2b",
               "rows": []}
    L = 300
    generator = torch.Generator().manual_seed(1)
    for real in (20, 300):
        ids = torch.zeros(1, L, dtype=torch.long)
        ids[0, 0] = 2  # <bos>
        ids[0, 1:real] = torch.randint(3, config.vocab_size, (real - 1,), generator=generator)
        mask = torch.zeros(1, L, dtype=torch.long)
        mask[0, :real] = 1
        io = os.path.join(args.work, f"io{real}.safetensors")
        save_file(dict(input_ids=ids, attention_mask=mask), io)
        with torch.no_grad():
            t0 = time.perf_counter()
            ref = ref_model(input_ids=ids, attention_mask=mask).last_hidden_state
            cpu_s = time.perf_counter() - t0
            idg, maskg = ids.to(device), mask.to(device)
            out = test_model(input_ids=idg, attention_mask=maskg).last_hidden_state.float().cpu()
            if device == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            ms = timed(lambda: test_model(input_ids=idg, attention_mask=maskg), args.reps, device)
            peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
        row = dict(real_tokens=real, tokens=L, cpu_fp32_reference_s=cpu_s, transformers_bf16_err=errors(out, ref, mask),
                   transformers_bf16_err_rows=errors_by_rows(out, ref, real), transformers_encode_ms=ms,
                   transformers_peak_gib=peak)
        if args.binary:
            hidden = os.path.join(args.work, f"hidden{real}.safetensors")
            if os.path.exists(hidden):
                os.remove(hidden)
            run = subprocess.run([args.binary, "gemma", "--model", folder, "--inputs", io, "--out", hidden,
                                  "--reps", str(args.reps)], capture_output=True, text=True)
            if run.returncode != 0:
                print(run.stdout, run.stderr, file=sys.stderr)
                sys.exit(f"sanagraph-cuda gemma failed ({run.returncode})")
            row["sanagraph"] = json.loads(run.stdout.strip().splitlines()[-1])
            ours = load_file(hidden)["last_hidden_state"]
            row["sanagraph_err"] = errors(ours, ref, mask)
            row["sanagraph_err_rows"] = errors_by_rows(ours, ref, real)
        results["rows"].append(row)
        print(json.dumps(row), flush=True)
    print(f"\nGPU: {results['gpu']}  (torch {results['torch']}, transformers {results['transformers']} eager bf16; "
          f"SanaGraph bf16 weights, fp32 residual/norms/RoPE/softcap/softmax); errors over the unmasked rows vs "
          f"transformers fp32 on the CPU")
    print("| real tokens / 300 | transformers bf16 err (L2 / max) | SanaGraph err (L2 / max) "
          "| L2 rows 0–19 / 20+: transformers; SanaGraph | transformers encode ms "
          "| SanaGraph encode ms (decoder on GPU) | ratio | peak GiB transformers / SanaGraph |")
    print("|---|---|---|---|---|---|---|---|")

    def split(e):
        return " / ".join("—" if v is None else f"{v:.2e}" for v in e) if e else "—"

    for r in results["rows"]:
        te = r["transformers_bf16_err"]
        sg = r.get("sanagraph")
        se = r.get("sanagraph_err", (float("nan"), float("nan")))
        rows = f"{split(r['transformers_bf16_err_rows'])}; {split(r.get('sanagraph_err_rows'))}"
        peak = f"{r['transformers_peak_gib']:.2f}" if r["transformers_peak_gib"] is not None else "—"
        if sg:
            print(f"| {r['real_tokens']} | {te[0]:.2e} / {te[1]:.2e} | {se[0]:.2e} / {se[1]:.2e} | {rows} "
                  f"| {r['transformers_encode_ms']:.2f} | {sg['encode_ms']:.2f} ({sg['encode_gpu_ms']:.2f}) "
                  f"| {sg['encode_ms'] / r['transformers_encode_ms']:.2f} | {peak} / {sg['peak_gib']:.2f} |")
        else:
            print(f"| {r['real_tokens']} | {te[0]:.2e} / {te[1]:.2e} | — | {rows} | {r['transformers_encode_ms']:.2f} "
                  f"| — | — | {peak} / — |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
