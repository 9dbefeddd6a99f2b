"""Build the networks of a run from its plugin names and options (training and loading alike)."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gantools import conditional
from gantools.errors import UserError
from gantools.registry import Registry


@dataclass
class Models:
    """The plugins and networks of one run."""

    arch: Any
    loss: Any
    generator: nn.Module
    critic: nn.Module
    generator_ema: nn.Module | None
    memory_format: torch.memory_format = torch.preserve_format  # the networks' layout (and their inputs')
    conditioning: str | None = None  # a conditional run's critic (gantools.conditional.MODES), else None
    n_classes: int = 0
    encoder: nn.Module | None = None  # an autoencoder run's (--loss ae|dae|vae), which has no critic


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; an unavailable cuda is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name} requested but CUDA is not available here (torch {torch.__version__})")
    return torch.device(name)


def memory_format(config: dict[str, Any], data_shape: tuple[int, ...]) -> torch.memory_format:
    """The layout a run's networks train in: channels-last (NHWC) for images unless the config's
    ``channels_last`` says otherwise (None: on for images, measured faster on CPU, see RESULTS.md)."""
    channels_last = config.get("channels_last")
    if channels_last is None:
        channels_last = len(data_shape) == 3
    if not channels_last:
        return torch.preserve_format
    if len(data_shape) != 3:
        raise UserError(f"--channels-last applies to image data; the dataset has items of shape {tuple(data_shape)}")
    return torch.channels_last


def build_models(registry: Registry, config: dict[str, Any], data_shape: tuple[int, ...],
                 device: torch.device, n_classes: int = 0) -> Models:
    """Create the architecture and loss plugins and the generator/critic for ``data_shape``, in the
    run's memory layout. Training and every reload build them here, so a reloaded run computes
    exactly what the trained one did (convolutions sum in another order in another layout).
    A conditional run (config["conditional"] not off) gets the networks of gantools.conditional
    for ``n_classes`` classes."""
    arch = registry.create("architectures", config["arch"], config["arch_opts"])
    loss = registry.create("losses", config["loss"], config["loss_opts"])
    check = getattr(arch, "check_shape", None)
    if check is not None:
        check(tuple(data_shape))
    needs = getattr(loss, "prior", None)
    if needs is not None and config["prior"] != needs:
        raise UserError(f"--loss {config['loss']} assumes the {needs} prior; drop --prior {config['prior']}")
    per_sample = bool(getattr(loss, "per_sample", False))
    mode = conditional.resolve_mode(config.get("conditional", "off"), loss, config["loss"])
    encoder = None
    if getattr(loss, "autoencoder", False):  # the generator decodes; no critic
        if mode is not None:
            raise UserError(f"--loss {config['loss']} trains an autoencoder, which is not conditional; drop --conditional")
        generator, critic = arch.generator(config["z_dim"], tuple(data_shape)), None
        encoder = loss.build_encoder(arch, tuple(data_shape), config["z_dim"])
    elif mode is None:
        generator = arch.generator(config["z_dim"], tuple(data_shape))
        critic = arch.discriminator(tuple(data_shape), per_sample=per_sample)
    else:
        generator, critic = conditional.build(arch, config, config["z_dim"], data_shape, n_classes, mode, per_sample)
    layout = memory_format(config, tuple(data_shape))
    generator, critic, encoder = (None if net is None else net.to(device, memory_format=layout)
                                  for net in (generator, critic, encoder))
    ema = None
    if config["ema"] > 0:
        ema = copy.deepcopy(generator).eval().requires_grad_(False)
    return Models(arch, loss, generator, critic, ema, layout, mode, n_classes if mode else 0, encoder)


def ema_decay(decay: float, step: int) -> float:
    """The decay used after ``step`` generator updates: warmed up as min(decay, (1 + t) / (10 + t)),
    so early averages do not drag in the random initial weights."""
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model; buffers (BatchNorm statistics) are copied."""
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.lerp_(p, 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)


def sample_prior(n: int, z_dim: int, prior: str, device: torch.device,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """n latents from the run's prior: standard normal or uniform on [-1, 1]."""
    if prior == "uniform":
        return torch.rand(n, z_dim, device=device, generator=generator) * 2 - 1
    return torch.randn(n, z_dim, device=device, generator=generator)
