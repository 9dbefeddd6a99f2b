"""Whole WGAN-GP critic step, DCGAN critic 64x64, batch 64: gantools vs a plain-PyTorch baseline.

Run: python benchmarks/bench_critic_step.py [--device cpu] [--rounds 12] [--norm none,layer]
  (every variant of each critic timed in interleaved rounds in one process, so a change in the
  machine's load hits all of them alike: the figures in RESULTS.md), or
  pytest benchmarks/bench_critic_step.py --benchmark-group-by=group  (-k cpu / -k cuda; one case
  after another, through pytest-benchmark; the layer-norm critic on the CPU only, see CASES).

Two critics: "none", without normalisation, and "layer", with layer norm (GroupNorm(1, C)) before
each activation from the second conv on: what the dcgan plugin builds under a gradient penalty,
by default. The baseline is written the way most WGAN-GP code is: conv with bias [+ nn.GroupNorm]
+ nn.LeakyReLU, separate critic calls on real and fake, the penalty through autograd.grad and
.norm(); in the default contiguous layout ("baseline") and channels-last ("baseline-nhwc").
gantools: the dcgan plugin's critic (conv without bias + FusedLeakyReLU, or
FusedLayerNormLeakyReLU) and the critic objective of the wgan-gp loss plugin itself (real and
fake in one critic call, as there is no batch norm under a gradient penalty; the fused penalty),
in the trainer's default channels-last layout for images ("gantools") and contiguous
("gantools-nchw").
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import pytest
import torch
from torch import nn

from gantools_plugins.architectures.dcgan import DCGAN
from gantools_plugins.losses.wgan_gp import WGANGP

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
BATCH, SIZE, WIDTH = 64, 64, 64
PRECISIONS = {"cpu": ["fp32"], "cuda": ["fp32", "bf16"]}
NORMS = ("none", "layer")
VARIANTS = ("gantools", "gantools-nchw", "baseline", "baseline-nhwc")


def baseline_critic(norm: str, width: int = WIDTH) -> nn.Sequential:
    """DCGAN-64 critic in plain PyTorch: 4x4 stride-2 convs with bias, widths w, 2w, 4w, 8w,
    [nn.GroupNorm(1, C) from the second on,] LeakyReLU 0.2, 4x4 head."""
    layers: list[nn.Module] = []
    channels = 3
    for i in range(4):
        out = width * 2 ** i
        layers.append(nn.Conv2d(channels, out, 4, 2, 1))
        if norm == "layer" and i > 0:
            layers.append(nn.GroupNorm(1, out))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        channels = out
    layers.append(nn.Conv2d(channels, 1, 4, 1, 0))
    return nn.Sequential(*layers, nn.Flatten())


def gantools_critic(norm: str, width: int = WIDTH) -> nn.Module:
    """The dcgan plugin's critic as the trainer builds it for the wgan-gp loss (per-sample scores)."""
    return DCGAN(width=width, norm="auto" if norm == "layer" else "none").discriminator(
        (3, SIZE, SIZE), per_sample=True)


def baseline_step(net, opt, real, fake):
    # Critic objective: max D(x) - D(G(z)) - lambda * (||grad D(x_hat)|| - 1)^2.
    d_real = net(real).mean()
    d_fake = net(fake).mean()
    alpha = torch.rand(real.size(0), 1, 1, 1, device=real.device)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out = net(x_hat)
    grads = torch.autograd.grad(out, x_hat, grad_outputs=torch.ones_like(out), create_graph=True)[0]
    gp = 10.0 * ((grads.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
    loss = d_fake - d_real + gp
    opt.zero_grad()
    loss.backward()
    opt.step()


def gantools_step(net, opt, real, fake, loss_plugin=WGANGP(weight=10.0)):
    # The same objective, as the trainer computes it.
    loss, _ = loss_plugin.discriminator_loss(net, real, fake)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def make_step(device: str, precision: str, norm: str, variant: str):
    """One critic step of ``variant`` as a callable that returns once the device is done."""
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    fused = variant.startswith("gantools")
    layout = torch.channels_last if variant in ("gantools", "baseline-nhwc") else torch.contiguous_format
    net = (gantools_critic(norm) if fused else baseline_critic(norm)).to(device, memory_format=layout)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.0, 0.9))
    real, fake = (torch.randn(BATCH, 3, SIZE, SIZE, device=device).contiguous(memory_format=layout)
                  for _ in range(2))
    step = gantools_step if fused else baseline_step

    def run():
        with torch.autocast("cuda", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext():
            step(net, opt, real, fake)
        if device == "cuda":
            torch.cuda.synchronize()
    return run


# The layer-norm critic's pytest cases are CPU-only: benchmarks/gpu_suite_summary.py keys the CUDA
# cases by device, precision and variant (on a GPU: python benchmarks/bench_critic_step.py --device cuda).
CASES = [(device, precision, norm, variant) for device in DEVICES for precision in PRECISIONS[device]
         for norm in NORMS for variant in VARIANTS if device == "cpu" or norm == "none"]


@pytest.mark.parametrize("device,precision,norm,variant", CASES, ids=str)
def test_critic_step(benchmark, use_backend, device, precision, norm, variant):
    use_backend("native")
    run = make_step(device, precision, norm, variant)
    benchmark.group = f"critic step {device} {precision} norm={norm} (DCGAN-64, batch {BATCH}, width {WIDTH})"
    if device == "cpu":
        benchmark.pedantic(run, rounds=12, warmup_rounds=2)
    else:
        benchmark.pedantic(run, rounds=50, warmup_rounds=10)


def interleaved(device: str, precision: str, norms: list[str], rounds: int, warmup: int = 2) -> dict:
    """Seconds per step of every (norm, variant), one step of each in turn per round."""
    steps = {(norm, variant): make_step(device, precision, norm, variant) for norm in norms for variant in VARIANTS}
    times: dict = {key: [] for key in steps}
    for round_ in range(warmup + rounds):
        for key, step in steps.items():
            start = time.perf_counter()
            step()
            if round_ >= warmup:
                times[key].append(time.perf_counter() - start)
    return times


def report(times: dict) -> None:
    """Markdown table: median, min and max per variant, and the baselines' medians over its median."""
    print("| critic | variant | median s | min s | max s | baseline / it | baseline-nhwc / it |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (norm, variant), values in times.items():
        median = statistics.median(values)
        ratios = [statistics.median(times[norm, base]) / median for base in ("baseline", "baseline-nhwc")]
        print(f"| {norm} | {variant} | {median:.3f} | {min(values):.3f} | {max(values):.3f} | "
              f"{ratios[0]:.2f}x | {ratios[1]:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=DEVICES)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--norm", default="none,layer", help="critics to time, comma-separated: none, layer")
    args = parser.parse_args()
    os.environ["GANTOOLS_OPS"] = "native"
    print(f"{args.device} {args.precision}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.rounds} interleaved rounds after 2 warm-up rounds")
    report(interleaved(args.device, args.precision, args.norm.split(","), args.rounds))


if __name__ == "__main__":
    main()
