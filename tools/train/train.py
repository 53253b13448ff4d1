"""Trains the shipped SANA-architecture model on procedural shape pictures (tools/train/dataset.py).

Stages (each resumable from a saved model folder with --init):

  vae  AutoencoderDC trained as a plain autoencoder (L1 + L2 on [-1, 1] pixels, horizontal flips), then
       scaling_factor = 1 / std of its latents.
  dit  Gemma2Model text encoder + SanaTransformer2DModel trained jointly with rectified-flow matching on the
       frozen VAE encoder's latents, conditioned exactly as SanaPipeline.encode_prompt conditions them (default
       complex human instruction, right padding, [0] + last L-1 positions); 10 % of captions replaced by the
       negative prompt "" (encoded without the instruction) so classifier-free guidance works. Optionally keeps
       fine-tuning the VAE decoder on the same frozen latents (--decoder-every).
  all  vae, then dit, in one process (one data pool).

Weights are kept in fp32 with an EMA copy; the EMA weights are saved in fp16 with save_pretrained into
OUT/{vae,transformer,text_encoder}. Losses go to OUT/logs/*.csv. Example (the device run):

  python tools/train/train.py --stage all --out /tmp/run --images 100000 --vae-seconds 150 --dit-seconds 300

Runs are bounded by --*-seconds as well as --*-steps (whichever comes first); the learning rate schedule follows
the progress max(step/steps, elapsed/seconds). Data and initialisation are fixed by --seed.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from multiprocessing import Pool
from multiprocessing.shared_memory import SharedMemory

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import configs as C  # noqa: E402
import dataset  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TOKENIZER = os.path.join(HERE, "..", "..", "models", "sana-shapes", "tokenizer")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------------------------- data pool


def _render_range(args):
    shm_name, count, res, seed, lo, hi = args
    shm = SharedMemory(name=shm_name)
    arr = np.ndarray((count, res, res, 3), dtype=np.uint8, buffer=shm.buf)
    caps = []
    for i in range(lo, hi):
        img, cap = dataset.example(seed, i, res)
        arr[i] = np.asarray(img)
        caps.append(cap)
    del arr
    shm.close()
    return lo, caps


def make_pool(seed: int, count: int, res: int, workers: int):
    """Renders examples 0..count-1 of the dataset with ``seed``: (uint8 [count, res, res, 3], captions)."""
    t0 = time.time()
    shm = SharedMemory(create=True, size=count * res * res * 3)
    try:
        chunk = 256
        jobs = [(shm.name, count, res, seed, lo, min(lo + chunk, count)) for lo in range(0, count, chunk)]
        captions: list[str] = [""] * count
        if workers > 1:
            with Pool(workers) as pool:
                for lo, caps in pool.imap_unordered(_render_range, jobs):
                    captions[lo:lo + len(caps)] = caps
        else:
            for job in jobs:
                lo, caps = _render_range(job)
                captions[lo:lo + len(caps)] = caps
        images = torch.from_numpy(np.ndarray((count, res, res, 3), dtype=np.uint8, buffer=shm.buf).copy())
    finally:
        shm.close()
        shm.unlink()
    log(f"rendered {count} pictures at {res} px in {time.time() - t0:.1f} s")
    return images, captions


def to_pixels(batch_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1]."""
    return batch_uint8.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


# ----------------------------------------------------------------------------------------------- helpers


class EMA:
    def __init__(self, module: torch.nn.Module):
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self, step: int, max_decay: float) -> None:
        decay = min(max_decay, (1 + step) / (10 + step))
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1 - decay)

    @torch.no_grad()
    def copy_to(self, module: torch.nn.Module) -> None:
        params = [p for p in module.parameters() if p.requires_grad]
        for p, s in zip(params, self.shadow):
            p.copy_(s)


class Progress:
    def __init__(self, steps: int, seconds: float, warmup: int):
        self.steps, self.seconds, self.warmup = steps, seconds, warmup
        self.t0 = time.time()

    def fraction(self, step: int) -> float:
        return max(step / self.steps, (time.time() - self.t0) / self.seconds)

    def lr_scale(self, step: int) -> float:
        """Linear warm-up, constant, then linear decay to 10 % over the last 30 % of the run."""
        w = min(1.0, (step + 1) / self.warmup)
        f = self.fraction(step)
        return w * (1.0 if f < 0.7 else max(0.1, 1.0 - 0.9 * (f - 0.7) / 0.3))


class CSVLog:
    def __init__(self, path: str, fields: list[str]):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.f = open(path, "a", newline="")
        self.w = csv.writer(self.f)
        if self.f.tell() == 0:
            self.w.writerow(fields)

    def row(self, *values) -> None:
        self.w.writerow(values)
        self.f.flush()


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr


def save_fp16(module, path: str) -> None:
    import copy

    m = copy.deepcopy(module).to("cpu", torch.float16)
    m.save_pretrained(path, safe_serialization=True)
    log(f"saved {path}")


# ----------------------------------------------------------------------------------------------- stages


def build_vae(init: str | None, device):
    from diffusers import AutoencoderDC

    if init:
        vae = AutoencoderDC.from_pretrained(os.path.join(init, "vae"), torch_dtype=torch.float32)
        log(f"VAE resumed from {init}")
    else:
        vae = AutoencoderDC(**C.vae_config())
    return vae.to(device)


def vae_loss(vae, x: torch.Tensor, decoder_only_latents: torch.Tensor | None = None):
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=x.is_cuda):
        z = vae.encode(x).latent if decoder_only_latents is None else decoder_only_latents
        rec = vae.decode(z).sample
    rec = rec.float()
    l1 = (rec - x).abs().mean()
    l2 = F.mse_loss(rec, x)
    return l1 + l2, l1.item(), l2.item()


def train_vae(args, images: torch.Tensor, device) -> "torch.nn.Module":
    vae = build_vae(args.init, device)
    vae.train()
    ema = EMA(vae)
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, betas=(0.9, 0.99), weight_decay=0.0)
    prog = Progress(args.vae_steps, args.vae_seconds, warmup=200)
    logf = CSVLog(os.path.join(args.out, "logs", "vae.csv"), ["step", "seconds", "loss", "l1", "l2", "lr"])
    gen = torch.Generator(device="cpu").manual_seed(args.seed + 1)
    step, acc = 0, []
    n = images.shape[0]
    while prog.fraction(step) < 1.0:
        idx = torch.randint(0, n, (args.vae_batch,), generator=gen)
        x = to_pixels(images[idx].to(device, non_blocking=True))
        flip = torch.rand(x.shape[0], generator=gen) < 0.5
        x[flip.to(device)] = x[flip.to(device)].flip(-1)
        lr = args.vae_lr * prog.lr_scale(step)
        set_lr(opt, lr)
        loss, l1, l2 = vae_loss(vae, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        ema.update(step, 0.999)
        acc.append((loss.item(), l1, l2))
        step += 1
        if step % 50 == 0:
            a = np.mean(acc, axis=0)
            acc = []
            logf.row(step, round(time.time() - prog.t0, 1), *[round(float(v), 5) for v in a], lr)
            if step % 250 == 0:
                log(f"vae step {step} loss {a[0]:.4f} (l1 {a[1]:.4f} l2 {a[2]:.5f}) lr {lr:.2e}")
    ema.copy_to(vae)
    vae.eval()
    log(f"vae done: {step} steps in {time.time() - prog.t0:.0f} s")
    return vae


@torch.no_grad()
def encode_latents(vae, images: torch.Tensor, device, batch: int = 512) -> torch.Tensor:
    out = []
    for lo in range(0, images.shape[0], batch):
        x = to_pixels(images[lo:lo + batch].to(device))
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=x.is_cuda):
            out.append(vae.encode(x).latent.float())
    return torch.cat(out)


@torch.no_grad()
def set_scaling_factor(vae, latents: torch.Tensor) -> float:
    sf = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=sf)
    log(f"latent std {latents.std().item():.4f}, mean {latents.mean().item():.4f} -> scaling_factor {sf:.5f}")
    return sf


def train_dit(args, images: torch.Tensor, captions: list[str], vae, device) -> None:
    from diffusers import SanaTransformer2DModel
    from transformers import AutoTokenizer, Gemma2Config, Gemma2Model

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    L = C.TRAIN_MAX_SEQUENCE_LENGTH
    chi = C.complex_human_instruction()
    ids, masks = C.tokenize_prompts(tokenizer, captions, L, chi)
    neg_ids, neg_mask = C.tokenize_prompts(tokenizer, [""], L, None)
    longest = int(masks.sum(1).max()) - (len(tokenizer.encode("\n".join(chi))) - 1)
    log(f"tokenized {len(captions)} captions: sequence {ids.shape[1]}, longest caption {longest} tokens (limit {L - 1})")
    ids, masks = ids.to(device), masks.to(device)
    neg_ids, neg_mask = neg_ids.to(device), neg_mask.to(device)

    resumed = bool(args.init and os.path.isdir(os.path.join(args.init, "transformer")))
    if resumed:
        te = Gemma2Model.from_pretrained(os.path.join(args.init, "text_encoder"), torch_dtype=torch.float32,
                                         attn_implementation="eager")
        dit = SanaTransformer2DModel.from_pretrained(os.path.join(args.init, "transformer"), torch_dtype=torch.float32)
        log(f"text encoder + transformer resumed from {args.init}")
    else:
        te_cfg = Gemma2Config(**C.text_encoder_config(len(tokenizer)))
        te_cfg._attn_implementation = "eager"
        te = Gemma2Model(te_cfg)
        dit = SanaTransformer2DModel(**C.transformer_config(te_cfg.hidden_size))
        # Start from a zero velocity (as the original SANA initialises its final layer).
        torch.nn.init.zeros_(dit.proj_out.weight)
        torch.nn.init.zeros_(dit.proj_out.bias)
    te, dit = te.to(device).train(), dit.to(device).train()

    vae.requires_grad_(False)
    raw = encode_latents(vae, images, device)
    if resumed:
        # The transformer learned latents at the saved scale: keep it (the encoder is frozen in this stage).
        sf = float(vae.config.scaling_factor)
        log(f"keeping scaling_factor {sf:.5f} from {args.init}")
    else:
        sf = set_scaling_factor(vae, raw[:4096])
    lat = raw * sf

    params = list(te.parameters()) + list(dit.parameters())
    opt = torch.optim.AdamW(params, lr=args.dit_lr, betas=(0.9, 0.99), weight_decay=0.01)
    ema_te, ema_dit = EMA(te), EMA(dit)
    prog = Progress(args.dit_steps, args.dit_seconds, warmup=300)
    logf = CSVLog(os.path.join(args.out, "logs", "dit.csv"), ["step", "seconds", "loss", "lr"])

    dec_opt = dec_ema = dec_log = None
    if args.decoder_every > 0:
        vae.decoder.requires_grad_(True)
        vae.decoder.train()
        dec_opt = torch.optim.AdamW(vae.decoder.parameters(), lr=args.decoder_lr, betas=(0.9, 0.99))
        dec_ema = EMA(vae.decoder)
        dec_log = CSVLog(os.path.join(args.out, "logs", "decoder.csv"), ["step", "seconds", "loss", "l1", "l2"])

    gen = torch.Generator(device="cpu").manual_seed(args.seed + 2)
    n = lat.shape[0]
    step, acc, dec_acc, dec_step = 0, [], [], 0
    while prog.fraction(step) < 1.0:
        idx = torch.randint(0, n, (args.dit_batch,), generator=gen).to(device)
        x0 = lat[idx]
        b = x0.shape[0]
        drop = (torch.rand(b, device=device) < args.cfg_dropout)
        lr = args.dit_lr * prog.lr_scale(step)
        set_lr(opt, lr)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=x0.is_cuda):
            h = te(ids[idx], attention_mask=masks[idx])[0]
            h, m = C.select_positive(h, masks[idx], L)
            hn = te(neg_ids, attention_mask=neg_mask)[0]
            enc = torch.where(drop[:, None, None], hn.expand(b, -1, -1).to(h.dtype), h)
            m = torch.where(drop[:, None], neg_mask.expand(b, -1), m)
            u = torch.sigmoid(torch.randn(b, device=device))  # logit-normal(0, 1)
            sigma = C.FLOW_SHIFT * u / (1 + (C.FLOW_SHIFT - 1) * u)
            noise = torch.randn_like(x0)
            s = sigma[:, None, None, None]
            xt = (1 - s) * x0 + s * noise
            pred = dit(xt, encoder_hidden_states=enc, encoder_attention_mask=m, timestep=sigma * 1000).sample
        loss = F.mse_loss(pred.float(), noise - x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema_te.update(step, args.ema)
        ema_dit.update(step, args.ema)
        acc.append(loss.item())

        if dec_opt is not None and step % args.decoder_every == 0:
            didx = torch.randint(0, n, (args.vae_batch,), generator=gen).to(device)
            set_lr(dec_opt, args.decoder_lr * prog.lr_scale(step))
            dl, l1, l2 = vae_loss(vae, to_pixels(images[didx.cpu()].to(device)), decoder_only_latents=raw[didx])
            dec_opt.zero_grad(set_to_none=True)
            dl.backward()
            torch.nn.utils.clip_grad_norm_(vae.decoder.parameters(), 1.0)
            dec_opt.step()
            dec_ema.update(dec_step, 0.999)
            dec_step += 1
            dec_acc.append((dl.item(), l1, l2))

        step += 1
        if step % 50 == 0:
            a = float(np.mean(acc))
            acc = []
            logf.row(step, round(time.time() - prog.t0, 1), round(a, 5), lr)
            if dec_acc:
                d = np.mean(dec_acc, axis=0)
                dec_acc = []
                dec_log.row(dec_step, round(time.time() - prog.t0, 1), *[round(float(v), 5) for v in d])
            if step % 250 == 0:
                log(f"dit step {step} loss {a:.4f} lr {lr:.2e}" + (f" | decoder step {dec_step}" if dec_opt else ""))
    log(f"dit done: {step} steps in {time.time() - prog.t0:.0f} s")
    ema_te.copy_to(te)
    ema_dit.copy_to(dit)
    if dec_ema is not None:
        dec_ema.copy_to(vae.decoder)
    vae.eval()
    save_fp16(te, os.path.join(args.out, "text_encoder"))
    save_fp16(dit, os.path.join(args.out, "transformer"))
    save_fp16(vae, os.path.join(args.out, "vae"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", choices=["vae", "dit", "all"], required=True)
    ap.add_argument("--out", required=True, help="folder for vae/, transformer/, text_encoder/, logs/")
    ap.add_argument("--init", help="model folder to resume from (vae/, transformer/, text_encoder/)")
    ap.add_argument("--tokenizer", default=DEFAULT_TOKENIZER)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", type=int, default=100000, help="size of the rendered data pool")
    ap.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    ap.add_argument("--vae-steps", type=int, default=20000)
    ap.add_argument("--vae-seconds", type=float, default=150)
    ap.add_argument("--vae-batch", type=int, default=32)
    ap.add_argument("--vae-lr", type=float, default=5e-4)
    ap.add_argument("--dit-steps", type=int, default=50000)
    ap.add_argument("--dit-seconds", type=float, default=300)
    ap.add_argument("--dit-batch", type=int, default=256)
    ap.add_argument("--dit-lr", type=float, default=3e-4)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--cfg-dropout", type=float, default=0.1)
    ap.add_argument("--decoder-every", type=int, default=0, help="also fine-tune the VAE decoder every N dit steps")
    ap.add_argument("--decoder-lr", type=float, default=2e-4)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    os.makedirs(args.out, exist_ok=True)
    log(f"device {device}, torch {torch.__version__}, args {vars(args)}")

    images, captions = make_pool(args.seed, args.images, C.RESOLUTION, args.workers)
    if args.stage in ("vae", "all"):
        vae = train_vae(args, images, device)
        if args.stage == "vae":
            raw = encode_latents(vae, images[:4096], device)
            set_scaling_factor(vae, raw)
            save_fp16(vae, os.path.join(args.out, "vae"))
            return
    else:
        vae = build_vae(args.init, device).eval()
    train_dit(args, images, captions, vae, device)
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump({"args": vars(args), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}, f, indent=1)


if __name__ == "__main__":
    main()
