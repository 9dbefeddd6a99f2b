"""GPU figures for benchmarks/RESULTS.md: each op's bandwidth against a device copy, and the double-backward chain.

Run: python benchmarks/gpu_bandwidth.py  (needs a CUDA GPU and the native library)
Times are medians of CUDA-event timings over rotated input sets (so L2 holds none of them).
"""
from __future__ import annotations

import os
import statistics

import torch

from gantools.ops import _backend, bias_leaky_relu, penalty_from_grad
from gantools.ops.bias_leaky_relu import _ref as leaky_ref

SETS = 3


def timed(fn, reps: int = 40) -> float:
    """Median milliseconds of fn(i) over reps calls, i cycling through the input sets."""
    for i in range(5):
        fn(i % SETS)
    torch.cuda.synchronize()
    times = []
    for i in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(i % SETS)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def row(name: str, nbytes: int, ms: float, copy_gbs: float) -> None:
    gbs = nbytes / ms / 1e6
    print(f"| {name} | {nbytes / 2**20:.0f} | {ms * 1e3:.1f} | {gbs:.0f} | {100 * gbs / copy_gbs:.0f}% |")


def main() -> None:
    os.environ["GANTOOLS_OPS"] = "native"
    assert _backend._load_native(), _backend._state["reason"]
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print("| op | tensor MiB | us | GB/s (read + write) | of copy |")
    print("| --- | --- | --- | --- | --- |")
    for dtype, shapes in ((torch.float32, [(64, 256, 32, 32), (64, 512, 64, 32)]),
                          (torch.bfloat16, [(64, 512, 32, 32), (64, 512, 64, 64)])):
        for shape in shapes:
            xs = [torch.randn(shape, device="cuda", dtype=dtype) for _ in range(SETS)]
            b = torch.randn(shape[1], device="cuda")
            nbytes = xs[0].numel() * xs[0].element_size()
            dst = torch.empty_like(xs[0])
            copy_ms = timed(lambda i: dst.copy_(xs[i]))
            copy_gbs = 2 * nbytes / copy_ms / 1e6
            tag = f"{str(dtype)[6:]} {tuple(shape)}"
            row(f"copy {tag}", 2 * nbytes, copy_ms, copy_gbs)
            row(f"bias_leaky_relu fwd {tag}", 2 * nbytes,
                timed(lambda i: torch.ops.gantools.bias_leaky_relu(xs[i], b, 0.2, 1.0)), copy_gbs)
            outs = [torch.ops.gantools.bias_leaky_relu(x, b, 0.2, 1.0) for x in xs]
            row(f"bias_leaky_relu grad op {tag}", 3 * nbytes,
                timed(lambda i: torch.ops.gantools.bias_leaky_relu_backward(xs[i], outs[i], 0.2, 1.0)), copy_gbs)
            gs = [x.flatten(1) for x in xs]
            row(f"gradient_penalty fwd {tag}", nbytes,
                timed(lambda i: torch.ops.gantools.gradient_penalty(gs[i], 10.0, 1.0, False)), copy_gbs)
            norms = [torch.ops.gantools.gradient_penalty(g, 10.0, 1.0, False)[1] for g in gs]
            one = torch.ones((), device="cuda", dtype=dtype)
            row(f"gradient_penalty grad op {tag}", 2 * nbytes,
                timed(lambda i: torch.ops.gantools.gradient_penalty_backward(one, gs[i], norms[i], 10.0, 1.0,
                                                                              False)), copy_gbs)
            del xs, outs, gs, norms, dst
    print()
    print("| chain (64, 256, 32, 32) | native us | reference us | speed-up |")
    print("| --- | --- | --- | --- |")
    for dtype in (torch.float32, torch.bfloat16):
        xs = [torch.randn(64, 256, 32, 32, device="cuda", dtype=dtype, requires_grad=True) for _ in range(SETS)]
        b = torch.randn(256, device="cuda", dtype=dtype, requires_grad=True)
        gys = [torch.randn_like(x, requires_grad=True) for x in xs]
        v = torch.randn_like(xs[0])

        def chain(fn):
            def run(i):
                y = fn(xs[i], b)
                gx, _ = torch.autograd.grad(y, (xs[i], b), gys[i], create_graph=True)
                torch.autograd.grad(gx, gys[i], v)
            return run
        native = timed(chain(lambda x, b: bias_leaky_relu(x, b)))
        reference = timed(chain(lambda x, b: leaky_ref(x, b, 0.2, 1.0)))
        print(f"| bias_leaky_relu fwd+bwd+double-bwd {str(dtype)[6:]} | {native * 1e3:.0f} | "
              f"{reference * 1e3:.0f} | {reference / native:.2f}x |")
        gs = [(torch.randn(64, 64, 64, 64, device="cuda", dtype=dtype) * 0.01).requires_grad_() for _ in range(SETS)]
        vg = torch.randn_like(gs[0])

        def pchain(os_value):
            def run(i):
                os.environ["GANTOOLS_OPS"] = os_value
                p = penalty_from_grad(gs[i])
                (dg,) = torch.autograd.grad(p, gs[i], create_graph=True)
                torch.autograd.grad(dg, gs[i], vg)
            return run
        native = timed(pchain("native"))
        reference = timed(pchain("reference"))
        os.environ["GANTOOLS_OPS"] = "native"
        print(f"| gradient_penalty fwd+bwd+double-bwd {str(dtype)[6:]} | {native * 1e3:.0f} | "
              f"{reference * 1e3:.0f} | {reference / native:.2f}x |")


if __name__ == "__main__":
    main()
