"""Fused bias + leaky ReLU + gain: y = leaky_relu(x + b[c], slope) * gain, bias along dim 1."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _ref(x: torch.Tensor, bias: torch.Tensor | None, negative_slope: float, gain: float) -> torch.Tensor:
    """Plain-PyTorch reference, differentiable to any order."""
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.dim() - 2)))
    return F.leaky_relu(x, negative_slope) * gain


def bias_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None = None, negative_slope: float = 0.2,
                    gain: float = 1.0) -> torch.Tensor:
    """Add a per-channel bias, apply leaky ReLU and scale by ``gain``.

    Args:
        x: input of shape (N, C, ...), contiguous or channels_last.
        bias: optional (C,) bias added along dim 1.
        negative_slope: slope for negative inputs (0 gives ReLU).
        gain: scale applied after the activation.
    """
    return _ref(x, bias, negative_slope, gain)
