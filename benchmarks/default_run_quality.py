"""Acceptance measure of the main job: train the default DCGAN/WGAN-GP on digits, time it, score it.

    python benchmarks/default_run_quality.py --out runs/quality [-- extra gantools run flags]

Trains with `gantools run` (defaults unless flags are passed through), then samples 1000 images
with `gantools sample --npz` and scores them with benchmarks/digits_quality.py. With
--checkpoints it also scores every numbered checkpoint, to see quality against training time.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits_quality import digits_quality  # noqa: E402


def score_checkpoint(run_dir: Path, checkpoint: str, n: int) -> dict:
    """Sample n images from one checkpoint through the API and score them."""
    import gantools

    run = gantools.load_run(run_dir, checkpoint=checkpoint)
    return digits_quality(run.sample(n, seed=0).numpy())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="run directory (default: a temporary one)")
    parser.add_argument("--n", type=int, default=1000, help="samples to score")
    parser.add_argument("--checkpoints", action="store_true", help="also score numbered checkpoints")
    parser.add_argument("run_args", nargs="*", help="extra flags for gantools run (after --)")
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="gantools-quality-"))
    cmd = [sys.executable, "-m", "gantools", "run", "--out", str(out), "--no-progress", *args.run_args]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    minutes = (time.perf_counter() - start) / 60
    npz = out / "samples_1000.npz"
    subprocess.run([sys.executable, "-m", "gantools", "sample", str(out), "--n", str(args.n),
                    "--npz", str(npz), "--out", str(out / "samples_1000.png")], check=True)
    result = digits_quality(np.load(npz)["samples"])
    result["train_minutes"] = round(minutes, 2)
    result["command"] = " ".join(cmd)
    if args.checkpoints:
        result["by_checkpoint"] = {
            p.name: {k: v for k, v in score_checkpoint(out, p.name, args.n).items() if k != "class_fractions"}
            for p in sorted((out / "checkpoints").glob("step_*.pt"))}
    print(json.dumps(result, indent=2))
    return 0 if result["passes"] and minutes <= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
