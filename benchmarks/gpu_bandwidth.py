"""GPU figures for benchmarks/RESULTS.md: each op's bandwidth against a device copy, and the double-backward chain.

Run: python benchmarks/gpu_bandwidth.py [--json OUT]  (needs a CUDA GPU and the native library)
Bandwidth: bytes read + written per call over the device time of one call, taken from the replay
of a CUDA graph of several calls (no host launch time; the copy is timed the same way), beside
the median of single calls timed with CUDA events (which include the host's launch time). Inputs
rotate over three sets, so L2 holds none of them. Target (issue 15): both gradient-penalty kernels
at >= 80% of the copy's bandwidth on 64 MB and larger tensors.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics

import torch

from gantools.ops import _backend, bias_leaky_relu, penalty_from_grad
from gantools.ops.bias_leaky_relu import _ref as leaky_ref

SETS = 3
TARGET = 0.80  # of the copy's bandwidth, for the penalty's kernels on >= 64 MB
# (dtype, shape, with bias_leaky_relu rows): 64 and 256 MiB; the (4, ...) shape is a few large
# samples, which the penalty's kernels must spread over the device too.
CASES = [(torch.float32, (64, 256, 32, 32), True), (torch.float32, (64, 512, 64, 32), True),
         (torch.float32, (4, 1 << 22), False),
         (torch.bfloat16, (64, 512, 32, 32), True), (torch.bfloat16, (64, 512, 64, 64), True)]


def timed(fn, reps: int = 40) -> float:
    """Median milliseconds of one call fn(i) (host launch included), i cycling through the input sets."""
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


def device_ms(fn, calls: int = 4 * SETS, reps: int = 15) -> float:
    """Median device milliseconds per call of fn(i): a CUDA graph of ``calls`` calls, replayed.
    Falls back to back-to-back eager calls between two events if fn cannot be captured."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up off the default stream, as capture wants
        for i in range(SETS):
            fn(i)
    torch.cuda.current_stream().wait_stream(side)
    try:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for i in range(calls):
                fn(i % SETS)
        run = graph.replay
    except RuntimeError:
        def run():
            for i in range(calls):
                fn(i % SETS)
    run()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / calls)
    return statistics.median(times)


def measure(op: str, tag: str, nbytes: int, fn, copy_gbs: float | None) -> dict:
    """One table row: device and single-call times of fn, its GB/s and share of the copy's."""
    ms = device_ms(fn)
    gbs = nbytes / ms / 1e6
    copy = gbs if copy_gbs is None else copy_gbs
    row = {"op": op, "tensor": tag, "mib_moved": nbytes / 2**20, "us_device": ms * 1e3,
           "us_one_call": timed(fn) * 1e3, "gbs": gbs, "of_copy": gbs / copy}
    if op.startswith("gradient_penalty") and nbytes >= 64 * 2**20:
        row["target"] = TARGET
        row["met"] = row["of_copy"] >= TARGET
    target = "" if "target" not in row else ("met" if row["met"] else "**missed**")
    print(f"| {op} | {tag} | {row['mib_moved']:.0f} | {row['us_device']:.1f} | {row['us_one_call']:.1f} | "
          f"{gbs:.0f} | {100 * row['of_copy']:.0f}% | {target} |", flush=True)
    return row


def bandwidth_rows(dtype: torch.dtype, shape: tuple, with_bias: bool) -> list[dict]:
    """Copy, bias_leaky_relu (forward, gradient op) and gradient_penalty (forward, gradient op) on one tensor."""
    ops = torch.ops.gantools
    xs = [torch.randn(shape, device="cuda", dtype=dtype) for _ in range(SETS)]
    nbytes = xs[0].numel() * xs[0].element_size()
    dst = torch.empty_like(xs[0])
    tag = f"{str(dtype)[6:]} {tuple(shape)}"
    rows = [measure("copy", tag, 2 * nbytes, lambda i: dst.copy_(xs[i]), None)]
    copy_gbs = rows[0]["gbs"]
    if with_bias:
        b = torch.randn(shape[1], device="cuda")
        rows.append(measure("bias_leaky_relu fwd", tag, 2 * nbytes,
                            lambda i: ops.bias_leaky_relu(xs[i], b, 0.2, 1.0), copy_gbs))
        outs = [ops.bias_leaky_relu(x, b, 0.2, 1.0) for x in xs]
        rows.append(measure("bias_leaky_relu grad op", tag, 3 * nbytes,
                            lambda i: ops.bias_leaky_relu_backward(xs[i], outs[i], 0.2, 1.0), copy_gbs))
        del outs
    gs = [x.flatten(1) for x in xs]
    rows.append(measure("gradient_penalty fwd", tag, nbytes,
                        lambda i: ops.gradient_penalty(gs[i], 10.0, 1.0, False), copy_gbs))
    norms = [ops.gradient_penalty(g, 10.0, 1.0, False)[1] for g in gs]
    one = torch.ones((), device="cuda", dtype=dtype)
    rows.append(measure("gradient_penalty grad op", tag, 2 * nbytes,
                        lambda i: ops.gradient_penalty_backward(one, gs[i], norms[i], 10.0, 1.0, False), copy_gbs))
    return rows


def chain_rows() -> list[dict]:
    """Forward + backward + double backward of each op, native against the reference (wall clock per chain)."""
    rows = []
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
        rows.append({"chain": f"bias_leaky_relu fwd+bwd+double-bwd {str(dtype)[6:]}", "native_us": native * 1e3,
                     "reference_us": reference * 1e3})
        gs = [(torch.randn(64, 64, 64, 64, device="cuda", dtype=dtype) * 0.01).requires_grad_() for _ in range(SETS)]
        vg = torch.randn_like(gs[0])

        def pchain(backend):
            def run(i):
                os.environ["GANTOOLS_OPS"] = backend
                p = penalty_from_grad(gs[i])
                (dg,) = torch.autograd.grad(p, gs[i], create_graph=True)
                torch.autograd.grad(dg, gs[i], vg)
            return run
        native = timed(pchain("native"))
        reference = timed(pchain("reference"))
        os.environ["GANTOOLS_OPS"] = "native"
        rows.append({"chain": f"gradient_penalty fwd+bwd+double-bwd {str(dtype)[6:]}", "native_us": native * 1e3,
                     "reference_us": reference * 1e3})
    for row in rows:
        print(f"| {row['chain']} | {row['native_us']:.0f} | {row['reference_us']:.0f} | "
              f"{row['reference_us'] / row['native_us']:.2f}x |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    os.environ["GANTOOLS_OPS"] = "native"
    if not torch.cuda.is_available():
        raise SystemExit("gpu_bandwidth: needs a CUDA GPU")
    if not _backend._load_native():
        raise SystemExit(f"gpu_bandwidth: the native library is not usable ({_backend._state['reason']})")
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    print("| op | tensor | MiB moved | us (device) | us (one call) | GB/s (read + write) | of copy | target |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for dtype, shape, with_bias in CASES:
        rows += bandwidth_rows(dtype, shape, with_bias)
        torch.cuda.empty_cache()
    print()
    print("| chain (64, 256, 32, 32); penalty (64, 64, 64, 64) | native us | reference us | speed-up |")
    print("| --- | --- | --- | --- |")
    chains = chain_rows()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "cuda": torch.version.cuda,
                       "bandwidth": rows, "chains": chains}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
