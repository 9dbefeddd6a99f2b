"""`fid`: Fréchet distance between Gaussians fitted to features of generated and real images.

FID = ||mu_f - mu_r||^2 + Tr(S_f + S_r - 2 (S_f S_r)^(1/2))  (Heusel et al. 2017).

Only ``features=inception`` (the FID Inception-v3, weights from a local file) gives the FID that
papers report; the digits-CNN and random features give figures for comparing runs with each
other, and the result's "label" says which features were used. FID is biased upwards at small
n: compare figures computed with the same n.
"""
from __future__ import annotations

from typing import Any

import torch

from gantools.errors import UserError
from gantools_plugins.metrics import _features


def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0)."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance(feats_a, feats_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets.

    The trace of (S_a S_b)^(1/2) is computed as the sum of square roots of the eigenvalues of the
    symmetric PSD matrix S_a^(1/2) S_b S_a^(1/2) (same spectrum as S_a S_b), so no complex
    matrix square root or ad-hoc diagonal offset is needed; round-off negatives are clipped.
    Float64 throughout (torch.linalg: it honours torch's thread setting).

    Args:
        feats_a, feats_b: (n, D) and (m, D) features (numpy arrays or tensors), n, m >= 2.
    """
    a, b = torch.as_tensor(feats_a, dtype=torch.float64), torch.as_tensor(feats_b, dtype=torch.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be (n, D) and (m, D), got {tuple(a.shape)} and {tuple(b.shape)}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the Fréchet distance needs at least 2 samples per set")
    cov_a, cov_b = torch.atleast_2d(torch.cov(a.T)), torch.atleast_2d(torch.cov(b.T))  # (D, D), unbiased
    root_a = _sqrt_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    diff = a.mean(0) - b.mean(0)
    value = diff @ diff + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt
    return max(float(value), 0.0)


class FID:
    """Fréchet distance between features of the samples and of as many real images (capped by
    the real data size).

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
        extractor, fake, real = _features.fake_and_real(self.features, self.weights, self.batch_size, samples, ctx)
        if len(fake) < 2 or len(real) < 2:
            raise UserError(f"fid needs at least 2 generated and 2 real images (got {len(fake)} and {len(real)})")
        return {"fid": frechet_distance(fake, real), "features": extractor.name, "label": extractor.label("FID"),
                "feature_dim": int(fake.shape[1]), "n_fake": len(fake), "n_real": len(real), **extractor.info}


metric = FID
