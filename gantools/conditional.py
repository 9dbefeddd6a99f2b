"""Conditional generation: networks that take class labels, built around any architecture's own.

A conditional generator maps (z, y) to images of class y: the architecture's generator, built
for z_dim + K inputs, receives z with the one-hot code of y appended (the classic cGAN of Mirza
& Osindero 2014). A conditional critic maps (x, y) to scores, built on the architecture's
critic trunk (``critic_trunk``, the critic up to its last linear map, features h):

- ``projection`` (Miyato & Koyama 2018): D(x, y) = w . h + b + embed(y) . h, the projection
  discriminator, for the Wasserstein and hinge losses;
- ``concat``: the label's one-hot code appended to the critic's input (K constant image planes,
  or K values for points), then the trunk and a linear output: the classic cGAN;
- ``acgan`` (Odena et al. 2017): an unconditional score w . h + b, plus a classifier head on h
  (``classify``) whose cross-entropy on real and generated images the trainer adds to both
  objectives.

Loss plugins keep calling ``critic(x)``: the trainer hands them ``LabelledCritic(critic, y)``,
which passes the labels of the batch along (see its docstring for batches that stack several).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gantools.errors import UserError

MODES = ("projection", "concat", "acgan")
DEFAULT_MODE = "projection"  # for losses that do not name theirs (``conditioning``)


def one_hot(y: torch.Tensor, n_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """(N,) class indices -> (N, K) one-hot codes of ``dtype``."""
    return F.one_hot(y.long(), n_classes).to(dtype)


def resolve_mode(setting: str, loss, loss_name: str) -> str | None:
    """The critic's conditioning for a run: None when unconditional; 'auto' is the loss's own
    choice (its ``conditioning`` attribute: concat for the classic GAN, projection otherwise)."""
    if setting == "off":
        return None
    if setting == "auto":
        mode = getattr(loss, "conditioning", DEFAULT_MODE)
        if mode not in MODES:
            raise UserError(f"loss '{loss_name}' names conditioning {mode!r}; choose from {', '.join(MODES)}")
        return mode
    return setting


class ConditionalGenerator(nn.Module):
    """G(z, y) = base(concat(z, one_hot(y))): ``base`` is the architecture's generator built for
    z_dim + n_classes inputs."""

    def __init__(self, base: nn.Module, n_classes: int):
        super().__init__()
        self.base, self.n_classes = base, n_classes

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.base(torch.cat([z, one_hot(y, self.n_classes, z.dtype)], dim=1))


class ConditionalCritic(nn.Module):
    """D(x, y) -> (N,) scores on the architecture's critic trunk (see the module docstring).

    Args:
        trunk: maps (N, *shape) to (N, features); for ``concat`` it was built for the input with
            the label planes appended (C + K channels, or 2 + K values).
        features: the trunk's output width.
        n_classes: K.
        mode: projection, concat or acgan.
    """

    def __init__(self, trunk: nn.Module, features: int, n_classes: int, mode: str):
        super().__init__()
        if mode not in MODES:
            raise UserError(f"conditional critic mode must be one of {', '.join(MODES)} (got {mode!r})")
        self.trunk, self.n_classes, self.mode = trunk, n_classes, mode
        self.out = nn.Linear(features, 1)
        if mode == "projection":
            self.embed = nn.Embedding(n_classes, features)
            nn.init.xavier_uniform_(self.embed.weight)  # N(0, 1) rows would swamp w . h at the start
        if mode == "acgan":
            self.classifier = nn.Linear(features, n_classes)

    def _features(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if self.mode == "concat":
            code = one_hot(y, self.n_classes, x.dtype)
            if x.ndim == 4:  # images: K constant planes
                code = code[:, :, None, None].expand(-1, -1, *x.shape[2:])
                x = torch.cat([x, code], dim=1).contiguous(memory_format=_layout(x))
            else:
                x = torch.cat([x.flatten(1), code], dim=1)
        return self.trunk(x)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self._features(x, y)
        score = self.out(h).flatten()
        if self.mode == "projection":
            score = score + (self.embed(y) * h).sum(dim=1)
        return score

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """AC-GAN's class logits (N, K) for images ``x``."""
        if self.mode != "acgan":
            raise UserError(f"only the acgan critic classifies (this one is {self.mode})")
        return self.classifier(self._features(x, None))


def _layout(x: torch.Tensor) -> torch.memory_format:
    """The layout of a batch of images, so that the label planes join it without a transposition."""
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


def build(arch, config: dict, generator_z: int, data_shape: tuple[int, ...], n_classes: int, mode: str,
          per_sample: bool) -> tuple[nn.Module, nn.Module]:
    """(G(z, y), D(x, y)) for ``mode`` from an architecture plugin (its ``critic_trunk``)."""
    make_trunk = getattr(arch, "critic_trunk", None)
    if make_trunk is None:
        raise UserError(f"architecture '{config['arch']}' has no critic_trunk, which conditional runs build "
                        f"their critic on; train it without --conditional")
    generator = ConditionalGenerator(arch.generator(generator_z + n_classes, tuple(data_shape)), n_classes)
    shape = tuple(data_shape)
    if mode == "concat":  # the trunk reads the label planes (or values) too
        shape = (shape[0] + n_classes, *shape[1:]) if len(shape) == 3 else (math.prod(shape) + n_classes,)
    trunk, features = make_trunk(shape, per_sample=per_sample)
    return generator, ConditionalCritic(trunk, features, n_classes, mode)


class LabelledCritic(nn.Module):
    """The critic as loss plugins call it, ``critic(x)``, with the labels ``y`` of the batch bound.

    Losses may score several batches in one call (real and generated concatenated, as the
    Wasserstein losses do): a batch of m x B rows gets the B labels repeated m times. Real and
    generated images of a critic step share their labels (G draws the real batch's classes), so
    the interpolates of a gradient penalty have them too.
    """

    def __init__(self, critic: ConditionalCritic, y: torch.Tensor):
        super().__init__()
        self.critic, self.y = critic, y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, b = x.shape[0], self.y.shape[0]
        if n % b:
            raise RuntimeError(f"a conditional critic got {n} inputs for {b} labels")
        return self.critic(x, self.y.repeat(n // b))


def labels_of(data) -> tuple[torch.Tensor, list[str]] | None:
    """(labels (N,) as class indices 0..K-1, class names) of a built dataset, or None without labels.

    Datasets give ``labels`` (N,) integers and may give ``classes`` (names, index = class);
    without names the classes are the label values themselves."""
    labels = getattr(data, "labels", None)
    if labels is None:
        return None
    labels = torch.as_tensor(labels, dtype=torch.long)
    names = getattr(data, "classes", None)
    n_classes = len(names) if names else int(labels.max()) + 1 if len(labels) else 0
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise UserError(f"the dataset's labels run from {int(labels.min())} to {int(labels.max())}, outside its "
                        f"{n_classes} classes")
    if n_classes < 2:
        raise UserError(f"a conditional run needs two classes or more; the dataset's labels have {n_classes}")
    return labels, list(names) if names else [str(k) for k in range(n_classes)]


def class_rows(n_classes: int, per_row: int) -> torch.Tensor:
    """Labels of a grid with one row per class: 0 x per_row, 1 x per_row, ..."""
    return torch.arange(n_classes).repeat_interleave(per_row)
