"""Fused layer norm + leaky ReLU + gain: per-sample statistics over all non-batch dims, per-channel affine."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from gantools.ops import _backend
from gantools.ops._layout import kernel_memory_format

_NAME = "layer_norm_leaky_relu"


def _ref(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, negative_slope: float, gain: float,
         eps: float) -> torch.Tensor:
    """Plain-PyTorch reference, differentiable to any order: F.group_norm with one group, without
    its refusal of one element per channel and batch (an (1, C) input has C values to normalise)."""
    return F.leaky_relu(torch.group_norm(x, 1, weight, bias, eps), negative_slope) * gain


def layer_norm_leaky_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, negative_slope: float = 0.2,
                          gain: float = 1.0, eps: float = 1e-5) -> torch.Tensor:
    """``leaky_relu(weight[c] * (x - mean) / sqrt(var + eps) + bias[c], negative_slope) * gain``.

    mean and var (biased) are taken per sample over all non-batch dims, as nn.GroupNorm(1, C)
    does. The native kernels differentiate twice without leaving the fused ops (the penalty of a
    WGAN-GP critic), keep x's dtype (a float32 weight beside a bfloat16 x is applied in float32)
    and save x and two statistics per sample for backward. Dtypes a device's kernel lacks run
    the reference.

    Args:
        x: input of shape (N, C, ...), contiguous or channels_last.
        weight: (C,) scale applied after normalising.
        bias: (C,) shift applied after normalising.
        negative_slope: slope for negative inputs (0 gives ReLU).
        gain: scale applied after the activation.
        eps: added to the variance (nn.GroupNorm's default).

    Returns:
        A tensor shaped like x (channels_last when x is).
    """
    if _backend.use_native(_NAME, x):
        y, _, _ = torch.ops.gantools.layer_norm_leaky_relu(x, weight, bias, float(negative_slope), float(gain),
                                                           float(eps))
        return y
    return _ref(x, weight, bias, negative_slope, gain, eps)


def _like_x(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x, memory_format=kernel_memory_format(x))


def _stats(x: torch.Tensor) -> torch.Tensor:
    return x.new_empty((x.shape[0],), dtype=torch.float64 if x.dtype == torch.float64 else torch.float32)


def _fake(x, weight, bias, negative_slope, gain, eps):
    return _like_x(x), _stats(x), _stats(x)


def _fake_backward(grad, x, weight, bias, mean, rstd, negative_slope, gain, eps, grad_affine):
    if not grad_affine:
        return _like_x(x), None, None
    return _like_x(x), torch.empty_like(weight), torch.empty_like(bias)


def _fake_double_backward(grad_grad_x, grad_grad_weight, grad_grad_bias, grad, x, weight, bias, mean, rstd,
                          negative_slope, gain):
    return _like_x(x), _like_x(x), torch.empty_like(weight)


# Autograd is in C++ (csrc/layer_norm_leaky_relu.cpp): the gradient op's gradient is the fused
# double backward (ATen ops when that is differentiated again).
_backend.register_fakes(_NAME, fake=_fake, fake_backward=_fake_backward, fake_double_backward=_fake_double_backward)
