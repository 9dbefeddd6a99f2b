"""Gradient penalty: weight * mean((||grad_x D(x_hat)||_2 - center)^2) over interpolates x_hat."""
from __future__ import annotations

import torch

from gantools import stepcontext
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
                     center: float = 1.0, one_sided: bool = False, scale: float | None = None,
                     eps: torch.Tensor | None = None) -> torch.Tensor:
    """Penalty on the critic's input gradient at random interpolates of real and fake.

    Args:
        critic: module mapping (N, ...) inputs to (N,) or (N, 1) scores.
        real: real batch.
        fake: fake batch of the same shape (detached here; cast to real's dtype).
        weight: lambda (10 in WGAN-GP).
        center: target norm, 1 for WGAN-GP, 0 for zero-centred penalties.
        one_sided: penalise only norms above ``center``.
        scale: fp16 loss scale: the input gradient is taken of ``scale`` * scores and divided
            by ``scale`` before the norm (PyTorch's AMP gradient-penalty recipe), so it does not
            underflow in fp16. None: the step context's (gantools.stepcontext: the trainer's
            GradScaler scale under --precision fp16), else no scaling.
        eps: per-sample interpolation weights in [0, 1], (N,) or (N, 1, ...). None: uniform draws
            through gantools.stepcontext.rows, which in a data-parallel step draws for the global
            batch and slices, so W processes draw what one process would.

    Returns:
        A scalar tensor that backpropagates into the critic's parameters.
    """
    if scale is None:
        scale = stepcontext.current().loss_scale
    ones = [1] * (real.dim() - 1)
    if eps is None:
        eps = stepcontext.rows(lambda n: torch.rand(n, device=real.device, dtype=real.dtype), real.shape[0])
    eps = eps.to(real.device, real.dtype).reshape(real.shape[0], *ones)  # (N, 1, ...)
    x_hat = torch.lerp(real.detach(), fake.detach().to(real.dtype), eps).requires_grad_(True)
    scores = critic(x_hat).sum()
    if scale is None:
        (grad,) = torch.autograd.grad(scores, x_hat, create_graph=True)
    else:
        (grad,) = torch.autograd.grad(scores * scale, x_hat, create_graph=True)
        grad = grad / scale
    return penalty_from_grad(grad, weight, center, one_sided)


def _norm_dtype(grad: torch.Tensor) -> torch.dtype:
    return torch.float64 if grad.dtype == torch.float64 else torch.float32


def _fake(grad, weight, center, one_sided):
    return grad.new_empty(()), grad.new_empty((grad.shape[0],), dtype=_norm_dtype(grad))


def _fake_backward(grad_output, grad, norms, weight, center, one_sided):
    return torch.empty_like(grad, memory_format=kernel_memory_format(grad))


# Autograd is in C++ (csrc/gradient_penalty.cpp): the backward is the fused
# gradient op, whose own gradient is composed of ATen ops.
_backend.register_fakes(_NAME, fake=_fake, fake_backward=_fake_backward)
