"""Mode coverage of 2-D samples against a gaussian mixture (Unrolled GAN / VEEGAN / PacGAN protocol).

A sample is high quality when its Euclidean distance to the nearest mode is at most 3 standard
deviations of the mixture's components (exact samples score 1 - exp(-4.5) = 0.989); a mode is
covered when at least 1% of its expected share of samples (0.01 * N / K) are high-quality
samples nearest to it. Applies to runs on a dataset whose plugin knows its modes
(``modes(arg)`` and ``std(arg)``, as toy:8gaussians and toy:25gaussians do).
"""
from __future__ import annotations

import numpy as np

from gantools.errors import UserError

STD_RADIUS = 3.0
MIN_SHARE = 0.01


def mode_coverage(points, modes, std: float, radius: float = STD_RADIUS, min_share: float = MIN_SHARE) -> dict:
    """Score 2-D points against mixture centres.

    Args:
        points: (N, 2) samples in data units.
        modes: (K, 2) mixture centres.
        std: per-coordinate standard deviation of each component.
        radius: high-quality radius in standard deviations.
        min_share: fraction of a mode's expected share of samples that covers it.

    Returns:
        ``n``, ``n_modes`` (K), ``modes_covered``, ``high_quality`` (fraction of samples) and
        ``mode_counts`` (high-quality samples nearest to each mode).
    """
    points = np.asarray(points, dtype=np.float64)
    modes = np.asarray(modes, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(f"samples must be (N, 2) points, got shape {points.shape}")
    distances = np.linalg.norm(points[:, None, :] - modes[None, :, :], axis=2)
    nearest = distances.argmin(axis=1)
    close = distances[np.arange(len(points)), nearest] <= radius * std
    counts = np.bincount(nearest[close], minlength=len(modes))
    return {
        "n": int(len(points)),
        "n_modes": int(len(modes)),
        "modes_covered": int((counts >= min_share * len(points) / len(modes)).sum()),
        "high_quality": float(close.mean()),
        "mode_counts": [int(c) for c in counts],
    }


class Modes:
    """`modes` metric: modes covered and share of high-quality samples.

    Args:
        radius: high-quality radius in standard deviations (3 in the papers).
        min_share: a mode is covered by min_share * N / K high-quality samples (0.01).
    """

    kinds = ("points",)

    def __init__(self, radius: float = STD_RADIUS, min_share: float = MIN_SHARE):
        if radius <= 0 or not 0 < min_share <= 1:
            raise UserError(f"modes needs radius > 0 and min_share in (0, 1] (got {radius}, {min_share})")
        self.radius, self.min_share = radius, min_share

    def applies(self, ctx) -> str | None:
        plugin = ctx.dataset_plugin()
        if getattr(plugin, "modes", None) is None or getattr(plugin, "std", None) is None:
            return f"dataset {ctx.dataset_name} does not say where its modes are"
        try:
            plugin.modes(ctx.dataset_arg)
        except UserError as exc:
            return str(exc)
        return None

    def evaluate(self, samples, ctx) -> dict:
        plugin = ctx.dataset_plugin()
        return mode_coverage(samples.numpy(), plugin.modes(ctx.dataset_arg), plugin.std(ctx.dataset_arg),
                             self.radius, self.min_share)


metric = Modes
