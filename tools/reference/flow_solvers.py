#!/usr/bin/env python3
"""Fixtures for Plugins/FlowSolvers (Tests/Fixtures/FlowSolvers), from diffusers and PyTorch.

Run from the repository root with the reference venv (make reference-venv):  python tools/reference/flow_solvers.py

Writes:
  sana_scheduler/scheduler_config.json  DPMSolverMultistepScheduler configured as SANA's diffusers repos ship it
  schedules.json        sigmas/timesteps of both schedulers for many (steps, shift) pairs
  steps.safetensors     single scheduler.step calls on random inputs (with multistep history), per case
  steps.json            the cases in steps.safetensors
  loops.safetensors     whole sampling loops (pipeline_sana's loop) with a stand-in denoiser
  loops.json            the loop cases
  noise.safetensors     torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))
  noise.json            the noise cases

The stand-in denoiser (defined identically in Tests/FlowSolversTests/StandInDenoiser.swift):
  m_b = mean(text embeddings[b]) computed in float64, then float32
  v   = (A*x + (K*(t/1000))*x) + C*m_b        (float32, this operation order), A=0.8, K=0.3, C=0.5
"""
import json
import os
import tempfile

import numpy as np
import torch
from diffusers import DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler
from safetensors.torch import save_file

OUT = os.path.join("Tests", "Fixtures", "FlowSolvers")

# SANA's scheduler/scheduler_config.json (Efficient-Large-Model/Sana_*_diffusers), see
# shared/docs/reference/sana-architecture.md §5.2.
SANA_DPM = dict(
    num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
    solver_order=2, prediction_type="flow_prediction", thresholding=False,
    dynamic_thresholding_ratio=0.995, sample_max_value=1.0, algorithm_type="dpmsolver++",
    solver_type="midpoint", lower_order_final=True, euler_at_final=False,
    use_karras_sigmas=False, use_lu_lambdas=False, use_flow_sigmas=True, flow_shift=3.0,
    final_sigmas_type="zero", lambda_min_clipped=-float("inf"), variance_type=None,
    timestep_spacing="linspace", steps_offset=0,
)

A, K, C = 0.8, 0.3, 0.5


def dpm(shift=3.0, **over):
    cfg = dict(SANA_DPM, flow_shift=shift)
    cfg.update(over)
    return DPMSolverMultistepScheduler(**cfg)


def euler(shift=3.0):
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)


def f32list(t):
    return [float(v) for v in t.to(torch.float32).tolist()]


def schedules():
    cases = []
    for steps in [1, 2, 3, 5, 10, 20, 28, 50, 100]:
        for shift in [1.0, 3.0, 4.5, 6.0]:
            d = dpm(shift)
            d.set_timesteps(steps)
            e = euler(shift)
            e.set_timesteps(steps)
            cases.append(dict(
                steps=steps, shift=shift,
                dpm_sigmas=f32list(d.sigmas), dpm_timesteps=[int(v) for v in d.timesteps.tolist()],
                euler_sigmas=f32list(e.sigmas), euler_timesteps=f32list(e.timesteps)))
    return cases


def step_cases(tensors):
    """Each case: a scheduler, a number of steps, random (model_output, sample) per step -> prev_sample."""
    g = torch.Generator().manual_seed(1234)
    shape = (2, 4, 3, 5)
    specs = [
        dict(name="dpm_midpoint_20_s3", kind="dpm", steps=20, shift=3.0, begin=0, over={}),
        dict(name="dpm_midpoint_7_s4.5", kind="dpm", steps=7, shift=4.5, begin=0, over={}),
        dict(name="dpm_midpoint_12_s3_begin5", kind="dpm", steps=12, shift=3.0, begin=5, over={}),
        dict(name="dpm_heun_10_s3", kind="dpm", steps=10, shift=3.0, begin=0, over=dict(solver_type="heun")),
        dict(name="dpm_order1_5_s3", kind="dpm", steps=5, shift=3.0, begin=0, over=dict(solver_order=1)),
        dict(name="dpm_midpoint_1_s3", kind="dpm", steps=1, shift=3.0, begin=0, over={}),
        dict(name="euler_20_s3", kind="euler", steps=20, shift=3.0, begin=0, over={}),
        dict(name="euler_7_s1", kind="euler", steps=7, shift=1.0, begin=0, over={}),
        dict(name="euler_9_s3_begin4", kind="euler", steps=9, shift=3.0, begin=4, over={}),
    ]
    for s in specs:
        sch = dpm(s["shift"], **s["over"]) if s["kind"] == "dpm" else euler(s["shift"])
        sch.set_timesteps(s["steps"])
        if s["begin"]:
            sch.set_begin_index(s["begin"])
        n = 0
        for t in sch.timesteps[s["begin"]:]:
            mo = torch.randn(shape, generator=g)
            x = torch.randn(shape, generator=g) * 1.5
            y = sch.step(mo, t, x, return_dict=False)[0]
            tensors[f"{s['name']}/{n}/model_output"] = mo
            tensors[f"{s['name']}/{n}/sample"] = x
            tensors[f"{s['name']}/{n}/prev_sample"] = y.contiguous()
            n += 1
        s["count"] = n
    return specs


def stand_in(x, t, emb):
    m = emb.double().mean(dim=(1, 2)).float()
    tt = t.to(torch.float32) / 1000.0
    return (A * x + (K * tt).view(-1, 1, 1, 1) * x) + (C * m).view(-1, 1, 1, 1)


def run_loop(kind, steps, shift, guidance, latents, pos, neg, strength=1.0, clean=None, noise=None):
    """pipeline_sana.py's denoising loop (and the img2img convention of diffusers' other pipelines)."""
    sch = dpm(shift) if kind == "dpm" else euler(shift)
    sch.set_timesteps(steps)
    timesteps = sch.timesteps
    if clean is not None:
        # diffusers img2img: get_timesteps(num_inference_steps, strength) + set_begin_index + add_noise/scale_noise
        init_timestep = min(steps * strength, steps)
        t_start = int(max(steps - init_timestep, 0))
        timesteps = sch.timesteps[t_start * sch.order:]
        sch.set_begin_index(t_start * sch.order)
        latent_timestep = timesteps[:1].repeat(clean.shape[0])
        if kind == "dpm":
            latents = sch.add_noise(clean, noise, latent_timestep)
        else:
            latents = sch.scale_noise(clean, latent_timestep, noise)
    cfg = guidance > 1.0
    emb = torch.cat([neg, pos]) if cfg else pos
    for t in timesteps:
        inp = torch.cat([latents] * 2) if cfg else latents
        timestep = t.expand(inp.shape[0])
        timestep = timestep * 1.0  # transformer.config.timestep_scale
        v = stand_in(inp, timestep, emb).float()
        if cfg:
            u, c = v.chunk(2)
            v = u + guidance * (c - u)
        latents = sch.step(v, t, latents, return_dict=False)[0]
    return latents, len(timesteps)


def loop_cases(tensors):
    g = torch.Generator().manual_seed(99)
    shape = (2, 4, 3, 5)
    latents = torch.randn(shape, generator=g)
    clean = torch.randn(shape, generator=g) * 0.7
    noise = torch.randn(shape, generator=g)
    pos = torch.randn((2, 6, 8), generator=g) + 0.25
    neg = torch.randn((2, 6, 8), generator=g) - 0.1
    tensors["latents"] = latents
    tensors["clean"] = clean
    tensors["noise"] = noise
    tensors["positive"] = pos
    tensors["negative"] = neg
    cases = []
    for kind, steps in [("dpm", 20), ("dpm", 9), ("euler", 20), ("euler", 6)]:
        for guidance in [4.5, 1.0]:
            name = f"{kind}_{steps}_g{guidance}"
            out, n = run_loop(kind, steps, 3.0, guidance, latents, pos, neg)
            tensors[name] = out.contiguous()
            cases.append(dict(name=name, kind=kind, steps=steps, shift=3.0, guidance=guidance,
                              denoise=1.0, img2img=False, model_calls=n))
        for strength in [0.6, 0.7, 1.0]:
            name = f"{kind}_{steps}_img2img_{strength}"
            out, n = run_loop(kind, steps, 3.0, 4.5, None, pos, neg, strength=strength, clean=clean, noise=noise)
            tensors[name] = out.contiguous()
            cases.append(dict(name=name, kind=kind, steps=steps, shift=3.0, guidance=4.5,
                              denoise=strength, img2img=True, model_calls=n))
    return cases


def noise_cases(tensors):
    cases = []
    shapes = [[1], [7], [15], [16], [17], [31], [32], [100], [1000], [1, 4, 5, 6]]
    seeds = [0, 1, 42, 2**32 + 5, 2**63 - 1, -1]
    for shape in shapes:
        for seed in seeds:
            name = f"randn_{'x'.join(map(str, shape))}_{seed}"
            tensors[name] = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))
            cases.append(dict(name=name, shape=shape, seed=seed))
    # SANA 1024px latents, batch 2.
    for seed in [0, 2**32 + 5]:
        shape = [2, 32, 32, 32]
        name = f"randn_2x32x32x32_{seed}"
        tensors[name] = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))
        cases.append(dict(name=name, shape=shape, seed=seed))
    # Seed 2711 hits, in block 148, one of the three 24-bit uniforms for which the FMA contraction in the
    # Cody-Waite range reduction of torch's AVX2 sincos changes the result: guards that detail.
    shape = [2400]
    tensors["randn_2400_2711"] = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(2711))
    cases.append(dict(name="randn_2400_2711", shape=shape, seed=2711))
    return cases


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    # The real-format scheduler config, written by diffusers itself.
    with tempfile.TemporaryDirectory() as tmp:
        dpm().save_config(tmp)
        cfg = json.load(open(os.path.join(tmp, "scheduler_config.json")))
    cfg.pop("_diffusers_version", None)
    os.makedirs(os.path.join(OUT, "sana_scheduler"), exist_ok=True)
    with open(os.path.join(OUT, "sana_scheduler", "scheduler_config.json"), "w") as f:
        json.dump(dict(cfg, _diffusers_version="0.42.1"), f, indent=2, sort_keys=True)
        f.write("\n")

    with open(os.path.join(OUT, "schedules.json"), "w") as f:
        json.dump(schedules(), f)

    tensors = {}
    specs = step_cases(tensors)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "steps.safetensors"))
    with open(os.path.join(OUT, "steps.json"), "w") as f:
        json.dump(specs, f, indent=1)

    tensors = {}
    cases = loop_cases(tensors)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "loops.safetensors"))
    with open(os.path.join(OUT, "loops.json"), "w") as f:
        json.dump(cases, f, indent=1)

    tensors = {}
    cases = noise_cases(tensors)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "noise.safetensors"))
    with open(os.path.join(OUT, "noise.json"), "w") as f:
        json.dump(cases, f, indent=1)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
