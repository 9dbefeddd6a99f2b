"""Toy mode coverage: how many mixture modes generated 2-D points cover, and how precisely.

A command-line wrapper of the `modes` metric plugin (plugins/metrics/modes.py).
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from gantools_plugins.datasets.toy import dataset as toy_dataset
from gantools_plugins.metrics.modes import mode_coverage


def toy_modes(samples, name: str = "25gaussians") -> dict:
    """The `modes` metric (plugins/metrics/modes.py) against toy:NAME (8gaussians or 25gaussians)."""
    toy = toy_dataset()
    return mode_coverage(samples, toy.modes(name), toy.std(name))


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
