"""`swd`: sliced Wasserstein distance between Laplacian-pyramid patches (Karras et al. 2018, sec. 5).

Each image becomes a Laplacian pyramid: the finest level is the image minus its blurred,
down- and up-sampled copy (the 5x5 binomial filter of cv2.pyrDown/pyrUp, mirrored borders), each
coarser level likewise, and the coarsest level is the low-pass image itself. Levels go down by
halves from the image size to ``min_resolution`` (16 as in the paper; 8 allowed): 16 px images
have ONE level (16, the image itself), 32 px images two (32 Laplacian, 16 low-pass), and with
min_resolution=8 a 16 px image has 16 and 8. Images smaller than min_resolution get one level at
their own size (at least 7 px).
From every level, ``patches_per_image`` 7x7 patches at random positions become descriptors
(7*7*C values), normalised per channel by the mean and standard deviation of their own set
(as in the paper). Per level, SWD = mean over ``directions`` random unit directions of the 1-D
Wasserstein-1 distance between the projected descriptors of the two sets (the paper: 4 repeats
of 128 directions, the same mean). Figures are multiplied by 1e3 as in the paper's tables.
No feature network: the numbers depend only on pixels.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gantools.errors import UserError

PATCH = 7
SCALE = 1e3
_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16


def _blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """5x5 binomial filter per channel with mirrored borders: (N, C, H, W) -> same shape."""
    c = x.shape[1]
    kernel = (torch.outer(_BINOMIAL, _BINOMIAL) * gain).to(x.dtype).expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=c)


def _down(x: torch.Tensor) -> torch.Tensor:
    return _blur(x)[:, :, ::2, ::2]


def _up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero-insertion upsampling then the filter x4 (cv2.pyrUp), cropped to ``size``."""
    n, c, h, w = x.shape
    zeros = x.new_zeros(n, c, 2 * h, 2 * w)
    zeros[:, :, ::2, ::2] = x
    return _blur(zeros, 4.0)[:, :, :size[0], :size[1]]


def pyramid_levels(size: int, min_resolution: int) -> int:
    """Number of levels for images whose smaller side is ``size``."""
    levels = 1
    while size // 2 >= min_resolution:
        size, levels = size // 2, levels + 1
    return levels


def laplacian_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Finest first; the last entry is the low-pass image."""
    pyramid = [images]
    for _ in range(levels - 1):
        low = _down(pyramid[-1])
        pyramid[-1] = pyramid[-1] - _up(low, pyramid[-1].shape[-2:])
        pyramid.append(low)
    return pyramid


def random_patches(level: torch.Tensor, count: int, gen: torch.Generator) -> torch.Tensor:
    """``count`` random 7x7 patches per image: (N, C, H, W) -> (N * count, C, 7, 7)."""
    n, c, h, w = level.shape
    ys = torch.randint(0, h - PATCH + 1, (n, count, 1, 1), generator=gen)
    xs = torch.randint(0, w - PATCH + 1, (n, count, 1, 1), generator=gen)
    offsets = torch.arange(PATCH)
    rows, cols = ys + offsets[:, None], xs + offsets[None, :]  # (N, count, 7, 7)
    image = torch.arange(n)[:, None, None, None]
    patches = level[image, :, rows, cols]  # advanced indices first: (N, count, 7, 7, C)
    return patches.permute(0, 1, 4, 2, 3).reshape(n * count, c, PATCH, PATCH)


def descriptors(images: torch.Tensor, levels: int, count: int, seed: int, chunk: int = 64) -> list[torch.Tensor]:
    """Per level, normalised patch descriptors (N * count, C * 49) in float32."""
    gen = torch.Generator().manual_seed(seed)
    per_level: list[list[torch.Tensor]] = [[] for _ in range(levels)]
    for part in images.float().split(chunk):
        for i, level in enumerate(laplacian_pyramid(part, levels)):
            per_level[i].append(random_patches(level, count, gen))
    out = []
    for parts in per_level:
        desc = torch.cat(parts)  # (M, C, 7, 7)
        desc = desc - desc.mean(dim=(0, 2, 3), keepdim=True)
        desc = desc / desc.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-12)  # flat images: no 0/0
        out.append(desc.flatten(1))
    return out


def random_directions(dim: int, count: int, seed: int) -> np.ndarray:
    """(dim, count) float64 unit vectors, uniform on the sphere."""
    dirs = np.random.default_rng(seed).standard_normal((dim, count))
    return dirs / np.linalg.norm(dirs, axis=0, keepdims=True)


def sliced_wasserstein(a, b, directions: int = 512, seed: int = 0, chunk: int = 64) -> float:
    """Mean over random unit directions of the 1-D Wasserstein-1 distance between projections.

    Projections are float32 (as in the paper; sorting dominates the cost), sums float64.

    Args:
        a, b: (n, D) and (m, D) point sets; when n != m the larger is subsampled (seeded) to the
            smaller size, so the 1-D distance is the mean gap between sorted projections.
        directions: number of random directions (drawn from ``seed``).
        chunk: directions projected at once (bounds memory).
    """
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 1:
        raise ValueError(f"point sets must be non-empty (n, D) and (m, D), got {a.shape} and {b.shape}")
    if len(a) != len(b):
        rng, m = np.random.default_rng(seed + 1), min(len(a), len(b))
        a, b = (a[rng.permutation(len(a))[:m]], b) if len(a) > m else (a, b[rng.permutation(len(b))[:m]])
    dirs = random_directions(a.shape[1], directions, seed).astype(np.float32)
    total = 0.0
    for start in range(0, directions, chunk):
        block = dirs[:, start:start + chunk]
        gap = np.sort(a @ block, axis=0) - np.sort(b @ block, axis=0)  # (n, chunk)
        total += float(np.abs(gap).mean(axis=0, dtype=np.float64).sum())
    return total / directions


class SWD:
    """Sliced Wasserstein distance on 7x7 Laplacian-pyramid patches, per level and averaged (x1e3).

    Args:
        patches_per_image: random 7x7 patches per image and level.
        directions: random projection directions per level.
        min_resolution: coarsest pyramid level (16 as in the paper, or 8).
    """

    kinds = ("images",)

    def __init__(self, patches_per_image: int = 128, directions: int = 512, min_resolution: int = 16):
        if patches_per_image < 1 or directions < 1:
            raise UserError(f"swd: patches_per_image and directions must be >= 1, got "
                            f"{patches_per_image} and {directions}")
        if min_resolution < PATCH:
            raise UserError(f"swd: min_resolution must be at least {PATCH} (the patch size), got {min_resolution}")
        self.patches, self.directions, self.min_resolution = patches_per_image, directions, min_resolution

    def evaluate(self, samples, ctx) -> dict[str, Any]:
        real = ctx.real(len(samples))
        size = min(samples.shape[-2:])
        if size < PATCH:
            raise UserError(f"swd needs images of at least {PATCH}x{PATCH} pixels, got {tuple(samples.shape[-2:])}")
        levels = pyramid_levels(size, self.min_resolution)
        fake_desc = [d.numpy() for d in descriptors(samples, levels, self.patches, ctx.seed)]
        real_desc = [d.numpy() for d in descriptors(real, levels, self.patches, ctx.seed + 7919)]
        resolutions = [size]
        while len(resolutions) < levels:
            resolutions.append((resolutions[-1] + 1) // 2)  # stride-2 sampling keeps odd edges
        values = [SCALE * sliced_wasserstein(f, r, self.directions, ctx.seed + i)
                  for i, (f, r) in enumerate(zip(fake_desc, real_desc))]
        result: dict[str, Any] = {"swd": float(np.mean(values))}
        result.update({f"swd_{res}px": v for res, v in zip(resolutions, values)})
        result.update({"levels": resolutions, "scale": SCALE, "patches_per_image": self.patches,
                       "directions": self.directions, "n_fake": len(samples), "n_real": len(real),
                       "label": "sliced Wasserstein x1e3 on 7x7 Laplacian-pyramid patches (Karras et al. 2018), "
                                "pixels only"})
        return result


metric = SWD
