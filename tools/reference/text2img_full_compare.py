#!/usr/bin/env python3
"""NOT run in CI (and not a fixture generator): the whole text-to-image pipeline at full SANA size, both sides.

Builds a SanaPipeline folder with the real configs and random weights - Gemma-2-2B (Gemma2Model), Sana-600M at
512 px (SanaTransformer2DModel, sample_size 16), DC-AE f32c32 (AutoencoderDC, SANA 1.0), SANA's
DPMSolverMultistepScheduler config - stored as bf16 safetensors (both sides compute in fp32). The real Gemma
tokenizer cannot be downloaded here, so models/sana-shapes/tokenizer stands in (its ids are < 1024, a valid subset
of Gemma's 256000). Then renders one prompt at 512 x 512, 20 steps, guidance 4.5 with

* diffusers' SanaPipeline (in a child process, so its peak RSS is its own), timing the text encoder, the
  denoising loop and the VAE decode separately (forward hooks);
* `sanagraph run Graphs/text2img.yaml --json` (timings per node from the node_finished events, peak RSS from
  the child's rusage, and the text encoder's release from the value_released event),

and prints both tables and the largest pixel difference of the two PNGs (random weights: the picture is noise,
but the same noise on both sides).

Usage (repo root, after `swift build -c release`; needs ~15 GB free disk and ~20 GB RAM, takes minutes):
    python tools/reference/text2img_full_compare.py --run [--work /tmp/text2img-full]
           [--binary .build/release/sanagraph] [--steps 20] [--size 512]
Try the script itself in seconds on the tiny test pipeline:
    python tools/reference/text2img_full_compare.py --run --model Tests/Fixtures/Pipeline/tiny-sana --size 64 --steps 4
Without --run it only prints this text (so `make fixtures` skips it).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

GEMMA_2_2B = dict(vocab_size=256000, hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
                  num_attention_heads=8, num_key_value_heads=4, head_dim=256, max_position_embeddings=8192,
                  rms_norm_eps=1e-6, rope_theta=10000.0, attention_bias=False, hidden_activation="gelu_pytorch_tanh",
                  query_pre_attn_scalar=256, sliding_window=4096, final_logit_softcapping=30.0,
                  attn_logit_softcapping=50.0, pad_token_id=0, eos_token_id=1, bos_token_id=2)
SANA_600M_512 = dict(in_channels=32, out_channels=32, num_attention_heads=36, attention_head_dim=32, num_layers=28,
                     num_cross_attention_heads=16, cross_attention_head_dim=72, cross_attention_dim=1152,
                     caption_channels=2304, mlp_ratio=2.5, sample_size=16, patch_size=1, interpolation_scale=None)
DC_AE_F32C32 = dict(in_channels=3, latent_channels=32, attention_head_dim=32,
                    encoder_block_types=["ResBlock"] * 3 + ["EfficientViTBlock"] * 3,
                    decoder_block_types=["ResBlock"] * 3 + ["EfficientViTBlock"] * 3,
                    encoder_block_out_channels=[128, 256, 512, 512, 1024, 1024],
                    decoder_block_out_channels=[128, 256, 512, 512, 1024, 1024],
                    encoder_layers_per_block=[2, 2, 2, 3, 3, 3], decoder_layers_per_block=[3, 3, 3, 3, 3, 3],
                    encoder_qkv_multiscales=[[], [], [], [5], [5], [5]],
                    decoder_qkv_multiscales=[[], [], [], [5], [5], [5]],
                    upsample_block_type="interpolate", downsample_block_type="Conv", decoder_norm_types="rms_norm",
                    decoder_act_fns="silu", scaling_factor=0.41407)
SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear", solver_order=2,
                 prediction_type="flow_prediction", thresholding=False, algorithm_type="dpmsolver++",
                 solver_type="midpoint", lower_order_final=True, euler_at_final=False, final_sigmas_type="zero",
                 use_flow_sigmas=True, flow_shift=3.0)
PROMPT = "a red circle above a blue square on a white background"


def peak_rss_gib(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 2**20  # KiB on Linux


def build(folder: str) -> None:
    import torch
    from diffusers import AutoencoderDC, DPMSolverMultistepScheduler, SanaPipeline, SanaTransformer2DModel
    from transformers import AutoTokenizer, Gemma2Config, Gemma2Model

    if os.path.exists(os.path.join(folder, "model_index.json")):
        print(f"using the pipeline already built in {folder}")
        return
    torch.manual_seed(0)
    start = time.perf_counter()
    # Build each part in bf16 (half the memory and disk); the weights are random either way.
    torch.set_default_dtype(torch.bfloat16)
    text_encoder = Gemma2Model(Gemma2Config(**GEMMA_2_2B)).eval()
    transformer = SanaTransformer2DModel(**SANA_600M_512).eval()
    vae = AutoencoderDC(**DC_AE_F32C32).eval()
    torch.set_default_dtype(torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(os.path.join("models", "sana-shapes", "tokenizer"))
    pipe = SanaPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                        scheduler=DPMSolverMultistepScheduler(**SCHEDULER))
    pipe.save_pretrained(folder, safe_serialization=True)
    # Strict JSON for the Swift readers (Python writes -Infinity for lambda_min_clipped).
    path = os.path.join(folder, "scheduler", "scheduler_config.json")
    with open(path) as f:
        cfg = json.load(f)
    if cfg.get("lambda_min_clipped") == float("-inf"):
        del cfg["lambda_min_clipped"]
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, allow_nan=False)
    print(f"built {folder} in {time.perf_counter() - start:.0f} s")


def torch_side(args) -> None:
    """Runs in a child process: renders with SanaPipeline and prints one JSON line of timings."""
    import numpy as np
    import torch
    from diffusers import SanaPipeline
    from PIL import Image

    torch.set_num_threads(len(os.sched_getaffinity(0)))  # the CPUs this process may use (taskset), not the machine's
    start = time.perf_counter()
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    pipe = SanaPipeline.from_pretrained(args.work_model, torch_dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    times = {"load": time.perf_counter() - start, "text_encoder": 0.0, "transformer": 0.0, "vae_decode": 0.0}

    def timed(module, key):
        def pre(*_):
            module._t0 = time.perf_counter()

        def post(*_):
            times[key] += time.perf_counter() - module._t0

        module.register_forward_pre_hook(pre)
        module.register_forward_hook(post)

    timed(pipe.text_encoder, "text_encoder")
    timed(pipe.transformer, "transformer")
    timed(pipe.vae.decoder, "vae_decode")
    start = time.perf_counter()
    with torch.no_grad():
        images = pipe(PROMPT, negative_prompt="", num_inference_steps=args.steps, guidance_scale=4.5,
                      height=args.size, width=args.size, use_resolution_binning=False,
                      generator=torch.Generator("cpu").manual_seed(0), output_type="np").images
    times["pipeline_call"] = time.perf_counter() - start
    Image.fromarray((images[0] * 255).round().astype(np.uint8)).save(os.path.join(args.work, "torch.png"))
    times["peak_rss_gib"] = peak_rss_gib()
    print("RESULT " + json.dumps(times), flush=True)


def swift_side(args) -> dict:
    out = os.path.join(args.work, "swift.png")
    if os.path.exists(out):
        os.remove(out)
    cmd = [args.binary, "run", "Graphs/text2img.yaml", "--json", "--no-metadata", "--cache", "off",
           "--set", f"models={args.work_model}", "--set", f"prompt={PROMPT}", "--set", f"steps={args.steps}",
           "--set", f"width={args.size}", "--set", f"height={args.size}", "--set", f"output={out}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"sanagraph failed ({proc.returncode}):\n{proc.stderr}")
    times, released = {"wall": wall}, None
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    for i, e in enumerate(events):
        if e.get("event") == "node_finished":
            times[e["node"]] = e.get("seconds", 0.0)
        if e.get("event") == "value_released" and e.get("node") == "text_encoder":
            released = i
    sample_start = next((i for i, e in enumerate(events)
                         if e.get("event") == "node_started" and e.get("node") == "sample"), None)
    times["text_encoder_released_before_sampling"] = released is not None and sample_start is not None \
        and released < sample_start
    times["peak_rss_gib"] = peak_rss_gib(resource.RUSAGE_CHILDREN)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="store_true", help="actually run (guard against `make fixtures`)")
    ap.add_argument("--work", default="/tmp/text2img-full")
    ap.add_argument("--binary", default=".build/release/sanagraph")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--model", help="use this existing pipeline folder instead of building the full-size one "
                    "(e.g. Tests/Fixtures/Pipeline/tiny-sana to try the script quickly)")
    ap.add_argument("--torch-side", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="the diffusers side's torch dtype")
    args = ap.parse_args()
    args.work_model = args.model or os.path.join(args.work, "model")
    if args.torch_side:
        torch_side(args)
        return
    if not args.run:
        print(__doc__)
        return
    os.makedirs(args.work, exist_ok=True)
    if not args.model:
        build(args.work_model)

    # Swift first: its RUSAGE_CHILDREN peak is then not mixed with the torch child's.
    swift = swift_side(args)
    child = subprocess.run([sys.executable, __file__, "--torch-side", "--work", args.work, "--steps",
                            str(args.steps), "--size", str(args.size)] + (["--model", args.model] if args.model else []),
                           capture_output=True, text=True)
    line = next((ln for ln in child.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if child.returncode != 0 or line is None:
        sys.exit(f"diffusers side failed:\n{child.stderr[-4000:]}")
    torch_times = json.loads(line[len("RESULT "):])

    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(os.path.join(args.work, "swift.png")), dtype=np.int16)
    b = np.asarray(Image.open(os.path.join(args.work, "torch.png")), dtype=np.int16)
    diff = int(np.abs(a - b).max()) if a.shape == b.shape else None

    print(f"\n{args.size} px, {args.steps} steps, guidance 4.5, {os.cpu_count()} threads")
    print("| stage | SanaGraph s | diffusers s |")
    print("|---|---|---|")
    rows = [("load + text encoder (Swift: text_encoder, positive, negative nodes)",
             sum(swift.get(k, 0) for k in ("text_encoder", "positive", "negative")), torch_times["text_encoder"]),
            ("transformer load (Swift dit.load) / pipeline load (diffusers, all parts)",
             swift.get("transformer", 0), torch_times["load"]),
            ("sampling (all steps)", swift.get("sample", 0), torch_times["transformer"]),
            ("VAE load + decode", swift.get("vae", 0) + swift.get("decode", 0), torch_times["vae_decode"]),
            ("whole run (Swift: process wall; diffusers: pipeline call)", swift["wall"],
             torch_times["pipeline_call"])]
    for name, s, t in rows:
        print(f"| {name} | {s:.1f} | {t:.1f} |")
    print(f"| peak RSS GiB | {swift['peak_rss_gib']:.2f} | {torch_times['peak_rss_gib']:.2f} |")
    print(f"text encoder released before sampling (Swift events): {swift['text_encoder_released_before_sampling']}")
    print(f"largest pixel difference: {diff}/255" if diff is not None else "picture sizes differ")


if __name__ == "__main__":
    main()
