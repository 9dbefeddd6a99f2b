"""Modules built on gantools.ops."""
from __future__ import annotations

import torch
from torch import nn

from gantools import ops


class FusedLeakyReLU(nn.Module):
    """Per-channel bias + leaky ReLU (+ gain) in one op; put it after a conv without bias."""

    def __init__(self, channels: int, negative_slope: float = 0.2, bias: bool = True, gain: float = 1.0):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        self.negative_slope = negative_slope
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.bias_leaky_relu(x, self.bias, self.negative_slope, self.gain)

    def extra_repr(self) -> str:
        channels = 0 if self.bias is None else self.bias.numel()
        return f"channels={channels}, negative_slope={self.negative_slope}, gain={self.gain}"
