"""How fast this machine runs the dcgan critic's convolutions, against its matmul peak.

    python benchmarks/conv_rates.py            # the table of RESULTS.md (layer-norm critic, session 7)

Times (min of --repeat after 2 warm-ups) one pass of each kind for the second critic layer's
shape (batch 64, 64 -> 128 channels, 4x4 stride 2, 32 -> 16 px) in both layouts, a 4096^3
float32 matmul, and two exact reformulations of a 4x4 stride-2 convolution (pixel_unshuffle +
2x2 stride-1 conv; im2col + matmul) on every critic layer, as the plain conv2d time over the
reformulated one for forward + input gradient (create_graph) + the backward through both.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

LAYERS = [(3, 64, 64), (64, 128, 32), (128, 256, 16), (256, 512, 8)]  # (in, out, side) at 64 px
BATCH = 64


def best(fn, repeat: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def plain(x, w):
    return F.conv2d(x, w, stride=2, padding=1)


def unshuffled(x, w):
    """The same convolution as a 2x2 stride-1 conv over pixel_unshuffle(pad(x)) (4x the channels)."""
    out, cin = w.shape[:2]
    w2 = w.view(out, cin, 2, 2, 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(out, 4 * cin, 2, 2)
    return F.conv2d(F.pixel_unshuffle(F.pad(x, (1, 1, 1, 1)), 2), w2)


def im2col(x, w):
    n, _, side, _ = x.shape
    return (w.view(w.shape[0], -1) @ F.unfold(x, 4, padding=1, stride=2)).view(n, w.shape[0], side // 2, side // 2)


def penalty_pass(conv, x, w):
    """Forward, the input gradient with create_graph, and the backward through both."""
    x = x.detach().requires_grad_()
    w = w.detach().requires_grad_()
    y = conv(x, w)
    (g,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    (g.square().sum() + y.sum()).backward()


def pass_table(repeat: int) -> None:
    cin, cout, side = LAYERS[1]
    gflop = 2 * BATCH * (side // 2) ** 2 * cout * cin * 16 / 1e9
    print(f"one pass, batch {BATCH}, {cin} -> {cout} channels, {side} -> {side // 2} px: {gflop:.2f} GFLOP")
    for layout in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(BATCH, cin, side, side).contiguous(memory_format=layout)
        w = (torch.randn(cout, cin, 4, 4) * 0.05).contiguous(memory_format=layout)
        gy = torch.randn(BATCH, cout, side // 2, side // 2).contiguous(memory_format=layout)
        args = (gy, x, w, None, [2, 2], [1, 1], [1, 1], False, [0, 0], 1)
        passes = {"forward conv2d": lambda: plain(x, w),
                  "input gradient": lambda: torch.ops.aten.convolution_backward(*args, [True, False, False]),
                  "weight gradient": lambda: torch.ops.aten.convolution_backward(*args, [False, True, False]),
                  "conv_transpose2d": lambda: F.conv_transpose2d(gy, w, stride=2, padding=1)}
        for name, fn in passes.items():
            seconds = best(fn, repeat)
            print(f"  {str(layout).split('.')[-1]:<18} {name:<18} {seconds * 1e3:6.1f} ms  {gflop / seconds:5.0f} GFLOP/s")
    a, b = torch.randn(4096, 4096), torch.randn(4096, 4096)
    print(f"matmul 4096^3: {2 * 4096 ** 3 / best(lambda: a @ b, repeat) / 1e9:.0f} GFLOP/s "
          f"({torch.get_num_threads()} threads)")


def reformulations(repeat: int) -> None:
    for cin, cout, side in LAYERS:
        for layout in (torch.contiguous_format, torch.channels_last):
            x = torch.randn(BATCH, cin, side, side).contiguous(memory_format=layout)
            w = torch.randn(cout, cin, 4, 4) * 0.05
            assert torch.allclose(plain(x, w), unshuffled(x, w), atol=1e-3)
            base = best(lambda: penalty_pass(plain, x, w), repeat)
            ratios = {name: base / best(lambda: penalty_pass(conv, x, w), repeat)
                      for name, conv in (("unshuffle", unshuffled), ("im2col", im2col))}
            print(f"  layer {cin:>3} -> {cout:<3} {str(layout).split('.')[-1]:<18} plain {base * 1e3:6.1f} ms  "
                  + "  ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    pass_table(args.repeat)
    print("reformulations (plain time / reformulated time; > 1 means faster):")
    reformulations(args.repeat)


if __name__ == "__main__":
    main()
