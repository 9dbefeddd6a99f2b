"""Conditional DCGAN on digits (issue 16): does `--class k` draw the digit k?

    python benchmarks/conditional_quality.py --out runs/q-cond            # train (default settings) + score
    python benchmarks/conditional_quality.py --out runs/q-cond --score-only
    python benchmarks/conditional_quality.py -- --conditional acgan       # extra flags go to gantools run

Trains `gantools run --conditional` on digits with every other setting at its default (dcgan,
wgan-gp, so the projection discriminator), then draws 100 samples per class with that class
requested and reads them with the `digits` metric's classifier (a logistic regression trained on
the real digits). A sample counts when the classifier gives its requested class a probability of
at least 0.8. Pass: >= 80% of all samples count, every class >= 60%, training <= 10 minutes.
Writes RUN/conditional_quality.json and RUN/classes.png (one row per class).
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

PER_CLASS = 100
THRESHOLD = 0.8
PASS_ALL, PASS_EACH, MINUTES = 0.8, 0.6, 10.0


def class_accuracy(samples_by_class: dict[int, np.ndarray], classifier=None) -> dict:
    """Per requested class k, the share of its samples the digits classifier reads as k with
    probability >= THRESHOLD; the overall share, the worst class and pass/fail.

    Args:
        samples_by_class: k -> images (n, 1, H, W) in [-1, 1] drawn with class k requested.
        classifier: the digits metric's classifier (default: the cached one).
    """
    from gantools_plugins.metrics.digits import load_classifier, to_pixels

    classifier = classifier or load_classifier(None)
    per_class, hits, total = {}, 0, 0
    for k, samples in sorted(samples_by_class.items()):
        probs = classifier.predict_proba(to_pixels(samples))
        good = int((probs[:, k] >= THRESHOLD).sum())
        per_class[str(k)] = round(good / len(samples), 4)
        hits, total = hits + good, total + len(samples)
    overall = hits / max(total, 1)
    worst = min(per_class.values()) if per_class else 0.0
    return {"per_class": per_class, "overall": round(overall, 4), "worst_class": worst,
            "passes": overall >= PASS_ALL and worst >= PASS_EACH}


def score_run(run_dir: Path, n: int = PER_CLASS) -> dict:
    """class_accuracy of a trained conditional run: n samples per class, seed k for class k."""
    import gantools

    run = gantools.load_run(run_dir)
    if not run.conditional:
        raise SystemExit(f"{run_dir} is not a conditional run")
    return class_accuracy({k: run.sample(n, seed=k, label=k).numpy() for k in range(len(run.classes))})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="run directory (default: a temporary one)")
    parser.add_argument("--score-only", action="store_true", help="score the run in --out without training")
    parser.add_argument("run_args", nargs="*", help="extra flags for gantools run (after --)")
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="gantools-conditional-"))
    cmd = [sys.executable, "-m", "gantools", "run", "--conditional", "--dataset", "digits", "--out", str(out),
           "--no-progress", *args.run_args]
    minutes = None
    if not args.score_only:
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        minutes = round((time.perf_counter() - start) / 60, 2)
    result = score_run(out)
    result.update(train_minutes=minutes, command=" ".join(cmd), threshold=THRESHOLD, per_class_samples=PER_CLASS)
    result["passes_all"] = bool(result["passes"]) and (minutes is None or minutes <= MINUTES)
    subprocess.run([sys.executable, "-m", "gantools", "sample", str(out), "--n", "80", "--out",
                    str(out / "classes.png")], check=True)
    (out / "conditional_quality.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["passes_all"] else 1


if __name__ == "__main__":
    sys.exit(main())
