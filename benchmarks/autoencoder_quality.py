"""Autoencoders beside the GANs (issue 16): AE, DAE and VAE on digits, scored like the GAN runs.

    python benchmarks/autoencoder_quality.py --out runs/q-ae            # train ae, dae, vae, then score
    python benchmarks/autoencoder_quality.py --out runs/q-ae --score-only
    python benchmarks/autoencoder_quality.py --out runs/q-ae -- --steps 2000   # extra flags for gantools run

Each objective trains with `gantools run --loss NAME --dataset-opt split=train` (digits' test split
held out, every other setting at its default), then:
- its samples from the prior (1000, seed 0) get the `digits` metric, as the GAN runs in
  "Evaluating a run" (README) do;
- its encoder, the `autoencoder` inverter, is scored by gantools.inversion.evaluate on 300
  synthetic G(z) and the first 300 held-out digits, the figures of the inverter table
  (benchmarks/inversion_quality.py; README "Inversion").
Prints one table and writes OUT/autoencoders.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

LOSSES = ("ae", "dae", "vae")


def score(run_dir: Path, n_samples: int = 1000, n_images: int = 300) -> dict:
    """The digits metric of the run's samples and its encoder's inversion figures on held-out digits."""
    import gantools
    from gantools import inversion
    from gantools.data import held_out_digits
    from gantools_plugins.metrics.digits import digits_quality

    run = gantools.load_run(run_dir)
    held = held_out_digits(run)
    if held is None:
        raise SystemExit(f"{run_dir}: train with --dataset-opt split=train so digits' test split is held out")
    samples = digits_quality(run.sample(n_samples, seed=0))
    inverted = inversion.evaluate(run, inversion.load(run, "autoencoder"), held[0][:n_images], n_images)
    return {"digits": {k: v for k, v in samples.items() if k != "class_fractions"}, "inversion": inverted}


def _row(name: str, result: dict) -> str:
    d, s, r = result["digits"], result["inversion"]["synthetic"], result["inversion"]["real"]
    return (f"| {name} | {d['confident']:.3f} | {d['min_class_fraction']:.3f} | {s['latent_l1']:.2f} "
            f"({s['latent_l1_random_pairs']:.2f}) | {r['mse']:.4f} | {r['psnr_db']:.2f} | {r['cosine']:.3f} "
            f"({r['cosine_random_pairs']:.3f}) | {result.get('train_minutes', float('nan')):.2f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the runs (OUT/ae, OUT/dae, OUT/vae)")
    parser.add_argument("--score-only", action="store_true", help="score the runs already in --out")
    parser.add_argument("run_args", nargs="*", help="extra flags for gantools run (after --)")
    args = parser.parse_args(argv)
    out, results = Path(args.out), {}
    for loss in LOSSES:
        minutes = float("nan")
        if not args.score_only:
            cmd = [sys.executable, "-m", "gantools", "run", "--loss", loss, "--dataset-opt", "split=train",
                   "--out", str(out / loss), "--no-progress", *args.run_args]
            start = time.perf_counter()
            subprocess.run(cmd, check=True)
            minutes = (time.perf_counter() - start) / 60
        results[loss] = {**score(out / loss), "train_minutes": round(minutes, 2)}
        subprocess.run([sys.executable, "-m", "gantools", "sample", str(out / loss), "--n", "64", "--out",
                        str(out / loss / "samples_64.png")], check=True)
    print("| objective | digits confident | min class | latent L1 (random pairs) | MSE | PSNR dB "
          "| cosine (random pairs) | train min |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, result in results.items():
        print(_row(name, result))
    (out / "autoencoders.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(True)
    sys.exit(main())
