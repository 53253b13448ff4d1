"""Model benchmark: SanaGraph vs PyTorch/diffusers CPU on the same inputs, interleaved, in one run.

    python tools/reference/bench_models.py --run [--quick] [--reps N] [--rows NAME,NAME] [--threads T]
        [--work DIR] [--bench-bin PATH] [--sanagraph PATH]

`tools/bench/models.sh` (part of `make bench`) builds the binaries and calls this. Not a fixture generator: run
with no arguments (as `make fixtures` runs every tools/reference/*.py) it prints this note and exits.

Rows (each has a name; `--rows` picks some):
  dit-load-f16    load the Sana-600M transformer/ folder, fp16 variant, from page cache (both sides to fp32)
  dit-load-f32    same, fp32 file
  dit-512         DiT forward, Sana-600M config, batch 2, latent 16x16 (512 px), 300 text tokens
  dit-1024        same at latent 32x32 (1024 px); skipped by --quick
  dcae-decode-512 DC-AE dc-ae-f32c32-sana-1.0 decode of a random 1x32x16x16 latent (decode only)
  dcae-decode-1024 same, 1x32x32x32 latent; skipped by --quick
  gemma-encode    Gemma-2-2B encode of one prompt with diffusers' complex human instruction, 300 tokens kept
                  (encode only; the load times are in the note); skipped by --quick
  dit-512-bf16, dcae-decode-512-bf16, gemma-encode-bf16, text2img-512-bf16
                  the same with precision bf16 (PyTorch side: the model in torch.bfloat16 on CPU); the table adds
                  Swift-bf16 / PyTorch-fp32 where the fp32 row ran in the same command
  text2img-512    whole text-to-image process, 512 px, 20 steps, guidance 4.5, loads included:
                  `sanagraph run Graphs/text2img.yaml` vs SanaPipeline.from_pretrained + call; skipped by --quick
                  These four use the random full-size pipeline of text2img_full_compare.py (--pipeline, default
                  /tmp/text2img-full/model, built there once if absent: ~10 GB disk, minutes) and run only when
                  the CLI registers their node types (`sanagraph nodes`). Each side runs in a fresh child process
                  (peak RSS of that process alone, via wait4), Swift first, the files read through page cache first.
  sprint-1024     whole text-to-image process with a full-size Sana-Sprint 1.6B config (random weights, bf16 files),
                  1024 px, 2 steps, guidance 4.5, loads included: `sanagraph run Graphs/sprint.yaml` vs
                  SanaSprintPipeline.from_pretrained + call. Its folder (--work/sprint-1.6b: the transformer and an
                  SCMScheduler config, text_encoder/tokenizer/vae linked from --pipeline) is built once (~3.2 GB);
                  skipped by --quick

Swift runs in one long-lived `sanagraph-bench serve` process (model rows) or as `sanagraph run --json`
(graph rows, timed from the node events); PyTorch in this process with torch.set_num_threads(T). Each rep
runs the Swift call and then the PyTorch call, so both see the same machine load; medians are printed with
the ratio Swift/PyTorch (< 1: Swift faster), the parity error of the outputs, and both processes' peak RSS.
Random weights (Sana-600M config as tools/reference/dit_full_compare.py) are written once to --work and reused.
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

SANA_600M = dict(in_channels=32, out_channels=32, num_attention_heads=36, attention_head_dim=32, num_layers=28,
                 num_cross_attention_heads=16, cross_attention_head_dim=72, cross_attention_dim=1152,
                 caption_channels=2304, mlp_ratio=2.5, sample_size=16, patch_size=1)
WEIGHTS_STAMP = "sana600m-v1"


def make_weights(folder):
    """Random Sana-600M weights as dit_full_compare.py draws them, saved fp32 and as the fp16 variant."""
    import torch
    from diffusers import SanaTransformer2DModel
    torch.manual_seed(0)
    model = SanaTransformer2DModel(**SANA_600M).eval()
    for name, p in model.named_parameters():
        std = 1.0 / (p.shape[-1] ** 0.5) if p.ndim >= 2 and "table" not in name else 0.02
        p.data = (1.0 + 0.1 * torch.randn_like(p)) if "norm" in name else std * torch.randn_like(p)
    model.save_pretrained(folder, safe_serialization=True)
    model.to(torch.float16).save_pretrained(folder, safe_serialization=True, variant="fp16")
    with open(os.path.join(folder, "stamp"), "w") as f:
        f.write(WEIGHTS_STAMP)


def make_inputs(path, latent):
    import torch
    from safetensors.torch import save_file
    g = torch.Generator().manual_seed(latent)
    B, L = 2, 300
    mask = torch.zeros(B, L)
    mask[0, :120] = 1
    mask[1, :37] = 1
    save_file(dict(hidden_states=torch.randn(B, 32, latent, latent, generator=g),
                   encoder_hidden_states=torch.randn(B, L, 2304, generator=g),
                   encoder_attention_mask=mask, timestep=torch.tensor([999.0, 500.0])), path)


class Swift:
    """The `sanagraph-bench serve` process."""

    def __init__(self, binary, env):
        self.p = subprocess.Popen([binary, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def __call__(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        text = self.p.stdout.readline()
        if not text:
            raise RuntimeError(f"sanagraph-bench serve exited with code {self.p.wait()} during '{line}' (see stderr)")
        reply = json.loads(text)
        if not reply.get("ok"):
            raise RuntimeError(f"sanagraph-bench serve: {line}: {reply.get('error')}")
        return reply

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
        except BrokenPipeError:  # the server already died; its error is in the row's note
            pass
        self.p.wait()


def torch_gemm_ms(call):
    """Self CPU time of PyTorch's GEMM and convolution operators in one profiled call (the profiler's own
    overhead falls on the other operators, so this is the GEMM share, not a timing of the call)."""
    import re
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        call()
    gemm = re.compile(r"mm|linear|conv|matmul")
    return sum(e.self_cpu_time_total for e in prof.key_averages() if gemm.search(e.key)) / 1e3


def peak_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


class Bench:
    def __init__(self, args):
        self.args = args
        self.results = []  # (name, shape, swift_ms, torch_ms, note)
        self.torch_model = None
        self.swift = None

    def add(self, name, shape, swift_ms, torch_ms, note=""):
        self.results.append((name, shape, swift_ms, torch_ms, note))
        s = f"{swift_ms:.1f}" if swift_ms is not None else "–"
        t = f"{torch_ms:.1f}" if torch_ms is not None else "–"
        print(f"  {name}: swift {s} ms, torch {t} ms {note}", file=sys.stderr, flush=True)

    # ---- DiT rows ---------------------------------------------------------------------------------------------
    def folder(self):
        folder = os.path.join(self.args.work, "transformer")
        stamp = os.path.join(folder, "stamp")
        if not (os.path.exists(stamp) and open(stamp).read() == WEIGHTS_STAMP):
            print("writing random Sana-600M weights (once) ...", file=sys.stderr, flush=True)
            shutil.rmtree(folder, ignore_errors=True)
            # A child process, so this process's peak RSS is the benchmark's, not the weight generator's.
            subprocess.run([sys.executable, __file__, "--make-weights", folder], check=True)
        return folder

    def swift_server(self):
        if self.swift is None:
            env = dict(os.environ, SANAGRAPH_THREADS=str(self.args.threads))
            self.swift = Swift(self.args.bench_bin, env)
        return self.swift

    def dit_load(self, variant, precision="fp32"):
        import torch
        from diffusers import SanaTransformer2DModel
        folder = self.folder()
        self.precision = precision
        sw = self.swift_server()
        suffix = f".{variant}.safetensors" if variant else "model.safetensors"
        files = [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(suffix)]
        s_times, t_times = [], []
        for _ in range(max(2, self.args.reps // 2)):
            # "From page cache": read the file through first, or whichever side goes first pays the disk.
            for path in files:
                with open(path, "rb") as fh:
                    while fh.read(1 << 24):
                        pass
            reply = sw(f"dit.load {folder} {variant or '-'} {precision}")
            s_times.append(reply["seconds"] * 1e3)
            self.torch_model = None
            t0 = time.perf_counter()
            dtype = torch.bfloat16 if precision == "bf16" else torch.float32
            self.torch_model = SanaTransformer2DModel.from_pretrained(folder, variant=variant, torch_dtype=dtype).eval()
            t_times.append((time.perf_counter() - t0) * 1e3)
        if precision != "fp32":
            return  # the bf16 forward row loads quietly
        name = "dit-load-f16" if variant == "fp16" else "dit-load-f32"
        size = sum(os.path.getsize(f) for f in files)
        self.add(name, f"Sana-600M {variant or 'fp32'} file {size / 2**30:.2f} GiB → fp32",
                 statistics.median(s_times), statistics.median(t_times),
                 f"(Swift RSS after load {sw('rss')['rss_gib']:.2f} GiB; {reply['kernel']})")

    def dit_forward(self, latent, precision="fp32"):
        import torch
        from safetensors.torch import load_file
        if self.torch_model is None or getattr(self, "precision", "fp32") != precision:
            self.dit_load("fp16", precision)
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        sw = self.swift_server()
        io = os.path.join(self.args.work, f"dit-inputs-{latent}.safetensors")
        if not os.path.exists(io):
            make_inputs(io, latent)
        sw(f"dit.inputs {io}")
        inp = {k: (v.to(dtype) if k != "encoder_attention_mask" else v) for k, v in load_file(io).items()}
        s_times, t_times, s_gemm = [], [], []
        ref = None
        with torch.no_grad():
            for rep in range(self.args.reps + 1):  # rep 0 is the warm-up of both sides
                reply = sw("dit.forward")
                s = reply["ms"]
                t0 = time.perf_counter()
                ref = self.torch_model(hidden_states=inp["hidden_states"], encoder_hidden_states=inp["encoder_hidden_states"],
                                       timestep=inp["timestep"], encoder_attention_mask=inp["encoder_attention_mask"],
                                       return_dict=False)[0]
                t = (time.perf_counter() - t0) * 1e3
                if rep > 0:
                    s_times.append(s)
                    t_times.append(t)
                    s_gemm.append(reply.get("onednn_ms", 0.0))
            t_gemm = torch_gemm_ms(lambda: self.torch_model(
                hidden_states=inp["hidden_states"], encoder_hidden_states=inp["encoder_hidden_states"],
                timestep=inp["timestep"], encoder_attention_mask=inp["encoder_attention_mask"], return_dict=False))
        out = os.path.join(self.args.work, "dit-out.f32")
        sw(f"save {out}")
        import numpy as np
        ref = ref.float()
        v = torch.from_numpy(np.fromfile(out, dtype=np.float32).reshape(ref.shape))
        def rel(a, b):
            return float((a - b).abs().max() / b.abs().max())
        if precision == "fp32":
            # The fp32 reference of the reduced-precision rows that follow (same inputs).
            self.fp32_outputs = getattr(self, "fp32_outputs", {})
            self.fp32_outputs[latent] = ref
            accuracy = f"max|Δ|/max|ref| {rel(v, ref):.1e}"
        elif latent in getattr(self, "fp32_outputs", {}):
            # Both sides' reduced precision judged against the fp32 reference (PyTorch's bf16 pipeline also
            # rounds the timestep to bf16, as SanaPipeline does with `.to(latents.dtype)`).
            fp32 = self.fp32_outputs[latent]
            accuracy = f"max|Δ|/max|ref| vs fp32: Swift {rel(v, fp32):.1e}, PyTorch {rel(ref, fp32):.1e}"
        else:
            accuracy = f"Swift vs PyTorch {precision}: max|Δ|/max|ref| {rel(v, ref):.1e} (run the fp32 row first for errors vs fp32)"
        rss = sw("rss")
        suffix = "" if precision == "fp32" else "-" + precision
        split = (f"in GEMMs/convolutions: Swift {statistics.median(s_gemm):.0f} ms, PyTorch {t_gemm:.0f} ms "
                 f"(one profiled forward)")
        self.add(f"dit-{latent * 32}{suffix}", f"Sana-600M b2, latent {latent}x{latent}, 300 tokens",
                 statistics.median(s_times), statistics.median(t_times),
                 f"({accuracy}; {split}; Swift peak RSS {rss['peak_gib']:.2f} GiB, PyTorch {peak_gib():.2f} GiB)")

    # ---- graph rows (modules written by other issues) ----------------------------------------------------------
    def registered(self):
        if not hasattr(self, "_nodes"):
            try:
                out = subprocess.run([self.args.sanagraph, "nodes"], capture_output=True, text=True, check=True).stdout
                self._nodes = out
            except (OSError, subprocess.CalledProcessError) as e:
                self._nodes = ""
                print(f"cannot list node types with {self.args.sanagraph}: {e}", file=sys.stderr)
        return self._nodes

    def graph_row(self, name, shape, needs):
        """Rows for modules still being written: they run once their node types are registered and a runner
        (`run_<name>` below) exists; until then the table says which node types are missing."""
        missing = [n for n in needs if n not in self.registered()]
        if missing:
            self.add(name, shape, None, None, "skipped: node types not registered yet: " + ", ".join(missing))
            return
        runner = getattr(self, "run_" + name.replace("-", "_"), None)
        if runner is None:
            self.add(name, shape, None, None, "skipped: node types exist; no runner in bench_models.py yet")
            return
        runner(name, shape)

    def run_graph_node(self, graph_text, node):
        """Runs `sanagraph run --json` on a graph and returns the seconds of `node` from its events."""
        path = os.path.join(self.args.work, "graph.yaml")
        with open(path, "w") as f:
            f.write(graph_text)
        env = dict(os.environ, SANAGRAPH_THREADS=str(self.args.threads), OPENBLAS_NUM_THREADS=str(self.args.threads))
        out = subprocess.run([self.args.sanagraph, "run", path, "--json", "--cache", "off"], capture_output=True,
                             text=True, env=env)
        seconds = None
        for line in out.stdout.splitlines():
            try:
                e = json.loads(line)
            except json.JSONDecodeError:
                continue
            if e.get("node") == node and "seconds" in e:
                seconds = e["seconds"]
        if out.returncode != 0 or seconds is None:
            raise RuntimeError(f"sanagraph run failed ({out.returncode}): {out.stderr.strip()[-500:]}")
        return seconds


    # ---- graph rows: both sides in fresh child processes (peak RSS of each is its own) ------------------------
    def pipeline(self):
        """The random full-size SanaPipeline folder of text2img_full_compare.py (Gemma-2-2B, Sana-600M 512 px,
        DC-AE f32c32, bf16 files), built once (~10 GB disk, minutes) unless --pipeline already holds one."""
        folder = self.args.pipeline
        if not os.path.exists(os.path.join(folder, "model_index.json")):
            print(f"building the random full-size pipeline in {folder} (once) ...", file=sys.stderr, flush=True)
            script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "text2img_full_compare.py")
            subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {os.path.dirname(script)!r}); "
                            f"import text2img_full_compare as t; t.build({folder!r})"], check=True)
        return folder

    def env(self):
        t = str(self.args.threads)
        return dict(os.environ, SANAGRAPH_THREADS=t, OPENBLAS_NUM_THREADS=t, OMP_NUM_THREADS=t, MKL_NUM_THREADS=t)

    @staticmethod
    def warm_cache(folder):
        """Reads the weights through once, so that each side loads from page cache."""
        for root, _, files in os.walk(folder):
            for f in files:
                if f.endswith(".safetensors"):
                    with open(os.path.join(root, f), "rb") as fh:
                        while fh.read(1 << 24):
                            pass

    def measured(self, cmd, extra_env=None):
        """Runs cmd under a wrapper that prints the peak RSS of cmd alone; returns (stdout, wall s, peak GiB) and
        keeps its stderr in self.last_stderr."""
        wrapper = ("import os, subprocess, sys, time; t0 = time.perf_counter(); p = subprocess.Popen(sys.argv[1:]); "
                   "_, status, ru = os.wait4(p.pid, 0); sys.stderr.write('BENCH_PEAK_KB %d %f\\n' % "
                   "(ru.ru_maxrss, time.perf_counter() - t0)); sys.exit(os.waitstatus_to_exitcode(status))")
        p = subprocess.run([sys.executable, "-c", wrapper] + cmd, capture_output=True, text=True,
                           env={**self.env(), **(extra_env or {})})
        self.last_stderr = p.stderr
        line = next((ln for ln in p.stderr.splitlines() if ln.startswith("BENCH_PEAK_KB ")), None)
        if p.returncode != 0 or line is None:
            raise RuntimeError(f"{os.path.basename(cmd[0])} failed ({p.returncode}): {p.stderr.strip()[-600:]}")
        kb, wall = line.split()[1:]
        return p.stdout, float(wall), int(kb) / 2**20

    def swift_graph(self, graph_text, name):
        """`sanagraph run --json` on a graph; returns ({node: seconds}, wall s, peak GiB)."""
        path = os.path.join(self.args.work, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(graph_text)
        out, wall, peak = self.measured([self.args.sanagraph, "run", path, "--json", "--cache", "off"])
        seconds = {}
        for line in out.splitlines():
            if line.startswith("{"):
                e = json.loads(line)
                if e.get("event") == "node_finished":
                    seconds[e["node"]] = e.get("seconds", 0.0)
        return seconds, wall, peak

    def torch_child(self, row, *extra):
        """This script in a child process (`--torch-row`); returns (its JSON result, peak GiB)."""
        out, _, peak = self.measured([sys.executable, os.path.abspath(__file__), "--torch-row", row,
                                      "--threads", str(self.args.threads)] + list(extra))
        return json.loads(next(ln for ln in out.splitlines() if ln.startswith("{"))), peak

    def graph_rows(self, name, shape, swift_once, torch_once, note=""):
        """reps interleaved runs of two fresh processes; medians, ratio and the larger peak RSS of each side."""
        s_times, t_times, s_peak, t_peak, extra = [], [], 0.0, 0.0, {}
        for _ in range(self.args.reps):
            s, sp = swift_once()
            t, tp = torch_once()
            s_times.append(s)
            t_times.append(t)
            s_peak, t_peak = max(s_peak, sp), max(t_peak, tp)
        self.add(name, shape, statistics.median(s_times), statistics.median(t_times),
                 f"({note}Swift peak RSS {s_peak:.2f} GiB, PyTorch {t_peak:.2f} GiB)")

    def run_dcae_decode_512(self, name, shape):
        self.dcae_decode(name, shape, 16)

    def run_dcae_decode_512_bf16(self, name, shape):
        self.dcae_decode(name, shape, 16, "bf16")

    def run_dcae_decode_1024(self, name, shape):
        self.dcae_decode(name, shape, 32)

    def dcae_decode(self, name, shape, latent, precision="fp32"):
        import torch
        from safetensors.torch import save_file
        vae = os.path.join(self.pipeline(), "vae")
        z = os.path.join(self.args.work, f"dcae-latent-{latent}.safetensors")
        if not os.path.exists(z):
            save_file({"latent": torch.randn(1, 32, latent, latent, generator=torch.Generator().manual_seed(latent))}, z)
        out = os.path.join(self.args.work, "dcae-swift.safetensors")
        graph = f"""sanagraph: 1
nodes:
  vae: {{type: dcae.load, params: {{path: "{vae}", precision: {precision}}}}}
  z: {{type: tensor.load, params: {{path: "{z}", name: latent}}}}
  decode: {{type: dcae.decode, inputs: {{vae: vae, latent: z}}, params: {{apply_scaling_factor: false}}}}
  save: {{type: tensor.save, inputs: {{tensor: decode.image}}, params: {{path: "{out}", name: image}}}}
"""
        self.warm_cache(vae)

        def swift_once():
            sec, _, peak = self.swift_graph(graph, name)
            return sec["decode"] * 1e3, peak

        def torch_once():
            r, peak = self.torch_child("dcae", vae, z, os.path.join(self.args.work, "dcae-torch.safetensors"), precision)
            return r["ms"], peak

        self.graph_rows(name, shape, swift_once, torch_once, f"decode only, both load the bf16 file as {precision} first; ")
        from safetensors.torch import load_file
        a = load_file(out)["image"]
        b = load_file(os.path.join(self.args.work, "dcae-torch.safetensors"))["image"]
        err = float((a - b).abs().max() * 255)
        name_, shape_, s, t, note = self.results[-1]
        self.results[-1] = (name_, shape_, s, t, f"(max pixel |Δ| {err:.3f}/255; " + note.strip("()") + ")")

    def run_gemma_encode_bf16(self, name, shape):
        self.run_gemma_encode(name, shape, "bf16")

    def run_gemma_encode(self, name, shape, precision="fp32"):
        model = self.pipeline()
        folder, tok = os.path.join(model, "text_encoder"), os.path.join(model, "tokenizer")
        out = os.path.join(self.args.work, "gemma-swift.safetensors")
        graph = f"""sanagraph: 1
nodes:
  encoder: {{type: text_encoder.load, params: {{path: "{folder}", tokenizer: "{tok}", precision: {precision}}}}}
  positive: {{type: text.encode, inputs: {{encoder: encoder}}, params: {{text: "{PROMPT}", instruction: default, max_sequence_length: 300}}}}
  save: {{type: tensor.save, inputs: {{tensor: positive}}, params: {{path: "{out}", name: c}}}}
"""
        self.warm_cache(folder)
        loads = {}

        def swift_once():
            sec, _, peak = self.swift_graph(graph, name)
            loads["swift"] = sec["encoder"]
            return sec["positive"] * 1e3, peak

        def torch_once():
            r, peak = self.torch_child("gemma", folder, tok, precision)
            loads["torch"] = r["load_s"]
            return r["ms"], peak

        self.graph_rows(name, shape, swift_once, torch_once)
        name_, shape_, s, t, note = self.results[-1]
        self.results[-1] = (name_, shape_, s, t, f"(encode only; load bf16 file → {precision}: Swift {loads['swift']:.1f} s, "
                            f"PyTorch {loads['torch']:.1f} s; " + note.strip("()") + ")")

    def run_text2img_512_bf16(self, name, shape):
        self.run_text2img_512(name, shape, "bf16")

    def run_text2img_512(self, name, shape, precision="fp32"):
        """Whole process on both sides, loads included: `sanagraph run Graphs/text2img.yaml` vs a python process
        running SanaPipeline.from_pretrained + the pipeline call (text2img_full_compare.py's two sides)."""
        model = self.pipeline()
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "text2img_full_compare.py")
        out = os.path.join(self.args.work, "text2img-swift.png")
        self.warm_cache(model)
        parts = {}

        def swift_once():
            cmd = [self.args.sanagraph, "run", "Graphs/text2img.yaml", "--json", "--no-metadata", "--cache", "off",
                   "--set", f"models={model}", "--set", f"prompt={PROMPT}", "--set", "steps=20",
                   "--set", "width=512", "--set", "height=512", "--set", f"output={out}", "--set", f"precision={precision}"]
            # SANAGRAPH_PROFILE: where the Swift side's time goes, by part of the models (a lock and two clock reads
            # per part, thousands per run).
            text, wall, peak = self.measured(cmd, {"SANAGRAPH_PROFILE": "1"})
            profile = self.last_stderr.split("== SANAGRAPH_PROFILE\n", 1)
            if len(profile) == 2:
                with open(os.path.join(self.args.work, f"{name}-swift-profile.md"), "w") as f:
                    f.write(profile[1])
                parts["profile"] = profile[1]
            sec = {}
            for line in text.splitlines():
                if line.startswith("{"):
                    e = json.loads(line)
                    if e.get("event") == "node_finished":
                        sec[e["node"]] = e.get("seconds", 0.0)
            parts["swift"] = sec.get("sample", 0.0)
            parts["nodes"] = sec
            return wall * 1e3, peak

        def torch_once():
            text, wall, peak = self.measured([sys.executable, script, "--torch-side", "--model", model,
                                              "--work", self.args.work, "--steps", "20", "--size", "512",
                                              "--dtype", precision])
            r = json.loads(next(ln for ln in text.splitlines() if ln.startswith("RESULT "))[len("RESULT "):])
            parts["torch"] = r["transformer"]
            parts["torch_call"] = r["pipeline_call"]
            parts["torch_parts"] = ", ".join(f"{n} {r[n]:.1f}" for n in ("load", "text_encoder", "vae_decode") if n in r)
            return wall * 1e3, peak

        self.graph_rows(name, shape, swift_once, torch_once)
        if "profile" in parts:
            print(f"{name}: the last Swift run by part (SANAGRAPH_PROFILE)\n{parts['profile']}", flush=True)
        name_, shape_, s, t, note = self.results[-1]
        nodes = ", ".join(f"{n} {v:.1f}" for n, v in parts.get("nodes", {}).items() if v >= 0.05)
        self.results[-1] = (name_, shape_, s, t, f"(whole process incl. loads and Python start-up; sampling: Swift "
                            f"{parts['swift']:.1f} s, diffusers {parts['torch']:.1f} s; diffusers pipeline call "
                            f"{parts['torch_call']:.1f} s; Swift nodes (s): {nodes}; diffusers (s): {parts['torch_parts']}; "
                            + note.strip("()") + ")")


    # ---- Sana-Sprint --------------------------------------------------------------------------------------------
    def sprint_pipeline(self):
        """A SanaSprintPipeline folder: Sana-Sprint 1.6B transformer (random, bf16), SCMScheduler, and the
        text encoder, tokenizer and VAE of the random full-size pipeline (linked)."""
        base = self.pipeline()
        folder = os.path.join(self.args.work, "sprint-1.6b")
        if os.path.exists(os.path.join(folder, "model_index.json")):
            return folder
        import torch
        from diffusers import SanaTransformer2DModel, SCMScheduler
        print(f"building the random Sana-Sprint 1.6B folder in {folder} (once) ...", file=sys.stderr, flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        torch.manual_seed(0)
        torch.set_default_dtype(torch.bfloat16)
        SanaTransformer2DModel(**SPRINT_1600M).eval().save_pretrained(os.path.join(folder, "transformer"))
        torch.set_default_dtype(torch.float32)
        SCMScheduler(num_train_timesteps=1000, prediction_type="trigflow", sigma_data=0.5).save_pretrained(
            os.path.join(folder, "scheduler"))
        for sub in ["text_encoder", "tokenizer", "vae"]:
            os.symlink(os.path.abspath(os.path.join(base, sub)), os.path.join(folder, sub))
        with open(os.path.join(base, "model_index.json")) as f:
            index = json.load(f)
        index.update(_class_name="SanaSprintPipeline", scheduler=["diffusers", "SCMScheduler"])
        with open(os.path.join(folder, "model_index.json"), "w") as f:
            json.dump(index, f, indent=2)
        return folder

    def run_sprint_1024(self, name, shape):
        model = self.sprint_pipeline()
        out = os.path.join(self.args.work, "sprint-swift.png")
        ref = os.path.join(self.args.work, "sprint-torch.png")
        self.warm_cache(model)
        parts = {}

        def swift_once():
            cmd = [self.args.sanagraph, "run", "Graphs/sprint.yaml", "--json", "--no-metadata", "--cache", "off",
                   "--set", f"models={model}", "--set", f"prompt={PROMPT}", "--set", "steps=2",
                   "--set", "width=1024", "--set", "height=1024", "--set", f"output={out}"]
            text, wall, peak = self.measured(cmd)
            sec = {}
            for line in text.splitlines():
                if line.startswith("{"):
                    e = json.loads(line)
                    if e.get("event") == "node_finished":
                        sec[e["node"]] = e.get("seconds", 0.0)
            parts["swift"] = (sec.get("sample", 0.0), sec.get("decode", 0.0))
            return wall * 1e3, peak

        def torch_once():
            text, wall, peak = self.measured([sys.executable, os.path.abspath(__file__), "--torch-row", "sprint",
                                              "--threads", str(self.args.threads), model, ref])
            r = json.loads(next(ln for ln in text.splitlines() if ln.startswith("{")))
            parts["torch"] = r
            return wall * 1e3, peak

        self.graph_rows(name, shape, swift_once, torch_once)
        import numpy as np
        from PIL import Image
        diff = int(np.abs(np.asarray(Image.open(out), dtype=int) - np.asarray(Image.open(ref), dtype=int)).max())
        name_, shape_, s, t, note = self.results[-1]
        self.results[-1] = (name_, shape_, s, t, f"(whole process incl. loads and Python start-up; 2 transformer "
                            f"steps + decode: Swift {parts['swift'][0]:.1f} + {parts['swift'][1]:.1f} s, diffusers "
                            f"pipeline call {parts['torch']['call_s']:.1f} s; max pixel |Δ| {diff}/255; "
                            + note.strip("()") + ")")


PROMPT = "a red circle above a blue square on a white background"
# Sana_Sprint_1.6B_1024px_diffusers transformer/config.json (sana-architecture.md §3.1).
SPRINT_1600M = dict(in_channels=32, out_channels=32, num_attention_heads=70, attention_head_dim=32, num_layers=20,
                    num_cross_attention_heads=20, cross_attention_head_dim=112, cross_attention_dim=2240,
                    caption_channels=2304, mlp_ratio=2.5, sample_size=32, patch_size=1, interpolation_scale=None,
                    qk_norm="rms_norm_across_heads", guidance_embeds=True, guidance_embeds_scale=0.1,
                    timestep_scale=1.0)


def torch_row(args, rest):
    """Child process of a graph row: one PyTorch run, prints one JSON line."""
    import torch
    from safetensors.torch import load_file, save_file
    torch.set_num_threads(args.threads)
    if args.torch_row == "dcae":
        from diffusers import AutoencoderDC
        folder, z_path, out, precision = rest
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        model = AutoencoderDC.from_pretrained(folder, torch_dtype=dtype).eval()
        z = load_file(z_path)["latent"].to(dtype)
        with torch.no_grad():
            t0 = time.perf_counter()
            x = model.decode(z, return_dict=False)[0]
            ms = (time.perf_counter() - t0) * 1e3
        # dcae.decode's image output is the [0, 1] picture: compare with diffusers' postprocessing of it.
        save_file({"image": (x.float() / 2 + 0.5).clamp(0, 1).contiguous()}, out)
        print(json.dumps({"ms": ms}))
    elif args.torch_row == "gemma":
        import inspect
        from diffusers import SanaPipeline
        from transformers import Gemma2Model, GemmaTokenizerFast
        folder, tok, precision = rest
        t0 = time.perf_counter()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        model = Gemma2Model.from_pretrained(folder, torch_dtype=dtype).eval()
        load_s = time.perf_counter() - t0
        pipe = SanaPipeline(tokenizer=GemmaTokenizerFast.from_pretrained(tok), text_encoder=model, vae=None,
                            transformer=None, scheduler=None)
        chi = list(inspect.signature(SanaPipeline.__call__).parameters["complex_human_instruction"].default)
        with torch.no_grad():
            t0 = time.perf_counter()
            pipe.encode_prompt(PROMPT, do_classifier_free_guidance=False, device="cpu", max_sequence_length=300,
                               complex_human_instruction=chi)
            ms = (time.perf_counter() - t0) * 1e3
        print(json.dumps({"ms": ms, "load_s": load_s}))
    elif args.torch_row == "sprint":
        from diffusers import SanaSprintPipeline
        folder, out = rest
        pipe = SanaSprintPipeline.from_pretrained(folder, torch_dtype=torch.float32)
        pipe.set_progress_bar_config(disable=True)
        with torch.no_grad():
            t0 = time.perf_counter()
            image = pipe(PROMPT, num_inference_steps=2, height=1024, width=1024, guidance_scale=4.5,
                         use_resolution_binning=False, generator=torch.Generator("cpu").manual_seed(0)).images[0]
            call_s = time.perf_counter() - t0
        image.save(out)
        print(json.dumps({"call_s": call_s}))


ROWS = {
    "dit-load-f16": lambda b: b.dit_load("fp16"),
    "dit-load-f32": lambda b: b.dit_load(None),
    "dit-512": lambda b: b.dit_forward(16),
    "dit-1024": lambda b: b.dit_forward(32),
    "dit-512-bf16": lambda b: b.dit_forward(16, "bf16"),
    "dcae-decode-512": lambda b: b.graph_row("dcae-decode-512", "DC-AE f32c32 decode, latent 16x16",
                                             ["dcae.load", "dcae.decode"]),
    "dcae-decode-512-bf16": lambda b: b.graph_row("dcae-decode-512-bf16", "DC-AE f32c32 decode, latent 16x16",
                                                  ["dcae.load", "dcae.decode"]),
    "dcae-decode-1024": lambda b: b.graph_row("dcae-decode-1024", "DC-AE f32c32 decode, latent 32x32",
                                              ["dcae.load", "dcae.decode"]),
    "gemma-encode": lambda b: b.graph_row("gemma-encode", "Gemma-2-2B, one prompt + instruction, 300 tokens",
                                          ["text_encoder.load", "text.encode"]),
    "gemma-encode-bf16": lambda b: b.graph_row("gemma-encode-bf16", "Gemma-2-2B, one prompt + instruction, 300 tokens",
                                               ["text_encoder.load", "text.encode"]),
    "text2img-512": lambda b: b.graph_row("text2img-512", "Graphs/text2img.yaml, 512 px, 20 steps",
                                          ["text_encoder.load", "text.encode", "dit.load", "dcae.decode"]),
    "sprint-1024": lambda b: b.graph_row("sprint-1024", "Graphs/sprint.yaml, Sana-Sprint 1.6B, 1024 px, 2 steps",
                                         ["text_encoder.load", "text.encode", "dit.load", "sample.scm", "dcae.decode"]),
    "text2img-512-bf16": lambda b: b.graph_row("text2img-512-bf16", "Graphs/text2img.yaml, 512 px, 20 steps",
                                               ["text_encoder.load", "text.encode", "dit.load", "dcae.decode"]),
}
QUICK_SKIP = {"sprint-1024", "dit-1024", "dcae-decode-1024", "dit-load-f32", "gemma-encode", "text2img-512", "gemma-encode-bf16",
              "text2img-512-bf16"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", action="store_true", help="actually run (guard against `make fixtures`)")
    ap.add_argument("--make-weights", metavar="FOLDER", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true",
                    help="skip the 1024 px rows, the fp32 load row and the Gemma and text2img rows")
    ap.add_argument("--pipeline", default="/tmp/text2img-full/model",
                    help="random full-size SanaPipeline folder of text2img_full_compare.py (built there if absent)")
    ap.add_argument("--torch-row", help=argparse.SUPPRESS)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rows", default="", help="comma-separated row names (default: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "sanagraph-bench"))
    ap.add_argument("--bench-bin", default=".build/release/sanagraph-bench")
    ap.add_argument("--sanagraph", default=".build/release/sanagraph")
    args, rest = ap.parse_known_args()
    if args.torch_row:
        torch_row(args, rest)
        return
    if rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.make_weights:
        make_weights(args.make_weights)
        return
    if not args.run:
        print(__doc__)
        return
    import torch
    torch.set_num_threads(args.threads)
    os.makedirs(args.work, exist_ok=True)
    names = [n for n in args.rows.split(",") if n] or [n for n in ROWS if not (args.quick and n in QUICK_SKIP)]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        sys.exit(f"unknown rows {unknown}; known: {', '.join(ROWS)}")
    bench = Bench(args)
    print(f"torch {torch.__version__}: {torch.get_num_threads()} threads; medians of {args.reps} interleaved reps "
          f"after 1 warm-up (load rows: {max(2, args.reps // 2)} reps; graph rows: fresh processes, no warm-up)")
    try:
        for n in names:
            try:
                ROWS[n](bench)
            except Exception as e:  # one failing row must not hide the others
                bench.add(n, "", None, None, f"failed: {e}")
    finally:
        if bench.swift:
            bench.swift.close()
    print()
    torch_fp32 = {name: t for name, _, _, t, _ in bench.results}
    print("| row | shape | Swift ms | PyTorch ms | Swift/PyTorch | Swift/PyTorch-fp32 | note |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name, shape, s, t, note in bench.results:
        ratio = f"{s / t:.2f}" if s is not None and t else "–"
        fp32_t = torch_fp32.get(name[:-len("-bf16")]) if name.endswith("-bf16") else None
        vs_fp32 = f"{s / fp32_t:.2f}" if s is not None and fp32_t else "–"
        sf = f"{s:.0f}" if s is not None else "–"
        tf = f"{t:.0f}" if t is not None else "–"
        print(f"| {name} | {shape} | {sf} | {tf} | {ratio} | {vs_fp32} | {note.strip('()')} |")


if __name__ == "__main__":
    main()
