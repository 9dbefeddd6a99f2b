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


class FusedLayerNormLeakyReLU(nn.Module):
    """nn.GroupNorm(1, C) (statistics over (C, H, W) of each sample, per-channel weight and bias)
    then leaky ReLU (+ gain), in one op; put it after a conv without bias. Its ``weight`` and
    ``bias`` are the GroupNorm's: see ``load_unfused_layer_norms`` for older checkpoints."""

    def __init__(self, channels: int, negative_slope: float = 0.2, gain: float = 1.0, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.negative_slope = negative_slope
        self.gain = gain
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.layer_norm_leaky_relu(x, self.weight, self.bias, self.negative_slope, self.gain, self.eps)

    def extra_repr(self) -> str:
        return f"channels={self.weight.numel()}, negative_slope={self.negative_slope}, gain={self.gain}, eps={self.eps}"


def load_unfused_layer_norms(seq: nn.Sequential) -> nn.Sequential:
    """Let ``seq`` load state_dicts saved when each FusedLayerNormLeakyReLU in it was two entries,
    nn.GroupNorm(1, C) then FusedLeakyReLU(C, bias=False) (which has no parameters): such a
    state_dict's keys are renumbered to ``seq``'s layout. Returns ``seq``."""
    seq.register_load_state_dict_pre_hook(_renumber_unfused_keys)
    return seq


def _renumber_unfused_keys(seq: nn.Sequential, state_dict: dict, prefix: str, *args) -> None:
    fused = [j for j, layer in enumerate(seq) if isinstance(layer, FusedLayerNormLeakyReLU)]
    renamed = {}  # unfused key -> seq's key: entry j was entry j + (fused entries before j)
    for key in seq.state_dict(keep_vars=True):
        index, rest = key.split(".", 1)
        renamed[f"{prefix}{int(index) + sum(f < int(index) for f in fused)}.{rest}"] = prefix + key
    present = {key for key in state_dict if key.startswith(prefix)}
    if set(renamed.values()) <= present or not set(renamed) <= present:
        return  # seq's own layout, or another (load_state_dict reports what does not match)
    moved = {new: state_dict.pop(old) for old, new in renamed.items()}
    state_dict.update(moved)
