"""`kid`: kernel distance (Binkowski et al. 2018), unbiased MMD^2 between feature sets.

KID = MMD^2_u with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random
subsets. Unlike FID it is unbiased, so figures from different n compare; the mean over
``subsets`` and its standard deviation are reported (the std is 0 when n <= subset_size: every
subset is then the whole set). Features and "label" as for fid.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from gantools.errors import UserError
from gantools_plugins.metrics import _features


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^3 for all pairs: (n, d), (m, d) -> (n, m)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size sets under the polynomial kernel (diagonals left out)."""
    m = len(x)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.mean())


def kernel_inception_distance(feats_a: np.ndarray, feats_b: np.ndarray, subsets: int = 10,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of MMD^2_u over random subsets.

    Args:
        feats_a, feats_b: (n, D) and (m, D) features.
        subsets: number of subsets.
        subset_size: items drawn (without replacement) from each set per subset, capped at
            min(n, m); at least 2 are needed.
        seed: seed of the subset draws.
    """
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ValueError(f"KID needs subsets of at least 2 items (sets of {len(a)} and {len(b)})")
    rng = np.random.default_rng(seed)
    values = [mmd2_unbiased(a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


def _as_float32(feats: np.ndarray) -> dict[str, np.ndarray]:
    """Real features as cached: float32, exact (the networks compute in float32), half the bytes."""
    return {"features": np.asarray(feats, np.float32)}


class KID:
    """Kernel (Inception) distance between the samples (quantised to 8 bits) and as many real
    images, whose features are cached on disk as fid's statistics are.

    Args:
        features, weights, batch_size: the feature extractor, as for fid.
        subsets: random subsets averaged.
        subset_size: images per subset from each side (capped at the smaller set).
    """

    kinds = ("images",)

    def __init__(self, features: str = "auto", weights: str = "", batch_size: int = 200,
                 subsets: int = 10, subset_size: int = 1000):
        _features.check_options("kid", features, batch_size)
        if subsets < 1 or subset_size < 2:
            raise UserError(f"kid: subsets must be >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
        self.features, self.weights, self.batch_size = features, weights, batch_size
        self.subsets, self.subset_size = subsets, subset_size

    def evaluate(self, samples, ctx) -> dict[str, Any]:
        extractor = _features.extractor(self.features, self.weights, ctx)
        fake = _features.fake_features(extractor, samples, self.batch_size, ctx)
        real = _features.real_statistics(extractor, "kid-features", _as_float32, self.batch_size,
                                         len(samples), ctx)["features"].astype(np.float64)
        if min(len(fake), len(real)) < 2:
            raise UserError(f"kid needs at least 2 generated and 2 real images (got {len(fake)} and {len(real)})")
        mean, std = kernel_inception_distance(fake, real, self.subsets, self.subset_size, ctx.seed)
        return {"kid": mean, "kid_std": std, "features": extractor.name, "label": extractor.label("KID"),
                "feature_dim": int(fake.shape[1]), "subsets": self.subsets,
                "subset_size": min(self.subset_size, len(fake), len(real)),
                "n_fake": len(fake), "n_real": len(real), **extractor.info}


metric = KID
