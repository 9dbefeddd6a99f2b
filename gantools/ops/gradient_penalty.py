"""Gradient penalty: weight * mean((||grad_x D(x_hat)||_2 - center)^2) over interpolates x_hat."""
from __future__ import annotations

import torch

from gantools.ops import _backend
from gantools.ops._layout import kernel_memory_format

_NAME = "gradient_penalty"


def _penalty_ref(grad: torch.Tensor, weight: float, center: float, one_sided: bool) -> torch.Tensor:
    """Reference reduction of a critic input-gradient (N, ...) to the scalar penalty."""
    flat = grad.flatten(1) if grad.dim() > 1 else grad.unsqueeze(1)  # (N, D)
    norms = flat.norm(2, dim=1)  # (N,)
    gap = norms - center
    if one_sided:
        gap = gap.clamp(min=0)
    return weight * gap.pow(2).mean()


def penalty_from_grad(grad: torch.Tensor, weight: float = 10.0, center: float = 1.0,
                      one_sided: bool = False) -> torch.Tensor:
    """Reduce per-sample input gradients to the penalty (differentiable twice).

    Args:
        grad: the critic's input gradient, (N, ...), contiguous or channels_last.
        weight: lambda (10 in WGAN-GP).
        center: target norm, 1 for WGAN-GP, 0 for zero-centred (R1-style) penalties.
        one_sided: penalise only norms above ``center``.

    Returns:
        A scalar tensor of grad's dtype.
    """
    if grad.dim() >= 1 and _backend.use_native(_NAME, grad):
        penalty, _ = torch.ops.gantools.gradient_penalty(grad, float(weight), float(center), bool(one_sided))
        return penalty
    return _penalty_ref(grad, weight, center, one_sided)


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, *, weight: float = 10.0,
                     center: float = 1.0, one_sided: bool = False) -> torch.Tensor:
    """Penalty on the critic's input gradient at random interpolates of real and fake.

    Args:
        critic: module mapping (N, ...) inputs to (N,) or (N, 1) scores.
        real: real batch.
        fake: fake batch of the same shape (detached here).
        weight: lambda (10 in WGAN-GP).
        center: target norm, 1 for WGAN-GP, 0 for zero-centred penalties.
        one_sided: penalise only norms above ``center``.

    Returns:
        A scalar tensor that backpropagates into the critic's parameters.
    """
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = torch.lerp(real.detach(), fake.detach(), eps).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return penalty_from_grad(grad, weight, center, one_sided)


def _norm_dtype(grad: torch.Tensor) -> torch.dtype:
    return torch.float64 if grad.dtype == torch.float64 else torch.float32


def _fake(grad, weight, center, one_sided):
    return grad.new_empty(()), grad.new_empty((grad.shape[0],), dtype=_norm_dtype(grad))


def _fake_backward(grad_output, grad, norms, weight, center, one_sided):
    return torch.empty_like(grad, memory_format=kernel_memory_format(grad))


def _setup_context(ctx, inputs, output):
    grad, ctx.weight, ctx.center, ctx.one_sided = inputs
    _, norms = output
    ctx.mark_non_differentiable(norms)
    ctx.save_for_backward(grad, norms)


def _backward(ctx, grad_penalty, _grad_norms):
    grad, norms = ctx.saved_tensors
    grad_grad = torch.ops.gantools.gradient_penalty_backward(grad_penalty, grad, norms, ctx.weight,
                                                            ctx.center, ctx.one_sided)
    return grad_grad, None, None, None


def _setup_context_backward(ctx, inputs, output):
    grad_output, grad, _, ctx.weight, ctx.center, ctx.one_sided = inputs
    ctx.save_for_backward(grad_output, grad)


def _backward_backward(ctx, hh):
    """Gradient of u * c(r) * g (r = ||g|| per sample) in composite ops, so higher orders work too.

    With c(r) = 2 w / N * gap(r) / r: d/du = sum_n c_n <hh_n, g_n> and
    d/dg = u * (c_n * hh_n + <hh_n, g_n> * c'(r_n) / r_n * g_n), c'(r) = 2 w c / (N r^2)
    where the gap is active.
    """
    u, grad = ctx.saved_tensors
    n = grad.shape[0]
    if n == 0 or grad.numel() == 0:
        return torch.zeros_like(u), torch.zeros_like(grad), None, None, None, None
    flat = grad.reshape(n, -1)  # (N, D)
    r = flat.norm(dim=1)  # (N,)
    k = 2.0 * ctx.weight / n
    gap = r - ctx.center
    active = gap >= 0 if ctx.one_sided else torch.ones_like(r, dtype=torch.bool)
    positive = r > 0
    safe_r = torch.where(positive, r, torch.ones_like(r))
    coef = torch.where(positive & active, k * gap / safe_r, torch.zeros_like(r))
    slope = torch.where(positive & active, k * ctx.center / safe_r.pow(3), torch.zeros_like(r))
    s = (hh.reshape(n, -1) * flat).sum(1)  # (N,)
    shape = (n,) + (1,) * (grad.dim() - 1)
    d_u = (coef * s).sum().reshape(u.shape) if ctx.needs_input_grad[0] else None
    d_grad = None
    if ctx.needs_input_grad[1]:
        d_grad = u * (coef.view(shape) * hh + (s * slope).view(shape) * grad)
    return d_u, d_grad, None, None, None, None


_backend.register_with_gradient_op(_NAME, fake=_fake, fake_backward=_fake_backward, backward=_backward,
                                   setup_context=_setup_context, backward_backward=_backward_backward,
                                   setup_context_backward=_setup_context_backward)
