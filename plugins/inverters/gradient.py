"""Gradient-descent inversion: optimise z per image so that G(z) matches it.

Adam on a batch of latents (one per image and restart) minimising the per-image mean squared
error, with the generator frozen in eval mode. Each image keeps the restart with the lowest
error. The prior is respected: for a normal prior either a log-prior penalty
(prior_weight * ||z||^2 / 2 per latent, "penalty") or a projection onto the sphere of radius
sqrt(z_dim) where almost all of its mass lies ("sphere"); a uniform prior's latents are
clipped to [-1, 1].
"""
from __future__ import annotations

import torch

from gantools.errors import UserError
from gantools.models import sample_prior

PRIOR_MODES = ("penalty", "sphere", "none")


def optimise_latents(generator, images: torch.Tensor, z0: torch.Tensor, *, steps: int, lr: float,
                     prior: str, prior_mode: str, prior_weight: float, extra=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run Adam on z (R*N, d) against images (N, ...) repeated R times; return, per latent, the
    iterate with the lowest objective seen (the start included) and that objective.

    Args:
        extra: optional function (z, G(z)) -> per-latent cost added to the objective (the
            hybrid inverter's term keeping z in the encoder's domain); it gets the generated
            images of this step so that it need not run the generator again.
    """
    n = images.shape[0]
    repeats = z0.shape[0] // n
    target = images.repeat(repeats, *([1] * (images.dim() - 1)))
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    d = z.shape[1]
    _constrain(z, prior, prior_mode)
    best_z = z.detach().clone()
    best_cost = torch.full((z.shape[0],), float("inf"), device=z.device)

    def objective() -> torch.Tensor:  # per latent
        generated = generator(z)
        cost = (generated - target).pow(2).flatten(1).mean(1)
        if prior == "normal" and prior_mode == "penalty":
            cost = cost + prior_weight * 0.5 * z.pow(2).sum(1) / d
        if extra is not None:
            cost = cost + extra(z, generated)
        return cost

    def keep_best(cost: torch.Tensor) -> None:
        better = cost < best_cost
        best_cost[better] = cost[better]
        best_z[better] = z.detach()[better]

    for _ in range(steps):
        cost = objective()
        keep_best(cost.detach())
        opt.zero_grad(set_to_none=True)
        cost.sum().backward()  # per-latent costs are independent: their sum optimises each
        opt.step()
        _constrain(z, prior, prior_mode)
    with torch.no_grad():
        keep_best(objective())
    return best_z, best_cost


@torch.no_grad()
def _constrain(z: torch.Tensor, prior: str, prior_mode: str) -> None:
    """Keep latents where the prior lives: in [-1, 1] (uniform), on the sphere of radius sqrt(d) ("sphere")."""
    if prior == "uniform":
        z.clamp_(-1.0, 1.0)
    elif prior_mode == "sphere":
        z.mul_(z.shape[1] ** 0.5 / z.norm(dim=1, keepdim=True).clamp_min(1e-12))


def best_of_restarts(z: torch.Tensor, error: torch.Tensor, n: int) -> torch.Tensor:
    """Per image, the latent with the lowest error among its restarts (z is (R*N, d))."""
    repeats = z.shape[0] // n
    best = error.view(repeats, n).argmin(0)  # (N,)
    return z.view(repeats, n, -1)[best, torch.arange(n)]


class GradientInverter:
    """Per-image optimisation of z.

    Args:
        steps: Adam steps per batch of images.
        lr: Adam learning rate.
        restarts: random initialisations per image; the best is kept.
        prior_mode: for a normal prior, "penalty" (log-prior term), "sphere" (projection onto
            the sqrt(z_dim) sphere) or "none". A uniform prior is always clipped to [-1, 1].
        prior_weight: weight of the log-prior penalty (per latent dimension).
        seed: seed of the random initialisations.
    """

    needs_fit = False

    def __init__(self, steps: int = 300, lr: float = 0.05, restarts: int = 4, prior_mode: str = "penalty",
                 prior_weight: float = 0.01, seed: int = 0):
        if steps < 1 or restarts < 1 or lr <= 0 or prior_weight < 0:
            raise UserError("gradient inverter needs steps, restarts >= 1, lr > 0 and prior_weight >= 0")
        if prior_mode not in PRIOR_MODES:
            raise UserError(f"gradient prior_mode must be one of {', '.join(PRIOR_MODES)} (got {prior_mode!r})")
        self.steps, self.lr, self.restarts = steps, lr, restarts
        self.prior_mode, self.prior_weight, self.seed = prior_mode, prior_weight, seed

    def setup(self, run, registry=None) -> None:
        self.run = run
        self.generator = run.generator.eval().requires_grad_(False)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        run = self.run
        images = images.to(run.device)
        n = images.shape[0]
        gen = torch.Generator().manual_seed(self.seed)
        z0 = sample_prior(n * self.restarts, run.config["z_dim"], run.config["prior"], torch.device("cpu"), gen)
        z, error = optimise_latents(self.generator, images, z0.to(run.device), steps=self.steps, lr=self.lr,
                                    prior=run.config["prior"], prior_mode=self.prior_mode,
                                    prior_weight=self.prior_weight)
        return best_of_restarts(z, error, n)

inverter = GradientInverter
