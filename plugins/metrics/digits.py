"""Digits quality: a classifier's confidence in the samples, and their distance to real digits.

The classifier is a logistic regression on the 64 pixels of all 1797 real digits (scikit-learn's
8x8 digits, values mapped to [0, 1]), trained once and cached as its coefficients in the metric
cache (``digits_logreg_v1.npz``, written atomically; a damaged or unreadable cache file is
retrained and replaced, with one warning). Samples are averaged over
channels, average-pooled to 8x8 and mapped from [-1, 1] to [0, 1]. Figures: the fraction of
confident samples (top class probability >= 0.8), the class histogram of the samples' top
classes, class coverage (classes that are the top class of at least 1% of the samples) and the
KL divergence of that histogram to the uniform one (0 for perfectly balanced classes).

Confidence alone is no test of realism: most uniform noise is read confidently (0.80 at 16 px,
nearly all as one class) and every blank image is (1.0). Hence the realism figures, in the
same 8x8 [0, 1] pixel space the classifier reads: ``nearest_real_distance``, the mean Euclidean distance from each
sample to its nearest real digit (the digits plugin's 1500 training digits), and ``realism``, the
share of samples closer to a real digit than the 95th percentile (1.49) of the real digits'
own leave-one-out nearest distances (mean 1.05, ``real_nearest_distance``). Measured at 16 px:
297 held-out real digits 1.12 / realism 0.98; uniform noise 3.17 / 0; blank images 2.93 / 0.
"""
from __future__ import annotations

import functools
import io
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gantools import fileio, neighbours
from gantools.errors import UserError

CONFIDENCE = 0.8
PASS_CONFIDENT = 0.75
PASS_MIN_CLASS_FRACTION = 0.04
COVERED_FRACTION = 0.01
REALISM_PERCENTILE = 95
CACHE_NAME = "digits_logreg_v1.npz"


class Classifier:
    """A multinomial logistic regression: probabilities = softmax(pixels @ coef.T + intercept)."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray):
        self.coef, self.intercept = np.asarray(coef, np.float64), np.asarray(intercept, np.float64)
        if self.coef.shape != (10, 64) or self.intercept.shape != (10,):
            raise ValueError(f"classifier shapes {self.coef.shape}, {self.intercept.shape}")

    def predict_proba(self, pixels: np.ndarray) -> np.ndarray:
        logits = pixels @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


def train_classifier() -> Classifier:
    """Logistic regression on all real digits (deterministic: lbfgs from zero)."""
    from sklearn.datasets import load_digits  # lazy: importing scikit-learn takes a second
    from sklearn.linear_model import LogisticRegression

    data = load_digits()
    model = LogisticRegression(C=100, max_iter=5000).fit(data.data / 16.0, data.target)
    return Classifier(model.coef_, model.intercept_)


# What reading a damaged cache file raises: truncated or foreign (BadZipFile, EOFError), a bad
# compressed stream (zlib.error), missing members (KeyError), wrong contents (ValueError), unreadable.
_DAMAGED = (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile, zlib.error)


def load_classifier(cache: Path | None) -> Classifier:
    """The classifier from ``cache/digits_logreg_v1.npz``; without a cache directory, trained in memory.

    A missing cache file is trained and written (atomically). A damaged or unreadable one is
    reported with one warning, retrained and replaced; a cache that cannot be written is
    reported too, and the classifier is still returned.
    """
    if cache is None:
        return _in_memory()
    path = Path(cache) / CACHE_NAME
    if path.exists():
        try:
            return _read_cache(path)
        except _DAMAGED as exc:
            warnings.warn(f"digits metric: the cached classifier {path} is damaged or unreadable "
                          f"({type(exc).__name__}: {exc}); retraining it", stacklevel=2)
    classifier = train_classifier()
    buffer = io.BytesIO()
    np.savez(buffer, coef=classifier.coef, intercept=classifier.intercept)
    try:
        fileio.atomic_write(path, buffer.getvalue())
    except OSError as exc:
        warnings.warn(f"digits metric: could not cache the classifier in {path}: {exc}", stacklevel=2)
    return classifier


def _read_cache(path: Path) -> Classifier:
    """The classifier in an .npz cache file; raises one of _DAMAGED when it is not a sound one."""
    with open(path, "rb") as handle:  # our handle: np.load leaks its own when the zip is damaged
        archive = np.load(handle, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        classifier = Classifier(archive["coef"], archive["intercept"])
    if not (np.isfinite(classifier.coef).all() and np.isfinite(classifier.intercept).all()):
        raise ValueError("non-finite coefficients")
    return classifier


@functools.lru_cache(maxsize=1)
def _in_memory() -> Classifier:
    return train_classifier()


def to_pixels(samples) -> np.ndarray:
    """Average channels, pool to 8x8 and map [-1, 1] to [0, 1]: (N, 64) float64."""
    x = torch.as_tensor(np.asarray(samples), dtype=torch.float32)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or min(x.shape[2:]) < 8:
        raise ValueError(f"samples must be (N, C, H, W) images with H, W >= 8, got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("samples are empty")
    x = F.adaptive_avg_pool2d(x.mean(dim=1, keepdim=True), 8)
    return ((x.clamp(-1, 1) + 1) / 2).reshape(len(x), 64).double().numpy()


class Reference:
    """Real digits as classifier pixels and the scale of their own nearest-neighbour distances.

    Attributes:
        pixels: (M, 64) the digits plugin's training split at 8x8, in [0, 1].
        loo_mean: mean distance of a real digit to its nearest OTHER real digit (leave-one-out).
        threshold: the REALISM_PERCENTILE-th percentile of those leave-one-out distances.
    """

    def __init__(self, pixels: np.ndarray):
        self.pixels = np.asarray(pixels, np.float64)
        loo = nearest_distances(self.pixels, self.pixels, leave_one_out=True)
        self.loo_mean, self.threshold = float(loo.mean()), float(np.percentile(loo, REALISM_PERCENTILE))


def nearest_distances(pixels: np.ndarray, reference: np.ndarray, leave_one_out: bool = False) -> np.ndarray:
    """(N,) Euclidean distance from each row of ``pixels`` to its nearest row of ``reference``
    (gantools.neighbours' exact search); ``leave_one_out``: pixels IS the reference, and each
    row's own match is left out."""
    a, b = torch.as_tensor(pixels, dtype=torch.float64), torch.as_tensor(reference, dtype=torch.float64)
    if leave_one_out:
        return neighbours.nearest_other(b, torch.arange(len(b))).numpy()
    return neighbours.nearest(a, b, 1)[0][:, 0].numpy()


@functools.lru_cache(maxsize=1)
def real_reference() -> Reference:
    """The 1500 training digits of the digits plugin (its 297 test digits stay held out)."""
    from gantools.registry import default_registry

    data = default_registry().create("datasets", "digits", {"split": "train"}).build(None, 8, 1)
    return Reference(to_pixels(data.get_batch(torch.arange(len(data)))))


def digits_quality(samples, classifier: Classifier | None = None, reference: Reference | None = None) -> dict:
    """Score generated digits.

    Args:
        samples: (N, C, H, W) images in [-1, 1] with H, W >= 8 (channels are averaged).
        classifier: default: the in-memory classifier (trained on first use).
        reference: the real digits distances are measured to (default: ``real_reference()``).

    Returns:
        ``n``, ``confident`` (fraction with top probability >= 0.8), ``class_fractions``
        (fraction of samples whose top class is each digit 0..9), ``min_class_fraction``,
        ``classes_covered`` (classes holding >= 1% of the samples), ``kl_to_uniform`` (nats),
        ``passes`` (confident >= 0.75 and every class >= 4%), ``nearest_real_distance`` (mean
        distance to the nearest real digit, 8x8 [0, 1] pixels), ``realism`` (share of samples
        within ``realism_threshold`` of a real digit) and, for scale, ``real_nearest_distance``
        (the real digits' own leave-one-out mean).
    """
    pixels = to_pixels(samples)
    reference = reference or real_reference()
    nearest = nearest_distances(pixels, reference.pixels)
    probabilities = (classifier or _in_memory()).predict_proba(pixels)
    top = probabilities.argmax(axis=1)
    fractions = np.bincount(top, minlength=10) / len(top)
    confident = float((probabilities.max(axis=1) >= CONFIDENCE).mean())
    nonzero = fractions[fractions > 0]
    return {
        "n": int(len(top)),
        "confident": confident,
        "class_fractions": [float(f) for f in fractions],
        "min_class_fraction": float(fractions.min()),
        "classes_covered": int((fractions >= COVERED_FRACTION).sum()),
        "kl_to_uniform": float((nonzero * np.log(nonzero * 10)).sum()),
        "passes": confident >= PASS_CONFIDENT and float(fractions.min()) >= PASS_MIN_CLASS_FRACTION,
        "nearest_real_distance": float(nearest.mean()),
        "realism": float((nearest <= reference.threshold).mean()),
        "realism_threshold": reference.threshold,
        "real_nearest_distance": reference.loo_mean,
    }


class DigitsMetric:
    """`digits` metric for runs on the embedded digits (no options)."""

    kinds = ("images",)

    def applies(self, ctx) -> str | None:
        if ctx.dataset_name != "digits":
            return f"its classifier knows the digits only; the run trained on {ctx.dataset_name}"
        return None

    def evaluate(self, samples, ctx) -> dict:
        try:
            return digits_quality(samples, load_classifier(ctx.cache_dir))
        except ValueError as exc:
            raise UserError(f"digits metric: {exc}") from None


metric = DigitsMetric
