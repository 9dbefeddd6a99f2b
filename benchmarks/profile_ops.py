"""Profile one forward+backward+double-backward chain per backend: host time vs device kernel time.

Run: python benchmarks/profile_ops.py [cpu|cuda] [ops|critic]
ops (default): each fused op's chain, native and reference: where a backend's time goes when a
chain is slower than its kernels suggest. critic: one WGAN-GP step of the layer-norm DCGAN critic
(bench_critic_step.py), the plain baseline and gantools, with the share of the convolutions.
"""
from __future__ import annotations

import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

from gantools.ops import bias_leaky_relu, layer_norm_leaky_relu, penalty_from_grad


def chain(device: str) -> None:
    x = torch.randn(64, 256, 32, 32, device=device, requires_grad=True)
    b = torch.randn(256, device=device, requires_grad=True)
    gy = torch.randn_like(x, requires_grad=True)
    y = bias_leaky_relu(x, b)
    gx, _ = torch.autograd.grad(y, (x, b), gy, create_graph=True)
    torch.autograd.grad(gx, gy, torch.ones_like(gx))
    w = torch.ones_like(b, requires_grad=True)
    (gx,) = torch.autograd.grad(layer_norm_leaky_relu(x, w, b), x, gy, create_graph=True)
    torch.autograd.grad(gx, (gy, x, w), torch.ones_like(gx))
    g = (torch.randn(64, 3, 64, 64, device=device) * 0.01).requires_grad_()
    torch.autograd.grad(penalty_from_grad(g), g)


CONVOLUTIONS = ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::cudnn_convolution",
                "aten::cudnn_convolution_transpose")


def critic(device: str, activities: list) -> None:
    """Top ops of three critic steps per variant, and how much of the self time is convolutions."""
    from bench_critic_step import make_step  # beside this file

    os.environ["GANTOOLS_OPS"] = "native"
    for variant in ("baseline", "gantools-nchw", "gantools"):
        step = make_step(device, "fp32", "layer", variant)
        for _ in range(2):
            step()
        with profile(activities=activities) as prof:
            for _ in range(3):
                step()
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        conv = sum(e.self_cpu_time_total for e in events if e.key in CONVOLUTIONS)
        print(f"== {variant} on {device}, layer-norm critic, 3 steps: convolutions {conv / 1e3:.0f} ms of "
              f"{total / 1e3:.0f} ms host self time ({conv / total:.0%})")
        print(events.table(sort_by="self_cpu_time_total", row_limit=16, max_name_column_width=60))


def main() -> None:
    device = sys.argv[1] if len(sys.argv) > 1 else ("cuda" if torch.cuda.is_available() else "cpu")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    if len(sys.argv) > 2 and sys.argv[2] == "critic":
        critic(device, activities)
        return
    for backend in ("native", "reference"):
        os.environ["GANTOOLS_OPS"] = backend
        for _ in range(3):
            chain(device)
        with profile(activities=activities) as prof:
            for _ in range(10):
                chain(device)
            if device == "cuda":
                torch.cuda.synchronize()
        print(f"== {backend} on {device} (10 chains)")
        sort = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=sort, row_limit=14, max_name_column_width=60))


if __name__ == "__main__":
    main()
