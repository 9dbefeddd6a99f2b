"""A run: its config, networks and directory, as training returns it and load_run rebuilds it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gantools.errors import UserError
from gantools.models import sample_prior


class Run:
    """A trained (or training) run: its config, networks and directory.

    Attributes:
        config: the resolved config.
        generator: the generator used for sampling (the weight average when ema > 0).
        critic: the critic (None for an autoencoder run).
        directory: the run directory (None for runs that were not saved).
        memory_format: the networks' memory layout, the one they trained in (channels_last or
            preserve_format); networks built for the run later (inverters) use it too.
        classes: a conditional run's class names (label k is classes[k]); None when unconditional.
        encoder: an autoencoder run's encoder (the ``autoencoder`` inverter encodes with it), else None.
    """

    def __init__(self, *, config: dict[str, Any], generator: torch.nn.Module, critic: torch.nn.Module,
                 data_kind: str, data_shape: tuple[int, ...], directory: Path | None, step: int,
                 device: torch.device, status: str = "finished",
                 memory_format: torch.memory_format = torch.preserve_format, classes: list[str] | None = None,
                 encoder: torch.nn.Module | None = None):
        self.config, self.generator, self.critic = config, generator, critic
        self.memory_format = memory_format  # the layout the networks trained (and run) in
        self.data_kind, self.data_shape = data_kind, tuple(data_shape)
        self.directory, self.step, self.device, self.status = directory, step, device, status
        self.classes = list(classes) if classes else None  # a conditional run's class names (label order)
        self.encoder = encoder  # an autoencoder run's encoder (--loss ae|dae|vae), else None

    @property
    def conditional(self) -> bool:
        """Whether the generator takes a class with each latent: G(z, y)."""
        return self.classes is not None

    def class_index(self, label: int | str) -> int:
        """The class index of ``label`` (an index or a class name); UserError when the run has no such class."""
        if not self.conditional:
            raise UserError("this run is not conditional: it has no classes to sample (train with --conditional)")
        if isinstance(label, str) and label in self.classes:
            return self.classes.index(label)
        try:
            index = int(label)
        except ValueError:
            index = -1
        if not 0 <= index < len(self.classes):
            raise UserError(f"class {label!r} is not one of the run's {len(self.classes)} classes "
                            f"(0..{len(self.classes) - 1}: {', '.join(self.classes)})")
        return index

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None, batch_size: int = 500,
               label: int | str | None = None) -> torch.Tensor:
        """n samples on the CPU: images (n, C, H, W) in [-1, 1] or points (n, 2). A conditional run
        draws them all of class ``label`` (an index or a name), or of classes drawn uniformly."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        z = sample_prior(n, self.config["z_dim"], self.config["prior"], torch.device("cpu"), gen)
        labels = None
        if label is not None:
            labels = torch.full((n,), self.class_index(label), dtype=torch.long)
        elif self.conditional:
            labels = torch.randint(len(self.classes), (n,), generator=gen)
        return self.generate(z, batch_size, labels=labels)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, batch_size: int = 500, labels: torch.Tensor | None = None) -> torch.Tensor:
        """G(z) on the CPU for latents (n, z_dim), in batches, with the generator in eval mode; a
        conditional run needs ``labels`` (n,), the class of each latent."""
        if self.conditional != (labels is not None):
            raise UserError("this run is conditional: give a class for each latent" if self.conditional
                            else "this run is not conditional: it takes no classes")
        was_training = self.generator.training
        self.generator.eval()
        try:
            if labels is None:
                parts = [self.generator(chunk.to(self.device)).float().cpu() for chunk in z.split(batch_size)]
            else:
                parts = [self.generator(chunk.to(self.device), y.to(self.device)).float().cpu()
                         for chunk, y in zip(z.split(batch_size), labels.split(batch_size))]
        finally:
            self.generator.train(was_training)
        return torch.cat(parts) if parts else torch.empty(0, *self.data_shape)

    def __repr__(self) -> str:
        return (f"Run({self.config['arch']}/{self.config['loss']} on {self.config['dataset']}, "
                f"step {self.step}, dir={self.directory})")
