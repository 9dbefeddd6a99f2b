"""The `toy` dataset: 2-D point distributions (8gaussians, 25gaussians, swissroll)."""
from __future__ import annotations

import math

import numpy as np

from gantools.errors import UserError
from gantools.imageio import TensorImages

# Measured on this project's 2-core CPU (benchmarks/RESULTS.md): on the tight 25-gaussian grid the
# published lambda = 10 and lr = 1e-4 left almost every sample between modes after 4000 steps;
# lambda = 1, lr 2e-3 and a weight average got 25/25 modes and ~86% high-quality in 5 minutes.
RECOMMENDED: dict = {
    # Measured on 25gaussians (benchmarks/RESULTS.md): a constant rate oscillates and drifts late
    # in the run; decaying it over the last 40% settles the modes. MLPs of 128 units reach the
    # same quality as 256 at twice the steps per second.
    "z_dim": 2, "batch_size": 256, "steps": 7000, "ema": 0.998, "lr_decay": "linear", "lr_decay_start": 0.6,
    "arch:mlp": {"arch_opts": {"hidden": 128}},
    "loss:wgan-gp": {"lr": 2e-3, "betas": (0.5, 0.9), "loss_opts": {"weight": 1.0}},
}

# Published definitions: the Unrolled-GAN ring, the VEEGAN/PacGAN grid, the WGAN-GP roll.
_STDS = {"8gaussians": 0.02, "25gaussians": 0.05}
_NAMES = ("8gaussians", "25gaussians", "swissroll")
_SWISSROLL_NOISE = 0.25
_SWISSROLL_SCALE = 7.5


def _check_name(arg: str | None) -> str:
    if arg not in _NAMES:
        got = "no variant" if arg is None else f"{arg!r}"
        raise UserError(f"toy dataset: choose toy:{', toy:'.join(_NAMES)} (got {got})")
    return arg


def _modes(name: str) -> np.ndarray:
    if name == "8gaussians":
        angles = np.arange(8) * (math.pi / 4)
        return 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    grid = -4.0 + 2.0 * np.arange(5)
    return np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)


def _swissroll(n: int, seed: int) -> np.ndarray:
    from sklearn.datasets import make_swiss_roll  # lazy: importing scikit-learn takes a second

    points, _ = make_swiss_roll(n, noise=_SWISSROLL_NOISE, random_state=seed)
    return points[:, [0, 2]] / _SWISSROLL_SCALE


class Toy:
    """2-D points for MLP GANs. Points are in data units, NOT scaled to [-1, 1]: the rings
    reach radius 2, the grid spans [-4, 4], the roll about [-1.7, 2].

    Args:
        n: number of points drawn (the dataset is fixed once built).
        seed: seed of the draw.
    """

    kind = "points"

    def __init__(self, n: int = 100000, seed: int = 0):
        if not isinstance(n, int) or n < 1:
            raise UserError(f"toy: n must be a positive integer, got {n!r}")
        if not isinstance(seed, int):
            raise UserError(f"toy: seed must be an integer, got {seed!r}")
        self.n = n
        self.seed = seed
        self.recommended = dict(RECOMMENDED)

    def modes(self, arg: str) -> np.ndarray:
        """Return the (K, 2) centres of a gaussian mixture (8gaussians or 25gaussians).

        Args:
            arg: the variant name.
        """
        if _check_name(arg) not in _STDS:
            raise UserError(f"toy:{arg} is not a gaussian mixture; it has no modes")
        return _modes(arg)

    def std(self, arg: str) -> float:
        """Return the per-coordinate standard deviation of each mixture component.

        Args:
            arg: the variant name (8gaussians or 25gaussians).
        """
        if _check_name(arg) not in _STDS:
            raise UserError(f"toy:{arg} is not a gaussian mixture; it has no std")
        return _STDS[arg]

    def build(self, arg: str | None, image_size: int | None = None,
              channels: int | None = None) -> TensorImages:
        """Draw ``n`` points of shape (2,); ``image_size`` and ``channels`` are ignored.

        Args:
            arg: 8gaussians, 25gaussians or swissroll.
        """
        name = _check_name(arg)
        if name == "swissroll":
            points = _swissroll(self.n, self.seed)
        else:
            rng = np.random.default_rng(self.seed)
            centres = _modes(name)[rng.integers(len(_modes(name)), size=self.n)]
            points = centres + rng.normal(scale=_STDS[name], size=(self.n, 2))
        return TensorImages(points.astype(np.float32))


dataset = Toy
