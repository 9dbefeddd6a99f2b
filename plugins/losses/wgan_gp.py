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
        lazy: apply the penalty on every lazy-th critic step only, with weight * lazy, so its
            average strength is unchanged (StyleGAN2's lazy regularisation); the steps between
            skip the penalty's double backward. 1: every step.
    """

    defaults = {"n_critic": 5, "optimizer": "adam", "lr": 1e-4, "betas": (0.0, 0.9)}
    per_sample = True  # the penalty is per sample: no BatchNorm in the critic

    def __init__(self, weight: float = 10.0, center: float = 1.0, one_sided: bool = False, lazy: int = 1):
        if weight < 0 or center < 0:
            raise UserError(f"wgan-gp weight and center must be non-negative (got {weight}, {center})")
        if lazy < 1:
            raise UserError(f"wgan-gp lazy must be at least 1 (got {lazy})")
        self.weight, self.center, self.one_sided, self.lazy = weight, center, one_sided, lazy
        self.calls = 0  # critic objectives computed so far: the lazy schedule's phase (checkpointed)

    def discriminator_loss(self, critic, real, fake):
        # The critic is per-sample under a gradient penalty (no batch norm), so real and fake
        # can share one call.
        loss, logs = critic_scores(critic, real, fake, joint=True)
        due = self.calls % self.lazy == 0
        self.calls += 1
        if not due:
            return loss, logs
        penalty = ops.gradient_penalty(critic, real, fake, weight=self.weight * self.lazy, center=self.center,
                                       one_sided=self.one_sided)
        logs["penalty"] = penalty.detach()
        return loss + penalty, logs

    def generator_loss(self, critic, fake):
        return -critic(fake).mean(), {}

    def state_dict(self) -> dict:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict) -> None:
        self.calls = int(state["calls"])


loss = WGANGP
