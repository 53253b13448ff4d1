"""Whole text-to-image on one NVIDIA GPU: `sanagraph run Graphs/text2img.yaml --device cuda` beside diffusers'
SanaPipeline (eager bf16) on the same GPU in the same run, on the random full-size pipeline of
tools/reference/text2img_full_compare.py (Gemma-2-2B, Sana-600M, DC-AE f32c32; built once if missing).
Not run by CI (needs a GPU). `make bench-cuda` runs it; by hand, on the GPU host, from the repository root (Graphs/
and tools/ are read from there):

    python3 tools/bench/cuda_pipeline.py --sanagraph PATH/sanagraph [--pipeline DIR] [--size 1024] [--steps 20]
                                         [--reps 3] [--compile] [--json OUT.json]

diffusers: one warm-up call, then `reps` timed calls of the pipeline (CFG, 20 steps, guidance 4.5, seed 0 from the
CPU generator as both sides draw it); the text encoder and the VAE decoder are timed with forward hooks, so
"sampling + decode" is the call minus the text encoder. `--compile` adds `torch.compile(transformer)`: its first
call (the compile) and its steady time. SanaGraph: `reps` fresh processes (weights from the page cache, kernels from
the disk cache after the first): wall time to the written PNG, and per-node seconds from the --json events.
Prints the table, the pixel difference of the two PNGs, and GPU peak memory (diffusers: torch's allocator).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sanagraph", required=True)
    ap.add_argument("--pipeline", default="/tmp/text2img-full/model")
    ap.add_argument("--work", default="/tmp/sanagraph-cuda-pipeline")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
    import text2img_full_compare as full
    full.build(args.pipeline)

    import torch
    from diffusers import SanaPipeline
    from PIL import Image

    result = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "size": args.size, "steps": args.steps}
    t0 = time.perf_counter()
    pipe = SanaPipeline.from_pretrained(args.pipeline, torch_dtype=torch.bfloat16).to("cuda")
    result["diffusers_load_s"] = time.perf_counter() - t0
    pipe.set_progress_bar_config(disable=True)
    parts = {"text_encoder": 0.0, "vae": 0.0}

    def timed(module, key):
        def pre(*_):
            torch.cuda.synchronize()
            module._t0 = time.perf_counter()

        def post(*_):
            torch.cuda.synchronize()
            parts[key] += time.perf_counter() - module._t0

        module.register_forward_pre_hook(pre)
        module.register_forward_hook(post)

    timed(pipe.text_encoder, "text_encoder")
    timed(pipe.vae.decoder, "vae")

    def call():
        for k in parts:
            parts[k] = 0.0
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.no_grad():
            images = pipe(full.PROMPT, negative_prompt="", num_inference_steps=args.steps, guidance_scale=4.5,
                          height=args.size, width=args.size, use_resolution_binning=False,
                          generator=torch.Generator("cpu").manual_seed(0), output_type="np").images
        torch.cuda.synchronize()
        return time.perf_counter() - start, dict(parts), images[0]

    def diffusers_rows(label):
        first, _, _ = call()
        calls = [call() for _ in range(args.reps)]
        total = statistics.median(c[0] for c in calls)
        te = statistics.median(c[1]["text_encoder"] for c in calls)
        vae = statistics.median(c[1]["vae"] for c in calls)
        result[label] = {"first_call_s": first, "call_s": total, "text_encoder_s": te, "vae_s": vae,
                         "sampling_decode_s": total - te, "sampling_s": total - te - vae}
        return calls[-1][2]

    torch.cuda.reset_peak_memory_stats()
    image = diffusers_rows("diffusers")
    result["diffusers"]["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    torch_png = os.path.join(args.work, "diffusers.png")
    Image.fromarray((image * 255).round().astype(np.uint8)).save(torch_png)
    if args.compile:
        pipe.transformer = torch.compile(pipe.transformer)
        diffusers_rows("diffusers_compile")
    del pipe
    torch.cuda.empty_cache()

    swift_png = os.path.join(args.work, "sanagraph.png")
    runs = []
    for _ in range(args.reps + 1):  # the first may compile the kernels (NVRTC disk cache)
        if os.path.exists(swift_png):
            os.remove(swift_png)
        cmd = [args.sanagraph, "run", "Graphs/text2img.yaml", "--device", "cuda", "--json", "--no-metadata",
               "--cache", "off", "--set", f"models={args.pipeline}", "--set", f"prompt={full.PROMPT}",
               "--set", f"steps={args.steps}", "--set", f"width={args.size}", "--set", f"height={args.size}",
               "--set", f"output={swift_png}"]
        start = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if p.returncode != 0:
            raise SystemExit(f"sanagraph failed ({p.returncode}): {p.stderr[-2000:]}")
        nodes = {}
        for line in p.stdout.splitlines():
            if line.startswith("{"):
                e = json.loads(line)
                if e.get("event") == "node_finished":
                    nodes[e["node"]] = e.get("seconds", 0.0)
        runs.append({"wall_s": wall, "nodes": nodes})
    steady = runs[1:]
    med = lambda key: statistics.median(r["nodes"].get(key, 0.0) for r in steady)
    sample, decode = med("sample"), med("decode")
    text = med("positive") + med("negative")
    result["sanagraph"] = {"first_process_s": runs[0]["wall_s"], "process_s": statistics.median(r["wall_s"] for r in steady),
                           "text_encode_s": text, "sample_s": sample, "decode_s": decode,
                           "sampling_decode_s": sample + decode, "loads_s": med("text_encoder") + med("transformer") + med("vae"),
                           "nodes": steady[-1]["nodes"]}

    a = np.asarray(Image.open(swift_png).convert("RGB"), dtype=np.int16)
    b = np.asarray(Image.open(torch_png).convert("RGB"), dtype=np.int16)
    d = np.abs(a - b)
    result["png_diff"] = {"max": int(d.max()), "mean": float(d.mean()), "p99": float(np.percentile(d, 99))}
    d_ = result["diffusers"]
    s_ = result["sanagraph"]
    print(json.dumps(result), flush=True)
    print(f"\nGPU: {result['gpu']} (torch {result['torch']}); {args.size} px, {args.steps} steps, CFG 4.5, seed 0")
    print("| side | sampling + decode | sampling | decode | text encoder | whole call / process | first |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| diffusers eager bf16 | {d_['sampling_decode_s']*1e3:.0f} ms | {d_['sampling_s']*1e3:.0f} ms | "
          f"{d_['vae_s']*1e3:.0f} ms | {d_['text_encoder_s']*1e3:.0f} ms | {d_['call_s']*1e3:.0f} ms (call) | "
          f"{d_['first_call_s']:.2f} s (first call) |")
    if "diffusers_compile" in result:
        c_ = result["diffusers_compile"]
        print(f"| diffusers torch.compile | {c_['sampling_decode_s']*1e3:.0f} ms | {c_['sampling_s']*1e3:.0f} ms | "
              f"{c_['vae_s']*1e3:.0f} ms | {c_['text_encoder_s']*1e3:.0f} ms | {c_['call_s']*1e3:.0f} ms (call) | "
              f"{c_['first_call_s']:.1f} s (compile) |")
    print(f"| SanaGraph | {s_['sampling_decode_s']*1e3:.0f} ms | {s_['sample_s']*1e3:.0f} ms | {s_['decode_s']*1e3:.0f} ms | "
          f"{s_['text_encode_s']*1e3:.0f} ms | {s_['process_s']:.2f} s (process, loads {s_['loads_s']:.2f} s) | "
          f"{s_['first_process_s']:.2f} s (first process) |")
    print(f"ratio sampling+decode SanaGraph/diffusers: {s_['sampling_decode_s'] / d_['sampling_decode_s']:.2f}")
    print(f"PNG |SanaGraph - diffusers bf16|: max {result['png_diff']['max']}/255, mean {result['png_diff']['mean']:.2f}, "
          f"p99 {result['png_diff']['p99']:.0f}; diffusers peak GPU {d_['peak_gib']:.2f} GiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
