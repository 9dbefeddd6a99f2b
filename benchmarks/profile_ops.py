"""Profile one forward+backward+double-backward chain per backend: host time vs device kernel time.

Run: python benchmarks/profile_ops.py [cpu|cuda]
Shows where a backend's time goes when a chain is slower than its kernels suggest.
"""
from __future__ import annotations

import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

from gantools.ops import bias_leaky_relu, penalty_from_grad


def chain(device: str) -> None:
    x = torch.randn(64, 256, 32, 32, device=device, requires_grad=True)
    b = torch.randn(256, device=device, requires_grad=True)
    gy = torch.randn_like(x, requires_grad=True)
    y = bias_leaky_relu(x, b)
    gx, _ = torch.autograd.grad(y, (x, b), gy, create_graph=True)
    torch.autograd.grad(gx, gy, torch.ones_like(gx))
    g = (torch.randn(64, 3, 64, 64, device=device) * 0.01).requires_grad_()
    torch.autograd.grad(penalty_from_grad(g), g)


def main() -> None:
    device = sys.argv[1] if len(sys.argv) > 1 else ("cuda" if torch.cuda.is_available() else "cpu")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
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
