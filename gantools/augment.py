"""Augmentations of what the critic sees: random flips of real images and DiffAugment for both sides.

DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training") applies
the same random, differentiable transforms to real and fake batches right before the critic, so the
critic cannot memorise a small data set and every loss plugin (gradient penalties included) works
unchanged: it is simply handed augmented batches. The policy is the paper's
``color,translation,cutout``, in that order:

- brightness: ``x + b``, ``b ~ U[-0.5, 0.5)`` per sample;
- saturation: ``m + (x - m) * s``, ``m`` the mean over channels at each pixel, ``s ~ U[0, 2)``;
- contrast: ``m + (x - m) * c``, ``m`` the sample's mean over (C, H, W), ``c ~ U[0.5, 1.5)``;
- translation: by whole pixels, ``dy`` in [-H//8, H//8] and ``dx`` in [-W//8, W//8], zero-filled;
- cutout: zero a (H//2, W//2) rectangle (a square for square images) centred uniformly at random,
  clipped to the image.

Randomness: every per-sample draw goes through ``gantools.stepcontext.rows`` on the input's device
from torch's global RNG, in a fixed order (flip; brightness, saturation, contrast, translation dy,
dx, cutout centre row, column), so a data-parallel run draws exactly what one process would and a
resumed run (which restores the RNG states) continues the same sequence. Nothing here synchronises
with the host. Every op also takes its parameters explicitly (None: draw them).
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
import torch.nn.functional as F

from gantools import stepcontext
from gantools.errors import UserError

POLICIES = ("flip", "diffaugment")


def parse(spec: str) -> tuple[str, ...]:
    """The policies named in ``spec`` ("flip,diffaugment"), in POLICIES order, each once.

    "" and "none" mean no augmentation. Names are case- and space-insensitive.

    Raises:
        UserError: an unknown name, or "none" together with a policy.
    """
    names = {part.strip().lower() for part in spec.split(",")} - {""}
    if names == {"none"}:
        return ()
    unknown = sorted(names - set(POLICIES))
    if unknown:
        raise UserError(f"unknown augmentation {', '.join(map(repr, unknown))} in {spec!r}; "
                        f"known: {', '.join(POLICIES)} (comma-separated), or none")
    return tuple(name for name in POLICIES if name in names)


def augment_real(x: torch.Tensor, policy: str | Iterable[str]) -> torch.Tensor:
    """A real batch as the critic should see it: ``flip`` then ``diff_augment``, where ``policy`` asks.

    Args:
        x: (N, C, H, W) images in [-1, 1].
        policy: a spec for ``parse`` or the tuple it returns.
    """
    policy = _policy(policy, x)
    if "flip" in policy:
        x = flip(x)
    if "diffaugment" in policy:
        x = diff_augment(x)
    return x


def augment_fake(x: torch.Tensor, policy: str | Iterable[str]) -> torch.Tensor:
    """A generated batch as the critic should see it: ``diff_augment`` where ``policy`` asks (never
    a flip: flipping is data augmentation). Differentiable, so the generator's objective uses it too.

    Args:
        x: (N, C, H, W) images in [-1, 1].
        policy: a spec for ``parse`` or the tuple it returns.
    """
    policy = _policy(policy, x)
    return diff_augment(x) if "diffaugment" in policy else x


def _policy(policy: str | Iterable[str], x: torch.Tensor) -> tuple[str, ...]:
    policy = parse(policy) if isinstance(policy, str) else parse(",".join(policy))
    if policy and x.dim() != 4:
        raise UserError(f"augmentation ({','.join(policy)}) needs image batches (N, C, H, W), "
                        f"not shape {tuple(x.shape)}; use --augment none for this data")
    return policy


def diff_augment(x: torch.Tensor) -> torch.Tensor:
    """DiffAugment's ``color,translation,cutout`` policy with fresh draws; differentiable in ``x``."""
    x = contrast(saturation(brightness(x)))
    return cutout(translation(x))


def flip(x: torch.Tensor, which: torch.Tensor | None = None) -> torch.Tensor:
    """Mirror the images whose row of ``which`` is True left to right.

    Args:
        x: (N, C, H, W).
        which: (N,) bool; None draws each row True with probability 0.5.
    """
    if which is None:
        which = _draw(lambda n: torch.rand(n, device=x.device) < 0.5, x)
    return torch.where(which.to(x.device).view(-1, 1, 1, 1), x.flip(3), x)


def brightness(x: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
    """``x + shift`` per sample; ``shift`` (N,) defaults to draws from U[-0.5, 0.5)."""
    if shift is None:
        shift = _uniform(x, -0.5, 0.5)
    return x + _per_sample(shift, x)


def saturation(x: torch.Tensor, factor: torch.Tensor | None = None) -> torch.Tensor:
    """Scale each pixel's deviation from its mean over channels by ``factor`` (N,), default U[0, 2)."""
    if factor is None:
        factor = _uniform(x, 0.0, 2.0)
    mean = x.mean(dim=1, keepdim=True)  # (N, 1, H, W)
    return torch.lerp(mean, x, _per_sample(factor, x))  # mean + (x - mean) * factor


def contrast(x: torch.Tensor, factor: torch.Tensor | None = None) -> torch.Tensor:
    """Scale each image's deviation from its mean over (C, H, W) by ``factor`` (N,), default U[0.5, 1.5)."""
    if factor is None:
        factor = _uniform(x, 0.5, 1.5)
    # The mean over (H, W) of the channel mean: the same value as the mean over (C, H, W), whose
    # summation order follows the memory layout; this way channels_last gives contiguous's bits.
    mean = x.mean(dim=1, keepdim=True).mean(dim=(2, 3), keepdim=True)  # (N, 1, 1, 1)
    return torch.lerp(mean, x, _per_sample(factor, x))  # mean + (x - mean) * factor


def translation(x: torch.Tensor, offset: torch.Tensor | None = None) -> torch.Tensor:
    """Move each image by whole pixels, filling with zeros: ``out[..., i, j] = x[..., i - dy, j - dx]``.

    Args:
        x: (N, C, H, W).
        offset: (N, 2) integers (dy, dx); None draws dy from [-H//8, H//8] and dx from
            [-W//8, W//8], uniformly.
    """
    n, c, h, w = x.shape
    if offset is None:
        offset = torch.stack([_randint(x, -(h // 8), h // 8 + 1), _randint(x, -(w // 8), w // 8 + 1)], 1)
    offset = offset.to(x.device, torch.long)
    # Gather from a copy with a one-pixel zero border, rows then columns (gathers and their
    # scatter-add gradients never wait for the host); sources outside the image clamp onto the border.
    rows = (torch.arange(h, device=x.device) - offset[:, :1] + 1).clamp(0, h + 1)  # (N, H)
    cols = (torch.arange(w, device=x.device) - offset[:, 1:] + 1).clamp(0, w + 1)  # (N, W)
    moved = F.pad(x, (1, 1, 1, 1)).gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w + 2))  # (N, C, H, W + 2)
    moved = moved.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))  # (N, C, H, W)
    return moved.contiguous(memory_format=_memory_format(x))


def cutout(x: torch.Tensor, centre: torch.Tensor | None = None) -> torch.Tensor:
    """Zero a (H//2, W//2) rectangle of each image, clipped to the image.

    Args:
        x: (N, C, H, W).
        centre: (N, 2) integers (row, column): the rectangle covers rows
            ``row - (H//2)//2 .. row - (H//2)//2 + H//2 - 1`` (likewise columns). None draws the row
            uniformly from [0, H] when H//2 is even, [0, H - 1] when odd (likewise the column).
    """
    h, w = x.shape[2:]
    sizes = (h // 2, w // 2)
    if centre is None:
        centre = torch.stack([_randint(x, 0, h + 1 - sizes[0] % 2), _randint(x, 0, w + 1 - sizes[1] % 2)], 1)
    centre = centre.to(x.device, torch.long)
    inside = []  # per axis, (N, extent): the pixel lies within the rectangle's span on that axis
    for axis, (extent, size) in enumerate(zip((h, w), sizes)):
        position = torch.arange(extent, device=x.device) - (centre[:, axis:axis + 1] - size // 2)
        inside.append((position >= 0) & (position < size))
    cut = inside[0][:, :, None] & inside[1][:, None, :]  # (N, H, W)
    return x * (~cut).to(x.dtype)[:, None]


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if channels_last else torch.contiguous_format


def _draw(draw: Callable[[int], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``draw`` for the rows of ``x``, as one process would draw them for the global batch."""
    return stepcontext.rows(draw, x.shape[0])


def _uniform(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """(N,) float32 draws from U[low, high) on x's device (float32 whatever x's dtype, so the draws,
    and the RNG state after them, do not depend on the precision)."""
    return _draw(lambda n: torch.rand(n, device=x.device), x) * (high - low) + low


def _randint(x: torch.Tensor, low: int, high: int) -> torch.Tensor:
    """(N,) integer draws from [low, high) on x's device."""
    return _draw(lambda n: torch.randint(low, high, (n,), device=x.device), x)


def _per_sample(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return values.to(x.device, x.dtype).view(-1, 1, 1, 1)  # (N, 1, 1, 1)
