"""The plugin contracts: one place that documents what every kind of plugin provides.

A plugin is one module exposing one public object, registered under an entry-point group
(``gantools.architectures``, ``gantools.losses``, ``gantools.inverters``, ``gantools.datasets``,
``gantools.metrics``).
That object is a *factory*, usually a class: gantools calls it with the user's plugin options
as keyword arguments (``--arch-opt width=32`` -> ``factory(width=32)``) and uses the returned
instance. The factory's keyword parameters and their defaults ARE the plugin's option schema:
unknown keys are refused, and string values from the command line are converted to the type of
the default. Optional abilities are attributes read with a default (``getattr(obj, name, None)``).

The classes below are documentation and optional base classes; plugins need not inherit them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

GROUPS = {
    "architectures": "gantools.architectures",
    "losses": "gantools.losses",
    "inverters": "gantools.inverters",
    "datasets": "gantools.datasets",
    "metrics": "gantools.metrics",
}

SINGULAR = {"architectures": "architecture", "losses": "loss", "inverters": "inverter", "datasets": "dataset",
            "metrics": "metric"}

Logs = dict[str, float]


@dataclass(frozen=True)
class JointContext:
    """What the trainer gives a joint inverter (``attach(ctx)``, ``generator_loss(ctx, z, fake)``):
    the run's networks and data layout, and a source of real batches. Nothing else of the trainer
    is part of the contract.

    Attributes:
        arch, loss: the run's architecture and loss plugin objects.
        generator, critic: the networks being trained (the critic as the loss plugin sees it).
        config: the resolved run config (read it, do not change it).
        data_shape: (C, H, W) of the training images.
        z_dim, prior: the latent size and prior ("normal" or "uniform").
        device, memory_format: where the networks live and their layout (channels_last or
            preserve_format); build the inverter's networks alike.
        real_batch: returns this process's rows of the next real batch, on the device, in the layout.
    """

    arch: Any
    loss: Any
    generator: nn.Module
    critic: nn.Module
    config: dict[str, Any]
    data_shape: tuple[int, ...]
    z_dim: int
    prior: str
    device: torch.device
    memory_format: torch.memory_format
    real_batch: Callable[[], torch.Tensor]


class Architecture:
    """Builds the networks. ``image_shape`` is (C, H, W) for images or (2,) for 2-D points."""

    def generator(self, z_dim: int, image_shape: tuple[int, ...]) -> nn.Module:
        """Return G mapping (N, z_dim) latents to (N, *image_shape) samples (tanh range for images)."""
        ...

    def discriminator(self, image_shape: tuple[int, ...], *, per_sample: bool) -> nn.Module:
        """Return the critic mapping (N, *image_shape) to (N,) scores.

        Args:
            per_sample: True when the loss needs each sample's score to depend on that sample
                only (gradient penalties): no BatchNorm then; use no or layer normalisation.
        """
        ...

    # Optional: encoder_trunk(image_shape) -> (nn.Module, features: int), the critic's conv
    # trunk with fresh weights, used by encoder-style inverters.
    # Optional: check_shape(image_shape) raising gantools.errors.UserError when unsupported.


class Loss:
    """An adversarial objective. ``defaults`` are the published recipe the trainer uses unless
    the dataset recommends or the user sets something else:
    ``{"n_critic": int, "optimizer": "adam"|"rmsprop", "lr": float, "betas": (float, float)}``.
    ``per_sample`` (default False) says the critic must not couple samples (see Architecture).
    """

    defaults: dict[str, Any] = {}
    per_sample: bool = False

    def discriminator_loss(self, critic: nn.Module, real: torch.Tensor,
                           fake: torch.Tensor) -> tuple[torch.Tensor, Logs]:
        """Critic objective to MINIMISE, and logs (e.g. d_real, d_fake, wasserstein, penalty)
        as floats or detached scalar tensors (the trainer averages them between log lines)."""
        ...

    def generator_loss(self, critic: nn.Module, fake: torch.Tensor) -> tuple[torch.Tensor, Logs]:
        """Generator objective to MINIMISE, and logs."""
        ...

    # Optional: after_discriminator_step(critic) -> None, e.g. WGAN weight clipping.
    # Optional: state_dict() -> dict / load_state_dict(state), plain data the loss keeps between
    #     steps (e.g. a lazy penalty's schedule); saved in checkpoints so a resumed run continues it.


class Inverter:
    """Maps images back to latents (gantools.inversion fits, loads and scores them).

    Attributes:
        needs_fit: True (default) when ``encode`` works only after ``fit`` (a learned encoder);
            False for inverters that work from the generator alone (gradient descent on z).
        joint: True for inverters trained with the GAN (ALI, VAE-GAN) through the trainer's
            hooks, ``attach(trainer)``.
    """

    needs_fit: bool = True
    joint: bool = False

    def setup(self, run, registry=None) -> None:
        """Bind to a gantools.api.Run (generator frozen in eval mode; ``run.config``,
        ``run.data_shape``, ``run.device``) and build any networks, untrained."""
        ...

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Return latents (N, z_dim) whose generations reconstruct ``images`` (N, C, H, W)
        in [-1, 1]. Called with gradients enabled, so it may optimise through the generator."""
        ...

    # Joint inverters (joint = True), hooks called by the trainer with a JointContext ``ctx``:
    #   attach(ctx): build networks for ctx.data_shape / ctx.z_dim on ctx.device in ctx.memory_format
    #       (ctx.arch, .loss, .critic, .generator are there to use); optional attribute
    #       ``discriminator``: a module that replaces the critic in the loss plugin's critic objective;
    #   parameters(): the inverter's networks trained with the generator's optimiser;
    #   critic_inputs(real, z, fake) -> (real_in, fake_in): what the critic objective compares;
    #   generator_loss(ctx, z, fake) -> (loss, logs): the objective of G and the inverter
    #       (ctx.real_batch() gives a real batch);
    #   setup(run), encode, state_dict/load_state_dict as above (saved in the checkpoint and in
    #       RUN/inverters/NAME.pt at the end of training).
    # Post-hoc inverters with needs_fit:
    #   fit(run, steps: int | None, log: Callable[[int, dict[str, float]], None]) -> None
    #       train against the frozen generator (steps None: the inverter's default) and report
    #       costs through log(step, {"name": value});
    #   state_dict() / load_state_dict(state): what fit learnt, saved in RUN/inverters/NAME.pt.


class Dataset:
    """Training data. ``build(arg, image_size, channels)`` returns a torch Dataset whose items
    are float tensors in [-1, 1] of shape (C, H, W), or 2-D points of shape (2,).

    Attributes:
        kind: "images" or "points".
        recommended: settings this data trains best with (e.g. image_size, n_critic, lr, ema);
            the run applies them unless the user overrides them. A "loss:NAME" key holds a
            dict of settings that apply only with that loss (a recipe tuned for WGAN-GP must
            not change a weight-clipped WGAN's learning rate); an "arch:NAME" key, settings
            for one architecture (e.g. its arch_opts).
    The returned torch Dataset may offer ``get_batch(indices: LongTensor) -> Tensor`` as a
    fast path; otherwise items are stacked.
    """

    kind: str = "images"
    recommended: dict[str, Any] = {}

    def build(self, arg: str | None, image_size: int | None,
              channels: int | None) -> torch.utils.data.Dataset:
        """Load the data. ``arg`` is what follows ``name:`` on the command line (a path, a
        variant) or None; ``image_size``/``channels`` are the requested resolution and
        channel count, None meaning the data's own."""
        ...


class Metric:
    """Scores generated samples (gantools.metrics.evaluate, ``gantools eval``).

    Attributes:
        kinds: the data kinds it applies to, ("images",) and/or ("points",).
    """

    kinds: tuple[str, ...] = ("images",)

    def evaluate(self, samples: torch.Tensor, ctx) -> dict[str, Any]:
        """Figures for ``samples`` (n, C, H, W) in [-1, 1] or (n, 2) points, on the CPU, as a
        JSON-able dict of numbers (and lists). ``ctx`` is a gantools.metrics.EvalContext:
        ``ctx.real(n)`` gives real data, ``ctx.run`` the run, ``ctx.cache_dir`` a cache. A figure
        whose meaning depends on a choice the user made (e.g. FID's feature extractor) carries
        a ``"label"`` string saying so."""
        ...

    # Optional: applies(ctx) -> str | None, the reason the metric does not apply to this run
    # beyond its data kind (e.g. `modes` needs a dataset whose plugin knows its modes).
