"""`is`: the Inception Score (Salimans et al. 2016), exp(E_x KL(p(y|x) || p(y))), mean and std over splits.

p(y|x) is the softmax over the 1008 classes of the FID Inception-v3 (the TF graph 2015-12-05 that
the original IS code used), read from the same local weights file as fid's Inception features
(option ``weights`` or $GANTOOLS_INCEPTION_WEIGHTS; nothing is downloaded), so the metric applies
only where those weights are present. As in the original code the logits are pool3 @ W with no
bias, and the samples are split into ``splits`` parts (10) whose scores give the mean and std.
Generated images are rounded to 8 bits first, and one network pass is shared with fid and kid.
IS ranges from 1 (every sample gets the same prediction, or none is confident) to the number of
classes; it knows ImageNet's classes only, so on digits or faces its numbers say little.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gantools.errors import UserError
from gantools_plugins.metrics import _features


def inception_score(logits, splits: int = 10) -> tuple[float, float]:
    """Mean and standard deviation over ``splits`` parts of exp(mean_x KL(p(y|x) || p(y))).

    Args:
        logits: (n, K) class logits of n samples (p(y|x) = softmax); n >= splits.
        splits: parts the samples are cut into (np.array_split: sizes differ by at most one);
            p(y) is each part's mean prediction.
    """
    x = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    if x.ndim != 2 or len(x) < splits or splits < 1:
        raise ValueError(f"inception_score needs (n, K) logits with n >= splits >= 1, got {tuple(x.shape)}, {splits}")
    log_p = torch.log_softmax(x, dim=1)  # (n, K) log p(y|x), stable for confident predictions
    scores = []
    for part in torch.tensor_split(log_p, splits):
        log_py = torch.logsumexp(part, dim=0) - np.log(len(part))  # (K,) log of the mean prediction
        kl = (part.exp() * (part - log_py)).sum(dim=1)  # (n_part,) KL(p(y|x) || p(y))
        scores.append(float(kl.mean().exp()))
    return float(np.mean(scores)), float(np.std(scores))


def _classifier_weight(path: str) -> torch.Tensor:
    """The (1008, 2048) softmax weights ``fc.weight`` of the Inception weights file."""
    try:
        state = torch.load(Path(path).expanduser(), map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # a file of the legacy (non-zip) format cannot be memory-mapped
        state = torch.load(Path(path).expanduser(), map_location="cpu", weights_only=True)
    weight = state.get("fc.weight") if isinstance(state, dict) else None
    if not torch.is_tensor(weight) or weight.ndim != 2 or weight.shape[1] != 2048:
        raise UserError(f"is: the Inception weights {path} hold no 2048-input classifier 'fc.weight' "
                        f"(the Inception Score needs {_features.WEIGHTS_FILE} with its fc layer)")
    return weight.detach().double().clone()


class InceptionScore:
    """Inception Score of the samples (higher is better; real CIFAR-10 images score about 11.2).

    Args:
        weights: path of the FID Inception weights (pt_inception-2015-12-05-6726825d.pth);
            empty: $GANTOOLS_INCEPTION_WEIGHTS.
        splits: parts the samples are cut into; the score's mean and std are over them.
        batch_size: images per forward pass of the network.
    """

    kinds = ("images",)

    def __init__(self, weights: str = "", splits: int = 10, batch_size: int = 200):
        if splits < 1 or batch_size < 1:
            raise UserError(f"is: splits and batch_size must be at least 1, got {splits} and {batch_size}")
        self.weights, self.splits, self.batch_size = weights, splits, batch_size

    def _weights(self) -> str:
        return self.weights or os.environ.get(_features.WEIGHTS_ENV, "")

    def applies(self, ctx) -> str | None:
        path = self._weights()
        if not path:
            return (f"needs the FID Inception weights ({_features.WEIGHTS_FILE}, published by pytorch-fid): "
                    f"give is.weights=PATH or set {_features.WEIGHTS_ENV}")
        if not Path(path).expanduser().is_file():
            return f"no Inception weights file at {path}"
        return None

    def evaluate(self, samples, ctx) -> dict[str, Any]:
        if len(samples) < self.splits:
            raise UserError(f"is needs at least splits={self.splits} samples (got {len(samples)})")
        path = self._weights()
        extract = _features.extractor("inception", path, ctx)
        pool3 = torch.from_numpy(_features.fake_features(extract, samples, self.batch_size, ctx))  # (n, 2048)
        logits = pool3 @ _classifier_weight(path).T  # (n, 1008); no bias, as the original IS code
        mean, std = inception_score(logits, self.splits)
        return {"is": mean, "is_std": std, "splits": self.splits, "n": len(samples),
                "label": "Inception Score (FID Inception-v3, 1008 classes; higher is better)"}


metric = InceptionScore
