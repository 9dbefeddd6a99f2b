"""Acceptance measures of the main runs: train with `gantools run`, time it, sample, score.

    python benchmarks/run_quality.py digits --out runs/q-digits     # default DCGAN/WGAN-GP on digits
    python benchmarks/run_quality.py 25gaussians --out runs/q-grid  # mlp + wgan-gp on toy:25gaussians
    python benchmarks/run_quality.py digits -- --steps 3000         # extra flags go to gantools run

digits: 1000 samples scored by benchmarks/digits_quality.py (confident share, class coverage);
pass = confident >= 0.75, every class >= 4%, training <= 10 minutes.
25gaussians: 2500 samples (`gantools sample --npz`) scored by benchmarks/toy_modes.py;
pass = 25/25 modes, >= 90% high-quality samples, training <= 5 minutes.
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
from toy_modes import toy_modes  # noqa: E402

TASKS = {
    # name: (gantools run flags, samples, scorer, pass check, minutes allowed)
    "digits": (["--arch", "dcgan", "--loss", "wgan-gp", "--dataset", "digits"], 1000, digits_quality,
               lambda r: r["passes"], 10),
    "25gaussians": (["--arch", "mlp", "--loss", "wgan-gp", "--dataset", "toy:25gaussians"], 2500,
                    lambda s: toy_modes(s, "25gaussians"),
                    lambda r: r["modes_covered"] == 25 and r["high_quality"] >= 0.9, 5),
}


def score_checkpoints(task: str, run_dir: Path, n: int) -> dict:
    """Score every numbered checkpoint of a run, to see quality against training steps."""
    import gantools

    scorer = TASKS[task][2]
    out = {}
    for path in sorted((run_dir / "checkpoints").glob("step_*.pt")):
        result = scorer(gantools.load_run(run_dir, checkpoint=path.name).sample(n, seed=0).numpy())
        out[path.name] = {k: v for k, v in result.items() if k != "class_fractions"}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("--out", default=None, help="run directory (default: a temporary one)")
    parser.add_argument("--checkpoints", action="store_true", help="also score the numbered checkpoints")
    parser.add_argument("run_args", nargs="*", help="extra flags for gantools run (after --)")
    args = parser.parse_args(argv)
    flags, n, scorer, passes, minutes_allowed = TASKS[args.task]
    out = Path(args.out or tempfile.mkdtemp(prefix=f"gantools-{args.task}-"))
    cmd = [sys.executable, "-m", "gantools", "run", *flags, "--out", str(out), "--no-progress", *args.run_args]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    minutes = (time.perf_counter() - start) / 60
    npz = out / f"samples_{n}.npz"
    subprocess.run([sys.executable, "-m", "gantools", "sample", str(out), "--n", str(n), "--npz", str(npz),
                    "--out", str(out / f"samples_{n}.png")], check=True)
    result = scorer(np.load(npz)["samples"])
    result.update(train_minutes=round(minutes, 2), command=" ".join(cmd))
    result["passes_all"] = bool(passes(result)) and minutes <= minutes_allowed
    if args.checkpoints:
        result["by_checkpoint"] = score_checkpoints(args.task, out, n)
    print(json.dumps(result, indent=2))
    return 0 if result["passes_all"] else 1


if __name__ == "__main__":
    sys.exit(main())
