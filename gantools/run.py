"""A run: its config, networks and directory, as training returns it and load_run rebuilds it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gantools.models import sample_prior


class Run:
    """A trained (or training) run: its config, networks and directory.

    Attributes:
        config: the resolved config.
        generator: the generator used for sampling (the weight average when ema > 0).
        critic: the critic.
        directory: the run directory (None for runs that were not saved).
        memory_format: the networks' memory layout, the one they trained in (channels_last or
            preserve_format); networks built for the run later (inverters) use it too.
    """

    def __init__(self, *, config: dict[str, Any], generator: torch.nn.Module, critic: torch.nn.Module,
                 data_kind: str, data_shape: tuple[int, ...], directory: Path | None, step: int,
                 device: torch.device, status: str = "finished",
                 memory_format: torch.memory_format = torch.preserve_format):
        self.config, self.generator, self.critic = config, generator, critic
        self.memory_format = memory_format  # the layout the networks trained (and run) in
        self.data_kind, self.data_shape = data_kind, tuple(data_shape)
        self.directory, self.step, self.device, self.status = directory, step, device, status

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None, batch_size: int = 500) -> torch.Tensor:
        """n samples on the CPU: images (n, C, H, W) in [-1, 1] or points (n, 2)."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        z = sample_prior(n, self.config["z_dim"], self.config["prior"], torch.device("cpu"), gen)
        return self.generate(z, batch_size)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """G(z) on the CPU for latents (n, z_dim), in batches, with the generator in eval mode."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            parts = [self.generator(chunk.to(self.device)).float().cpu() for chunk in z.split(batch_size)]
        finally:
            self.generator.train(was_training)
        return torch.cat(parts) if parts else torch.empty(0, *self.data_shape)

    def __repr__(self) -> str:
        return (f"Run({self.config['arch']}/{self.config['loss']} on {self.config['dataset']}, "
                f"step {self.step}, dir={self.directory})")
