"""Learned encoder E(x) -> z, fitted after training on unlimited synthetic pairs (G(z), z).

The recipe of the reference study: the critic's conv trunk with fresh weights, its one-unit
output replaced by fully connected layers 4096-2048-1024 (LeakyReLU 0.2) and a linear z_dim
layer; loss z_weight * MAE(z, E(G(z))) + x_weight * MAE(G(z), G(E(G(z)))); Adam 1e-4,
betas (0, 0.9), batch 64. The generator stays frozen (eval mode) throughout.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from gantools.errors import UserError
from gantools.models import sample_prior

_HEAD = (4096, 2048, 1024)


class Encoder(nn.Module):
    """Conv trunk (the architecture's encoder_trunk, or an MLP for flat inputs) + FC head."""

    def __init__(self, trunk: nn.Module, features: int, z_dim: int, head: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = []
        width = features
        for units in head:
            layers += [nn.Linear(width, units), nn.LeakyReLU(0.2)]
            width = units
        layers.append(nn.Linear(width, z_dim))
        self.trunk, self.head = trunk, nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


def gaussian_posterior(encoder: nn.Module, x: torch.Tensor, z_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An encoder with 2 * z_dim outputs read as q(z|x) = N(mu, diag(exp(logvar))): (mu, logvar)."""
    out = encoder(x)
    return out[:, :z_dim], out[:, z_dim:].clamp(-10.0, 10.0)


def trunk_for(arch, image_shape: tuple[int, ...]) -> tuple[nn.Module, int]:
    """The architecture's encoder trunk (fresh weights), or a flatten for architectures without one."""
    make_trunk = getattr(arch, "encoder_trunk", None)
    if make_trunk is not None:
        return make_trunk(tuple(image_shape))
    return nn.Flatten(), math.prod(image_shape)


def run_architecture(run, registry=None):
    """The run's architecture plugin, created with the run's options."""
    from gantools.registry import default_registry

    return (registry or default_registry()).create("architectures", run.config["arch"], run.config["arch_opts"])


def scaled_head(width_scale: float) -> tuple[int, ...]:
    """The head widths 4096-2048-1024 times width_scale (at least 8 units each)."""
    return tuple(max(8, round(units * width_scale)) for units in _HEAD)


class EncoderInverter:
    """Post-hoc learned encoder.

    Args:
        steps: default number of training batches (``--steps`` overrides it).
        batch_size: synthetic pairs per batch.
        lr: Adam learning rate (betas (0, 0.9)).
        z_weight: weight of MAE(z, z') in the loss.
        x_weight: weight of MAE(G(z), G(z')) in the loss.
        width_scale: multiplies the head widths 4096-2048-1024 (e.g. 0.125 for 16 px digits).
        log_every: record the costs every N steps.
    """

    needs_fit = True

    def __init__(self, steps: int = 2000, batch_size: int = 64, lr: float = 1e-4, z_weight: float = 1.0,
                 x_weight: float = 1.0, width_scale: float = 1.0, log_every: int = 50):
        if steps < 1 or batch_size < 1 or lr <= 0 or log_every < 1:
            raise UserError("encoder needs steps, batch_size, log_every >= 1 and lr > 0")
        if z_weight < 0 or x_weight < 0 or z_weight + x_weight == 0:
            raise UserError(f"encoder needs non-negative weights, not both 0 (got {z_weight}, {x_weight})")
        if width_scale <= 0:
            raise UserError(f"encoder width_scale must be positive (got {width_scale})")
        self.steps, self.batch_size, self.lr = steps, batch_size, lr
        self.z_weight, self.x_weight, self.log_every = z_weight, x_weight, log_every
        self.head = scaled_head(width_scale)
        self.net: Encoder | None = None

    def setup(self, run, registry=None) -> None:
        """Build the encoder for the run's architecture, image shape and z_dim."""
        trunk, features = trunk_for(run_architecture(run, registry), run.data_shape)
        self.run = run
        self.net = Encoder(trunk, features, run.config["z_dim"], self.head).to(run.device)
        self.net.to(memory_format=run.memory_format)  # the layout of the generator's images it learns from

    def fit(self, run, steps, log) -> None:
        """Train on fresh synthetic pairs each step; log z_cost, x_cost and total."""
        g = run.generator.eval().requires_grad_(False)
        net = self.net.train()
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, betas=(0.0, 0.9))
        sums: dict[str, float] = {}
        total_steps = steps or self.steps
        for step in range(1, total_steps + 1):
            with torch.no_grad():
                z = sample_prior(self.batch_size, run.config["z_dim"], run.config["prior"], run.device)
                x = g(z)
            z_rec = net(x)
            z_cost = (z_rec - z).abs().mean()
            x_cost = (g(z_rec) - x).abs().mean() if self.x_weight > 0 else z_cost.new_zeros(())
            loss = self.z_weight * z_cost + self.x_weight * x_cost
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for key, value in (("z_cost", z_cost), ("x_cost", x_cost), ("total", loss)):
                sums[key] = sums.get(key, 0.0) + float(value.detach())
            if step % self.log_every == 0 or step == total_steps:
                count = step % self.log_every or self.log_every
                log(step, {k: v / count for k, v in sums.items()})
                sums = {}
        net.eval()

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.net.eval()(images.to(self.run.device))

    def state_dict(self) -> dict:
        return self.net.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state)


inverter = EncoderInverter
