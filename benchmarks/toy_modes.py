"""Toy mode coverage: how many mixture modes generated 2-D points cover, and how precisely."""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from gantools_plugins.datasets.toy import dataset as toy_dataset

STD_RADIUS = 3.0
MIN_SHARE = 0.01


def toy_modes(samples, name: str = "25gaussians") -> dict:
    """Score 2-D samples against a toy gaussian mixture.

    A sample is high quality when its Euclidean distance to its nearest mode is at most 3 std
    (VEEGAN's definition; exact samples score 1 - exp(-4.5) = 0.989); a mode is
    covered when at least 1% of its expected share (0.01 * N / K) of samples are high-quality
    samples nearest to it.

    Args:
        samples: (N, 2) points in data units.
        name: 8gaussians or 25gaussians.

    Returns:
        ``n``, ``n_modes`` (K), ``modes_covered`` and ``high_quality`` (fraction).
    """
    points = np.asarray(samples, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(f"samples must be (N, 2) points, got shape {points.shape}")
    toy = toy_dataset()
    modes, std = toy.modes(name), toy.std(name)
    distances = np.linalg.norm(points[:, None, :] - modes[None, :, :], axis=2)
    nearest = distances.argmin(axis=1)
    close = distances[np.arange(len(points)), nearest] <= STD_RADIUS * std
    counts = np.bincount(nearest[close], minlength=len(modes))
    return {
        "n": int(len(points)),
        "n_modes": int(len(modes)),
        "modes_covered": int((counts >= MIN_SHARE * len(points) / len(modes)).sum()),
        "high_quality": float(close.mean()),
    }


def main(argv=None) -> int:
    """CLI: print the measure of POINTS.npz (array ``samples``) as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("points", help="npz file holding an array 'samples' of shape (N, 2)")
    parser.add_argument("--dataset", default="25gaussians", choices=["8gaussians", "25gaussians"],
                        help="the mixture the points should match (default 25gaussians)")
    args = parser.parse_args(argv)
    try:
        with np.load(args.points) as archive:
            samples = archive["samples"]
        result = toy_modes(samples, args.dataset)
    except (OSError, KeyError, ValueError) as exc:
        print(f"toy_modes: {args.points}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
