"""Per-op benchmarks: native vs reference vs torch.compile(reference) (first order only), per stage.

Run: pytest benchmarks/bench_ops.py --benchmark-group-by=group  (add -k cpu or -k cuda)
Stages: forward; forward+backward; forward+backward+double-backward (the WGAN-GP chain,
whose incoming gradient itself requires grad). torch.compile cannot do the last stage.
"""
from __future__ import annotations

import pytest
import torch

from gantools.ops import bias_leaky_relu, layer_norm_leaky_relu, penalty_from_grad
from gantools.ops.bias_leaky_relu import _ref as leaky_ref
from gantools.ops.gradient_penalty import _penalty_ref
from gantools.ops.layer_norm_leaky_relu import _ref as layer_norm_ref

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def sync(device: str) -> None:
    """Wait for queued GPU work, so wall-clock timing covers the kernels."""
    if device == "cuda":
        torch.cuda.synchronize()


# (64, 128, 16, 16) float32 is the CPU acceptance shape; on a GPU 64 MB activations.
ACT_SHAPE = {"cpu": (64, 128, 16, 16), "cuda": (64, 256, 32, 32)}
# The critic's input gradient for a DCGAN-64 batch; on a GPU 64 MB.
GRAD_SHAPE = {"cpu": (64, 3, 64, 64), "cuda": (64, 64, 64, 64)}
CASES = [(device, stage, backend) for device in DEVICES
         for stage in ("forward", "backward", "double_backward")
         for backend in ("native", "reference", "compile") if not (backend == "compile" and stage == "double_backward")]


def _leaky_fn(backend):
    if backend == "compile":
        return torch.compile(lambda x, b: leaky_ref(x, b, 0.2, 1.0), dynamic=False)
    return lambda x, b: bias_leaky_relu(x, b, 0.2, 1.0)


def _layer_norm_fn(backend):
    if backend == "compile":
        return torch.compile(lambda x, w, b: layer_norm_ref(x, w, b, 0.2, 1.0, 1e-5), dynamic=False)
    return lambda x, w, b: layer_norm_leaky_relu(x, w, b, 0.2, 1.0)


def _penalty_fn(backend):
    if backend == "compile":
        return torch.compile(lambda g: _penalty_ref(g, 10.0, 1.0, False), dynamic=False)
    return lambda g: penalty_from_grad(g, 10.0, 1.0, False)


def _activation_step(fn, stage, device, params, second_order):
    """fn(x, *params) on an activation-sized x with (C,) params; the double backward differentiates
    the input gradient with respect to second_order(x, gy, params) (gy: the incoming gradient)."""
    x = torch.randn(ACT_SHAPE[device], device=device, requires_grad=stage != "forward")
    ps = [torch.randn(x.shape[1], device=device, requires_grad=stage != "forward") for _ in range(params)]
    gy = torch.randn_like(x, requires_grad=stage == "double_backward")
    v = torch.randn_like(x)

    def step():
        y = fn(x, *ps)
        if stage == "backward":
            torch.autograd.grad(y, (x, *ps), gy)
        elif stage == "double_backward":
            gx = torch.autograd.grad(y, (x, *ps), gy, create_graph=True)[0]
            torch.autograd.grad(gx, second_order(x, gy, ps), v)
        sync(device)
    return step


def _penalty_step(fn, stage, device):
    g = torch.randn(GRAD_SHAPE[device], device=device) * 0.01
    g.requires_grad_(stage != "forward")
    v = torch.randn_like(g)

    def step():
        p = fn(g)
        if stage == "backward":
            torch.autograd.grad(p, g)
        elif stage == "double_backward":
            (dg,) = torch.autograd.grad(p, g, create_graph=True)
            torch.autograd.grad(dg, g, v)
        sync(device)
    return step


@pytest.mark.parametrize("device,stage,backend", CASES, ids=lambda v: str(v))
def test_bias_leaky_relu(benchmark, use_backend, device, stage, backend):
    use_backend("native" if backend == "native" else "reference")
    benchmark.group = f"bias_leaky_relu {stage} {device} {ACT_SHAPE[device]}"
    # The leaky ReLU's derivative is piecewise constant: its input gradient depends on gy only.
    step = _activation_step(_leaky_fn(backend), stage, device, 1, lambda x, gy, ps: gy)
    step()  # compile / warm up outside the timing
    benchmark(step)


@pytest.mark.parametrize("device,stage,backend", CASES, ids=lambda v: str(v))
def test_layer_norm_leaky_relu(benchmark, use_backend, device, stage, backend):
    use_backend("native" if backend == "native" else "reference")
    benchmark.group = f"layer_norm_leaky_relu {stage} {device} {ACT_SHAPE[device]}"
    step = _activation_step(_layer_norm_fn(backend), stage, device, 2, lambda x, gy, ps: (gy, x, ps[0]))
    step()
    benchmark(step)


@pytest.mark.parametrize("device,stage,backend", CASES, ids=lambda v: str(v))
def test_gradient_penalty(benchmark, use_backend, device, stage, backend):
    use_backend("native" if backend == "native" else "reference")
    benchmark.group = f"gradient_penalty {stage} {device} {GRAD_SHAPE[device]}"
    step = _penalty_step(_penalty_fn(backend), stage, device)
    step()
    benchmark(step)
