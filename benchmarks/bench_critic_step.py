"""Whole WGAN-GP critic step, DCGAN critic 64x64, batch 64: gantools vs a plain-PyTorch baseline.

Run: pytest benchmarks/bench_critic_step.py --benchmark-group-by=group  (-k cpu / -k cuda)
The baseline is written the way most WGAN-GP code is: conv with bias + nn.LeakyReLU,
separate critic calls on real and fake, the penalty through autograd.grad and .norm().
gantools: conv without bias + FusedLeakyReLU, and the critic objective of the wgan-gp loss
plugin itself (real and fake in one critic call, as there is no batch norm under a gradient
penalty; the fused penalty), in the trainer's default channels-last layout for images
("gantools"), and in the default contiguous layout ("gantools-nchw").
"""
from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from gantools.nn import FusedLeakyReLU
from gantools_plugins.losses.wgan_gp import WGANGP

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
BATCH, SIZE, WIDTH = 64, 64, 64
PRECISIONS = {"cpu": ["fp32"], "cuda": ["fp32", "bf16"]}


def critic(fused: bool, width: int = WIDTH) -> nn.Sequential:
    """DCGAN-64 critic: 4x4 stride-2 convs, widths w, 2w, 4w, 8w, LeakyReLU 0.2, no norm, 4x4 head."""
    layers: list[nn.Module] = []
    channels = 3
    for i in range(4):
        out = width * 2 ** i
        layers.append(nn.Conv2d(channels, out, 4, 2, 1, bias=not fused))
        layers.append(FusedLeakyReLU(out, 0.2) if fused else nn.LeakyReLU(0.2, inplace=True))
        channels = out
    layers.append(nn.Conv2d(channels, 1, 4, 1, 0))
    return nn.Sequential(*layers, nn.Flatten())


def baseline_step(net, opt, real, fake):
    # Critic objective: max D(x) - D(G(z)) - lambda * (||grad D(x_hat)|| - 1)^2.
    d_real = net(real).mean()
    d_fake = net(fake).mean()
    alpha = torch.rand(real.size(0), 1, 1, 1, device=real.device)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out = net(x_hat)
    grads = torch.autograd.grad(out, x_hat, grad_outputs=torch.ones_like(out), create_graph=True)[0]
    gp = 10.0 * ((grads.view(grads.size(0), -1).norm(2, dim=1) - 1) ** 2).mean()
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


CASES = [(device, precision, variant) for device in DEVICES for precision in PRECISIONS[device]
         for variant in ("gantools", "gantools-nchw", "baseline")]


@pytest.mark.parametrize("device,precision,variant", CASES, ids=str)
def test_critic_step(benchmark, use_backend, device, precision, variant):
    use_backend("native")
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    fused = variant.startswith("gantools")
    layout = torch.channels_last if variant == "gantools" else torch.contiguous_format
    net = critic(fused).to(device, memory_format=layout)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.0, 0.9))
    real = torch.randn(BATCH, 3, SIZE, SIZE, device=device).contiguous(memory_format=layout)
    fake = torch.randn(BATCH, 3, SIZE, SIZE, device=device).contiguous(memory_format=layout)
    step = gantools_step if fused else baseline_step
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())

    def run():
        with autocast:
            step(net, opt, real, fake)
        if device == "cuda":
            torch.cuda.synchronize()

    benchmark.group = f"critic step {device} {precision} (DCGAN-64, batch {BATCH}, width {WIDTH})"
    if device == "cpu":
        benchmark.pedantic(run, rounds=12, warmup_rounds=2)
    else:
        benchmark.pedantic(run, rounds=50, warmup_rounds=10)
