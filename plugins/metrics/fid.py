"""`fid`: Fréchet distance between Gaussians fitted to features of generated and real images.

FID = ||mu_f - mu_r||^2 + Tr(S_f + S_r - 2 (S_f S_r)^(1/2))  (Heusel et al. 2017).

Only ``features=inception`` (the FID Inception-v3, weights from a local file) gives the FID that
papers report; the digits-CNN and random features give figures for comparing runs with each
other, and the result's "label" says which features were used. FID is biased upwards at small
n: compare figures computed with the same n. Generated images are rounded to 8 bits before
the network sees them, as real images read from files are.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gantools.errors import UserError
from gantools_plugins.metrics import _features


def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0)."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def moments(feats) -> dict[str, np.ndarray]:
    """{"mean": (D,), "cov": (D, D) unbiased, "n": ()} of (n, D) features, float64."""
    x = torch.as_tensor(np.asarray(feats), dtype=torch.float64)
    return {"mean": x.mean(0).numpy(), "cov": torch.atleast_2d(torch.cov(x.T)).numpy(), "n": np.array(len(x))}


def trace_sqrt_product(cov_a, cov_b) -> float:
    """Tr((S_a S_b)^(1/2)) of two symmetric PSD matrices.

    Computed as the sum of square roots of the eigenvalues of the symmetric PSD matrix
    S_a^(1/2) S_b S_a^(1/2) (same spectrum as S_a S_b), so no complex matrix square root or
    ad-hoc diagonal offset is needed; round-off negatives are clipped. Float64 throughout.
    """
    a, b = torch.as_tensor(cov_a, dtype=torch.float64), torch.as_tensor(cov_b, dtype=torch.float64)
    root_a = _sqrt_psd(a)
    middle = root_a @ b @ root_a
    return float(torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum())


def frechet_from_moments(mean_a, cov_a, mean_b, cov_b) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), clipped at 0 (round-off)."""
    diff = np.asarray(mean_a, np.float64) - np.asarray(mean_b, np.float64)
    value = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt_product(cov_a, cov_b)
    return max(float(value), 0.0)


def frechet_distance(feats_a, feats_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (torch.linalg, float64:
    it honours torch's thread setting).

    Args:
        feats_a, feats_b: (n, D) and (m, D) features (numpy arrays or tensors), n, m >= 2.
    """
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be (n, D) and (m, D), got {tuple(a.shape)} and {tuple(b.shape)}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the Fréchet distance needs at least 2 samples per set")
    ma, mb = moments(a), moments(b)
    return frechet_from_moments(ma["mean"], ma["cov"], mb["mean"], mb["cov"])


class FID:
    """Fréchet distance between features of the samples (quantised to 8 bits) and of as many
    real images (capped by the real data size). The real images' mean and covariance are cached
    on disk (gantools.metrics.EvalContext.real_statistics), so a second evaluation of the same
    data, features and n never runs the network on real images.

    Args:
        features: "auto" (inception when weights are given, else digits on a digits run, else
            random), "inception", "digits" or "random"; see gantools_plugins.metrics._features.
        weights: path of the FID Inception weights (pt_inception-2015-12-05-6726825d.pth);
            empty: $GANTOOLS_INCEPTION_WEIGHTS.
        batch_size: images per forward pass of the feature network.
    """

    kinds = ("images",)

    def __init__(self, features: str = "auto", weights: str = "", batch_size: int = 200):
        _features.check_options("fid", features, batch_size)
        self.features, self.weights, self.batch_size = features, weights, batch_size

    def evaluate(self, samples, ctx) -> dict[str, Any]:
        extract = _features.extractor(self.features, self.weights, ctx)
        fake = _features.fake_features(extract, samples, self.batch_size, ctx)
        real = _features.real_statistics(extract, "fid-moments", moments, self.batch_size, len(samples), ctx)
        n_real = int(real["n"])
        if len(fake) < 2 or n_real < 2:
            raise UserError(f"fid needs at least 2 generated and 2 real images (got {len(fake)} and {n_real})")
        own = moments(fake)
        value = frechet_from_moments(own["mean"], own["cov"], real["mean"], real["cov"])
        return {"fid": value, "features": extract.name, "label": extract.label("FID"),
                "feature_dim": int(fake.shape[1]), "n_fake": len(fake), "n_real": n_real, **extract.info}


metric = FID
