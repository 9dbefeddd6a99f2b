"""WGAN with gradient penalty (Gulrajani et al. 2017)."""
from __future__ import annotations

from gantools import ops
from gantools.errors import UserError
from gantools_plugins.losses.wgan import critic_scores


class WGANGP:
    """Critic maximises E[D(x)] - E[D(G(z))] - weight * E[(||grad D(x_hat)|| - center)^2].

    Args:
        weight: penalty weight lambda (10 in the paper).
        center: target gradient norm (1; 0 gives a zero-centred penalty).
        one_sided: penalise only norms above ``center``.
    """

    defaults = {"n_critic": 5, "optimizer": "adam", "lr": 1e-4, "betas": (0.0, 0.9)}
    per_sample = True  # the penalty is per sample: no BatchNorm in the critic

    def __init__(self, weight: float = 10.0, center: float = 1.0, one_sided: bool = False):
        if weight < 0 or center < 0:
            raise UserError(f"wgan-gp weight and center must be non-negative (got {weight}, {center})")
        self.weight, self.center, self.one_sided = weight, center, one_sided

    def discriminator_loss(self, critic, real, fake):
        # The critic is per-sample under a gradient penalty (no batch norm), so real and fake
        # can share one call.
        loss, logs = critic_scores(critic, real, fake, joint=True)
        penalty = ops.gradient_penalty(critic, real, fake, weight=self.weight, center=self.center,
                                       one_sided=self.one_sided)
        logs["penalty"] = penalty.detach()
        return loss + penalty, logs

    def generator_loss(self, critic, fake):
        return -critic(fake).mean(), {}


loss = WGANGP
