"""NOT run in CI (and not a fixture generator): the full Gemma-2-2B text encoder (google/gemma-2-2b-it config) with
random BF16 weights, one 300-token encode with the complex human instruction in transformers/diffusers and in
SanaGraph (`sanagraph run` on a text_encoder.load -> text.encode -> tensor.save graph). Prints max|Δ|/max|ref|, the
encode-time ratio Swift/PyTorch (2 threads each) and the peak RSS of each process.

The two run one after the other, each in its own process (the box has 24 GiB): the weights (~5.2 GB BF16) are
written to --work (outside the repository); PyTorch runs the model in fp32 (BF16 weights upcast, ~10.5 GB), as
SanaGraph does. Gemma's real tokenizer is not available here, so models/sana-shapes/tokenizer is used (its ids
are all < 256000; only the token count differs from the real one).

Usage (repo root, after `swift build -c release`):
    python tools/reference/gemma2_full_compare.py --run [--work /tmp/gemma2-full] [--binary .build/release/sanagraph]
`make fixtures` skips it (it needs --run).
"""
import argparse
import inspect
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKENIZER = os.path.join(ROOT, "models", "sana-shapes", "tokenizer")
PROMPT = ("A photograph of a red fox sitting in a snowy forest clearing at sunrise, soft golden light, "
          "mist between the pine trees, highly detailed fur")
# google/gemma-2-2b-it config.json values.
GEMMA2_2B = dict(vocab_size=256000, hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
                 num_attention_heads=8, num_key_value_heads=4, head_dim=256, hidden_activation="gelu_pytorch_tanh",
                 max_position_embeddings=8192, rms_norm_eps=1e-6, query_pre_attn_scalar=256, sliding_window=4096,
                 attn_logit_softcapping=50.0, final_logit_softcapping=30.0, pad_token_id=0, bos_token_id=2,
                 eos_token_id=1, attention_bias=False)
THREADS = "2"


def write_weights(folder: str) -> None:
    import torch
    from transformers import Gemma2Config, Gemma2Model

    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    model = Gemma2Model(Gemma2Config(**GEMMA2_2B)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.normal_(0.0, 0.1)
            elif "embed" in name:
                p.normal_(0.0, 0.02)
            else:
                p.normal_(0.0, 1.0 / p.shape[-1] ** 0.5)
    model.save_pretrained(folder, safe_serialization=True, max_shard_size="2GB")


def torch_part(folder: str, out: str) -> None:
    """Child process: encode_prompt as SanaPipeline does it, fp32, 2 threads; prints seconds and peak RSS."""
    import torch
    from diffusers import SanaPipeline
    from safetensors.torch import save_file
    from transformers import Gemma2Model, GemmaTokenizerFast

    torch.set_num_threads(int(THREADS))
    model = Gemma2Model.from_pretrained(folder, torch_dtype=torch.float32).eval()
    tokenizer = GemmaTokenizerFast.from_pretrained(TOKENIZER)
    pipe = SanaPipeline(tokenizer=tokenizer, text_encoder=model, vae=None, transformer=None, scheduler=None)
    chi = list(inspect.signature(SanaPipeline.__call__).parameters["complex_human_instruction"].default)
    with torch.no_grad():
        start = time.perf_counter()
        emb, mask, _, _ = pipe.encode_prompt(PROMPT, do_classifier_free_guidance=False, device="cpu",
                                             max_sequence_length=300, complex_human_instruction=chi)
        seconds = time.perf_counter() - start
    n_chi = len(tokenizer.encode("\n".join(chi)))
    save_file({"embeddings": emb.float().contiguous(), "mask": mask.float().contiguous()}, out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_kb": peak, "tokens": n_chi + 298}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", action="store_true", help="actually run (guard against `make fixtures`)")
    ap.add_argument("--work", default="/tmp/gemma2-full")
    ap.add_argument("--binary", default=".build/release/sanagraph")
    ap.add_argument("--torch-part", nargs=2, metavar=("FOLDER", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_part:
        torch_part(*args.torch_part)
        return
    if not args.run:
        print(__doc__)
        return
    folder = os.path.join(args.work, "text_encoder")
    os.makedirs(args.work, exist_ok=True)
    if not os.path.exists(os.path.join(folder, "config.json")):
        # A child process, so that the model's memory is gone before the measured runs.
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
                        f"import gemma2_full_compare as g; g.write_weights({folder!r})"], check=True)

    env = dict(os.environ, OMP_NUM_THREADS=THREADS, OPENBLAS_NUM_THREADS=THREADS, SANAGRAPH_THREADS=THREADS,
               MKL_NUM_THREADS=THREADS)
    ref_path = os.path.join(args.work, "reference.safetensors")
    res = subprocess.run([sys.executable, __file__, "--torch-part", folder, ref_path], env=env, check=True,
                         capture_output=True, text=True)
    torch_stats = json.loads(res.stdout.strip().splitlines()[-1])

    out = os.path.join(args.work, "swift.safetensors")
    graph = os.path.join(args.work, "encode.yaml")
    with open(graph, "w") as f:
        f.write(f"""sanagraph: 1
description: Gemma-2-2B encode parity (random weights)
nodes:
  encoder: {{type: text_encoder.load, params: {{path: "{folder}", tokenizer: "{TOKENIZER}"}}}}
  positive: {{type: text.encode, inputs: {{encoder: encoder}}, params: {{text: "{PROMPT}"}}}}
  save: {{type: tensor.save, inputs: {{tensor: positive}}, params: {{path: "{out}", name: c}}}}
""")
    if os.path.exists(out):
        os.remove(out)
    # A wrapper process reports the peak RSS of sanagraph alone (RUSAGE_CHILDREN of a fresh process).
    wrapper = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "sys.stderr.write(r.stderr); print(r.stdout); "
               "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")
    res = subprocess.run([sys.executable, "-c", wrapper, args.binary, "run", graph, "--json", "--cache", "off"], env=env,
                         capture_output=True, text=True)
    if res.returncode != 0:
        print(res.stdout, res.stderr)
        sys.exit(1)
    swift_peak_kb, node_seconds = 0, {}
    for line in res.stdout.splitlines():
        if line.startswith("PEAK_KB"):
            swift_peak_kb = int(line.split()[1])
        elif line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == "node_finished":
                node_seconds[event["node"]] = event["seconds"]

    from safetensors.torch import load_file

    ref, got = load_file(ref_path), load_file(out)
    err = float((got["c.embeddings"] - ref["embeddings"]).abs().max() / ref["embeddings"].abs().max())
    mask_equal = bool((got["c.mask"] == ref["mask"]).all())
    swift_s = node_seconds.get("positive", float("nan"))
    print(f"sequence length {torch_stats['tokens']} tokens (instruction + prompt), 300 kept")
    print(f"max|Δ|/max|ref| = {err:.3e}; masks equal: {mask_equal}")
    print(f"encode: PyTorch {torch_stats['seconds']:.2f} s, SanaGraph {swift_s:.2f} s (text.encode node), "
          f"ratio Swift/PyTorch {swift_s / torch_stats['seconds']:.2f} ({THREADS} threads each); "
          f"SanaGraph load {node_seconds.get('encoder', float('nan')):.2f} s")
    print(f"peak RSS: PyTorch {torch_stats['peak_kb'] / 1024 / 1024:.2f} GiB, "
          f"SanaGraph {swift_peak_kb / 1024 / 1024:.2f} GiB")
    sys.exit(0 if err <= 1e-3 and mask_equal else 1)


if __name__ == "__main__":
    main()
