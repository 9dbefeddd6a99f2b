"""Whole-training images/s: `gantools run` (DCGAN / WGAN-GP) against a plain-PyTorch WGAN-GP training loop.

Run: python benchmarks/bench_training.py --device cuda --batch 64 [--steps 50] [--warmup 10] [--size 64]
         [--width 64] [--precision fp32|bf16] [--cuda-graphs] [--variants gantools,plain] [--json OUT]

Both sides train the same DCGAN at SIZE x SIZE x 3 (generator: transposed convs + BatchNorm + ReLU,
tanh; critic: strided 4x4 convs, layer norm from the second one on, leaky ReLU 0.2) with WGAN-GP
(lambda 10, n_critic 5, Adam lr 1e-4 betas (0, 0.9), z 128 normal) on the same synthetic image
set (an npz of random uint8 images written here), same batch size, same number of iterations,
each timed after its own warm-up iterations.

- gantools: `gantools.train` (what `gantools run` calls) with arch dcgan, loss wgan-gp and its
  defaults (channels-last, the fused ops, real and fake in one critic call); ``--cuda-graphs``
  passes cuda_graphs=True. Its rate is metrics.jsonl's images/s over the log rows after the first
  (one row per WARMUP iterations; the trainer waits for the device at each log row).
- plain: a self-contained loop written the way most WGAN-GP code is: separate critic calls on real
  and fake, the penalty through autograd.grad + .norm(), nn.LeakyReLU, cudnn.benchmark on,
  batches gathered from the in-memory set and copied to the device; timed with
  torch.cuda.synchronize() around the timed iterations.

Images/s counts critic images (batch x n_critic per iteration), as metrics.jsonl does. A variant
that gantools refuses (e.g. --cuda-graphs on a CPU) is recorded as "refused: <reason>".
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

N_CRITIC, Z_DIM, LAMBDA = 5, 128, 10.0


def write_dataset(path: Path, size: int, n: int, seed: int = 0) -> Path:
    """An npz of n random uint8 RGB images (n, size, size, 3) named `images`."""
    rng = np.random.default_rng(seed)
    np.savez(path, images=rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8))
    return path


def _levels(size: int) -> int:
    """2x steps from the 4x4 base grid to SIZE (the dcgan plugin's grid for powers of two)."""
    levels = int(round(math.log2(max(size, 1) / 4)))
    if size < 8 or 4 * 2 ** levels != size:
        raise SystemExit(f"bench_training: --size must be 4 times a power of two, at least 8 (got {size})")
    return levels


def plain_generator(size: int, width: int) -> nn.Sequential:
    """z (N, 128) -> (N, 3, size, size): the DCGAN generator of the dcgan plugin, in plain modules."""
    levels = _levels(size)
    ch = width * 2 ** (levels - 1)
    layers = [nn.Unflatten(1, (Z_DIM, 1, 1)), nn.ConvTranspose2d(Z_DIM, ch, 4, 1, 0, bias=False),
              nn.BatchNorm2d(ch), nn.ReLU(True)]
    for _ in range(levels - 1):
        layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
        ch //= 2
    return nn.Sequential(*layers, nn.ConvTranspose2d(ch, 3, 4, 2, 1), nn.Tanh())


def plain_critic(size: int, width: int) -> nn.Sequential:
    """(N, 3, size, size) -> (N, 1): conv with bias + LeakyReLU, then conv + layer norm + LeakyReLU."""
    layers = [nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
    ch = width
    for _ in range(_levels(size) - 1):
        # GroupNorm with one group is layer norm over (C, H, W) with a per-channel scale and shift.
        layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.GroupNorm(1, ch * 2), nn.LeakyReLU(0.2, inplace=True)]
        ch *= 2
    return nn.Sequential(*layers, nn.Conv2d(ch, 1, 4, 1, 0), nn.Flatten())


def _dcgan_init(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def plain_iteration(nets, opts, data: torch.Tensor, batch: int, device: torch.device, autocast) -> None:
    """One WGAN-GP iteration: N_CRITIC critic updates, then one generator update."""
    G, D = nets
    opt_g, opt_d = opts
    for _ in range(N_CRITIC):
        real = data[torch.randint(len(data), (batch,))].to(device, non_blocking=True)
        z = torch.randn(batch, Z_DIM, device=device)
        with autocast():
            with torch.no_grad():
                fake = G(z)
            # Critic: minimise D(G(z)) - D(x) + lambda * (||grad D(x_hat)|| - 1)^2.
            d_real = D(real).mean()
            d_fake = D(fake).mean()
            alpha = torch.rand(batch, 1, 1, 1, device=device)
            x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
            out = D(x_hat)
            grad = torch.autograd.grad(out, x_hat, torch.ones_like(out), create_graph=True)[0]
            gp = LAMBDA * ((grad.view(batch, -1).norm(2, dim=1) - 1) ** 2).mean()
            loss_d = d_fake - d_real + gp
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
    for p in D.parameters():
        p.requires_grad_(False)
    # Generator: minimise -D(G(z)).
    with autocast():
        loss_g = -D(G(torch.randn(batch, Z_DIM, device=device))).mean()
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    for p in D.parameters():
        p.requires_grad_(True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_plain(args: argparse.Namespace, npz: Path) -> dict:
    """images/s of the plain loop over args.steps iterations after args.warmup."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    images = np.load(npz)["images"]  # (N, H, W, 3) uint8
    data = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous()
    nets = (plain_generator(args.size, args.width).to(device), plain_critic(args.size, args.width).to(device))
    for net in nets:
        net.apply(_dcgan_init)
    opts = tuple(torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.0, 0.9)) for net in nets)
    dtype = torch.bfloat16 if args.precision == "bf16" else None
    autocast = ((lambda: torch.autocast(device.type, dtype=dtype)) if dtype is not None
                else contextlib.nullcontext)
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True  # as most training scripts set it
    try:
        for _ in range(args.warmup):
            plain_iteration(nets, opts, data, args.batch, device, autocast)
        _sync(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            plain_iteration(nets, opts, data, args.batch, device, autocast)
        _sync(device)
        seconds = time.perf_counter() - start
    finally:
        torch.backends.cudnn.benchmark = previous
    return {"status": "ok", "images_per_s": args.steps * args.batch * N_CRITIC / seconds, "timed_s": seconds}


def _rate_after_warmup(run_dir: Path, batch: int, warmup: int) -> tuple[float, float, int]:
    """(critic images/s, seconds, n_critic) over metrics.jsonl's rows after the first (warm-up) one."""
    n_critic = json.loads((run_dir / "config.json").read_text())["config"]["n_critic"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "images_per_s" in r]
    images = seconds = 0.0
    for before, row in zip(rows, rows[1:]):
        count = (row["step"] - before["step"]) * batch * n_critic
        images += count
        seconds += count / row["images_per_s"]
    if not seconds:
        raise SystemExit(f"bench_training: no timed log rows in {run_dir / 'metrics.jsonl'} (raise --steps)")
    return images / seconds, seconds, n_critic


def run_gantools(args: argparse.Namespace, npz: Path, out: Path, graphs: bool) -> dict:
    """images/s of gantools.train on the same data and networks; a refusal is a result."""
    import gantools
    from gantools.errors import UserError

    total = args.warmup + args.steps
    settings = dict(arch="dcgan", loss="wgan-gp", dataset=f"npz:{npz}", image_size=args.size, channels=3,
                    arch_opts={"width": args.width}, batch_size=args.batch, steps=total, log_every=args.warmup,
                    sample_every=10 * total, checkpoint_every=10 * total, device=args.device,
                    precision=args.precision, seed=0)
    if graphs:
        settings["cuda_graphs"] = True
    start = time.perf_counter()
    try:
        gantools.train(out=out, **settings)
    except UserError as exc:
        return {"status": f"refused: {str(exc).splitlines()[0]}"}
    wall = time.perf_counter() - start
    rate, seconds, n_critic = _rate_after_warmup(out, args.batch, args.warmup)
    if n_critic != N_CRITIC:
        raise SystemExit(f"bench_training: gantools trained with n_critic {n_critic}, the plain loop uses {N_CRITIC}")
    return {"status": "ok", "images_per_s": rate, "timed_s": seconds, "wall_s": wall}


def _environment(device: str) -> dict:
    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        env["device_name"] = torch.cuda.get_device_name(torch.device(device))
    return env


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50, help="timed iterations (each: 5 critic + 1 generator update)")
    parser.add_argument("--warmup", type=int, default=10, help="iterations before timing (also gantools' log interval)")
    parser.add_argument("--size", type=int, default=64, help="image side (4 times a power of two)")
    parser.add_argument("--width", type=int, default=64, help="DCGAN width (64 in the paper)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--cuda-graphs", action="store_true", help="gantools with cuda_graphs=True")
    parser.add_argument("--variants", default="gantools,plain", help="comma-separated: gantools, plain")
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not args.variants or set(args.variants) - {"gantools", "plain"}:
        parser.error("--variants takes gantools and/or plain")
    if min(args.batch, args.steps, args.warmup) < 1:
        parser.error("--batch, --steps and --warmup must be at least 1")
    _levels(args.size)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        npz = write_dataset(Path(tmp) / "images.npz", args.size, n=max(4 * args.batch, 64))
        for variant in args.variants:
            name = "gantools --cuda-graphs" if variant == "gantools" and args.cuda_graphs else variant
            row = (run_gantools(args, npz, Path(tmp) / "run", args.cuda_graphs) if variant == "gantools"
                   else run_plain(args, npz))
            results.append({"variant": name, **row})
            rate = f"{row['images_per_s']:.1f} images/s" if row["status"] == "ok" else row["status"]
            print(f"{name}: batch {args.batch}, {args.precision}: {rate}", flush=True)
    report = {"benchmark": "training", "settings": {k: v for k, v in vars(args).items() if k != "json"},
              "n_critic": N_CRITIC, "environment": _environment(args.device), "results": results}
    rates = {r["variant"].split()[0]: r["images_per_s"] for r in results if r["status"] == "ok"}
    if "gantools" in rates and "plain" in rates:
        report["speedup"] = rates["gantools"] / rates["plain"]
        print(f"gantools / plain: {report['speedup']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
