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


def _setup_context(ctx, inputs, output):
    _, bias, ctx.negative_slope, ctx.gain = inputs
    ctx.bias_dtype = None if bias is None else bias.dtype
    # The output's sign says which side of the kink each element is on.
    ctx.save_for_backward(output)


def _backward(ctx, grad):
    (out,) = ctx.saved_tensors
    grad_x = torch.ops.gantools.bias_leaky_relu_backward(grad, out, ctx.negative_slope, ctx.gain)
    grad_bias = None
    if ctx.needs_input_grad[1]:
        grad_bias = grad_x.sum([0, *range(2, grad_x.dim())]).to(ctx.bias_dtype)
    return (grad_x if ctx.needs_input_grad[0] else None), grad_bias, None, None


def _setup_context_backward(ctx, inputs, output):
    _, out, ctx.negative_slope, ctx.gain = inputs
    ctx.save_for_backward(out)


def _backward_backward(ctx, grad_grad):
    # The gradient map is linear in `grad`, and its derivative in `out` is zero
    # away from the kink, so its gradient is the same fused op.
    (out,) = ctx.saved_tensors
    grad = None
    if ctx.needs_input_grad[0]:
        grad = torch.ops.gantools.bias_leaky_relu_backward(grad_grad, out, ctx.negative_slope, ctx.gain)
    return grad, None, None, None


_backend.register_with_gradient_op(_NAME, fake=_fake, fake_backward=_fake_backward, backward=_backward,
                                   setup_context=_setup_context, backward_backward=_backward_backward,
                                   setup_context_backward=_setup_context_backward)
