"""Digits-quality measure: how many generated digits a linear classifier reads confidently.

A command-line wrapper of the `digits` metric plugin (plugins/metrics/digits.py).
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

# The measure itself is the `digits` metric plugin (gantools eval RUN --metric digits).
from gantools_plugins.metrics.digits import digits_quality  # noqa: F401  (re-exported)


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
