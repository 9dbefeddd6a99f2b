"""Fused bias + leaky ReLU + gain: y = leaky_relu(x + b[c], slope) * gain, bias along dim 1."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from gantools.ops import _backend
from gantools.ops._layout import kernel_memory_format

_NAME = "bias_leaky_relu"


def _ref(x: torch.Tensor, bias: torch.Tensor | None, negative_slope: float, gain: float) -> torch.Tensor:
    """Plain-PyTorch reference, differentiable to any order."""
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.dim() - 2)))
    return F.leaky_relu(x, negative_slope) * gain


def bias_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None = None, negative_slope: float = 0.2,
                    gain: float = 1.0) -> torch.Tensor:
    """Add a per-channel bias, apply leaky ReLU and scale by ``gain``.

    The native kernel keeps x's dtype (a float32 bias beside a bfloat16 x is
    applied in float32 without promoting the output) and saves only the
    output for backward. Negative slopes, and dtypes a device's kernel lacks,
    run the reference.

    Args:
        x: input of shape (N, C, ...), contiguous or channels_last.
        bias: optional (C,) bias added along dim 1.
        negative_slope: slope for negative inputs (0 gives ReLU).
        gain: scale applied after the activation.

    Returns:
        A tensor shaped like x (channels_last when x is).
    """
    if negative_slope >= 0 and _backend.use_native(_NAME, x):
        return torch.ops.gantools.bias_leaky_relu(x, bias, float(negative_slope), float(gain))
    return _ref(x, bias, negative_slope, gain)


def _fake(x, bias, negative_slope, gain):
    return torch.empty_like(x, memory_format=kernel_memory_format(x))


def _fake_backward(grad, out, negative_slope, gain):
    return torch.empty_like(out, memory_format=kernel_memory_format(out))


# Autograd is in C++ (csrc/bias_leaky_relu.cpp): the gradient op's own gradient is
# the gradient op again, so every order of backward stays fused.
_backend.register_fakes(_NAME, fake=_fake, fake_backward=_fake_backward)
