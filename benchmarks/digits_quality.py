"""Digits-quality measure: how many generated digits a linear classifier reads confidently."""
from __future__ import annotations

import argparse
import functools
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F

CONFIDENCE = 0.8
PASS_CONFIDENT = 0.75
PASS_MIN_CLASS_FRACTION = 0.04


@functools.lru_cache(maxsize=1)
def _classifier():
    """Logistic regression on all 1797 real digits' 64 pixels in [0, 1], trained once."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    data = load_digits()
    return LogisticRegression(C=100, max_iter=5000).fit(data.data / 16.0, data.target)


def _to_pixels(samples) -> np.ndarray:
    """Average channels, pool to 8x8 and map [-1, 1] to [0, 1]: (N, 64) float64."""
    x = torch.as_tensor(np.asarray(samples), dtype=torch.float32)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3) or min(x.shape[2:]) < 8:
        raise ValueError(f"samples must be (N, 1 or 3, H, W) with H, W >= 8, got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("samples are empty")
    x = F.adaptive_avg_pool2d(x.mean(dim=1, keepdim=True), 8)
    return ((x.clamp(-1, 1) + 1) / 2).reshape(len(x), 64).double().numpy()


def digits_quality(samples) -> dict:
    """Score generated digits.

    Args:
        samples: (N, 1, H, W) or (N, 3, H, W) images in [-1, 1], H and W multiples of 8
            (e.g. 16 or 32); 3 channels are averaged.

    Returns:
        ``n``, ``confident`` (fraction whose top class probability is >= 0.8),
        ``class_fractions`` (fraction of samples whose top class is each digit 0..9),
        ``min_class_fraction`` and ``passes`` (confident >= 0.75 and min fraction >= 0.04).
    """
    probabilities = _classifier().predict_proba(_to_pixels(samples))
    top = probabilities.argmax(axis=1)
    confident = float((probabilities.max(axis=1) >= CONFIDENCE).mean())
    fractions = [float(f) for f in np.bincount(top, minlength=10) / len(top)]
    return {
        "n": int(len(top)),
        "confident": confident,
        "class_fractions": fractions,
        "min_class_fraction": min(fractions),
        "passes": confident >= PASS_CONFIDENT and min(fractions) >= PASS_MIN_CLASS_FRACTION,
    }


def real_digits_reference(image_size: int = 16) -> dict:
    """The measure on the real digits, resized by the digits plugin and pooled back.

    Args:
        image_size: the resolution the digits plugin resizes to before pooling.
    """
    from gantools_plugins.datasets.digits import dataset

    images = dataset().build(None, image_size, 1)
    return digits_quality(images.get_batch(torch.arange(len(images))))


def main(argv=None) -> int:
    """CLI: print the measure of SAMPLES.npz (array ``samples``) or of the real digits."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("samples", nargs="?", help="npz file holding an array 'samples'")
    parser.add_argument("--reference", action="store_true",
                        help="score the real digits instead (at --image-size)")
    parser.add_argument("--image-size", type=int, default=16,
                        help="resolution for --reference (default 16)")
    args = parser.parse_args(argv)
    if args.reference:
        print(json.dumps(real_digits_reference(args.image_size)))
        return 0
    if args.samples is None:
        parser.error("give SAMPLES.npz or --reference")
    try:
        with np.load(args.samples) as archive:
            samples = archive["samples"]
        result = digits_quality(samples)
    except (OSError, KeyError, ValueError) as exc:
        print(f"digits_quality: {args.samples}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
