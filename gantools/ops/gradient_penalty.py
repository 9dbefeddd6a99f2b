"""Gradient penalty: weight * mean((||grad_x D(x_hat)||_2 - center)^2) over interpolates x_hat."""
from __future__ import annotations

import torch


def _penalty_ref(grad: torch.Tensor, weight: float, center: float, one_sided: bool) -> torch.Tensor:
    """Reference reduction of a critic input-gradient (N, ...) to the scalar penalty."""
    norms = grad.flatten(1).norm(2, dim=1)  # (N,)
    gap = norms - center
    if one_sided:
        gap = gap.clamp(min=0)
    return weight * gap.pow(2).mean()


def penalty_from_grad(grad: torch.Tensor, weight: float = 10.0, center: float = 1.0,
                      one_sided: bool = False) -> torch.Tensor:
    """Reduce per-sample input gradients to the penalty (differentiable twice)."""
    return _penalty_ref(grad, weight, center, one_sided)


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, *, weight: float = 10.0,
                     center: float = 1.0, one_sided: bool = False) -> torch.Tensor:
    """Penalty on the critic's input gradient at random interpolates of real and fake.

    Args:
        critic: module mapping (N, ...) inputs to (N,) or (N, 1) scores.
        real: real batch.
        fake: fake batch of the same shape (detached by the caller or here).
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
