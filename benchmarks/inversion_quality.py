"""Inverter comparison on a trained digits run, with held-out real digits (issue 4's measures).

    python -m gantools run --arch dcgan --loss wgan-gp --dataset-opt split=train --out runs/inv
    python benchmarks/inversion_quality.py runs/inv [--encoder-steps 3000] [--images 300]

Fits the encoder (unless already fitted), then scores encoder, hybrid and gradient with the one
evaluator (gantools.inversion.evaluate) on synthetic G(z) and on digits' held-out test split;
`gradient` gets the same wall-clock budget per image as `hybrid` (its steps are scaled to match),
and twice that in a second row.
Joint inverters already trained in other runs can be added with --joint RUN:NAME.
Prints one table and writes it as JSON beside the run (inverters/comparison.json).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import gantools
from gantools import inversion
from gantools.data import held_out_digits


def _row(name: str, result: dict) -> str:
    s, r = result["synthetic"], result.get("real", {})
    return (f"| {name} | {s['latent_l1']:.2f} ({s['latent_l1_random_pairs']:.2f}) | {r.get('mse', float('nan')):.4f} | "
            f"{r.get('psnr_db', float('nan')):.2f} | {r.get('cosine', float('nan')):.3f} "
            f"({r.get('cosine_random_pairs', float('nan')):.3f}) | {result['seconds_per_image'] * 1000:.1f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--encoder-steps", type=int, default=3000)
    parser.add_argument("--encoder-opt", action="append", default=["width_scale=0.125"], metavar="K=V")
    parser.add_argument("--images", type=int, default=300, help="held-out digits used")
    parser.add_argument("--synthetic", type=int, default=300)
    parser.add_argument("--hybrid-steps", type=int, default=100)
    parser.add_argument("--joint", action="append", default=[], metavar="RUN:NAME")
    args = parser.parse_args(argv)

    run = gantools.load_run(args.run_dir)
    held = held_out_digits(run)
    if held is None:
        sys.exit("train the run with --dataset-opt split=train so digits' test split is held out")
    real = held[0][:args.images]
    opts = dict(pair.split("=", 1) for pair in args.encoder_opt)
    if not inversion.inverter_path(run, "encoder").is_file():
        start = time.perf_counter()
        inversion.fit(run, "encoder", opts, steps=args.encoder_steps,
                      log=lambda step, c: print(f"encoder step {step}: {c}", file=sys.stderr)
                      if step % 500 == 0 else None)
        print(f"encoder fitted in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    results = {}
    results["encoder"] = inversion.evaluate(run, inversion.load(run, "encoder"), real, args.synthetic)
    hybrid = inversion.load(run, "hybrid", {"steps": args.hybrid_steps})
    results["hybrid"] = inversion.evaluate(run, hybrid, real, args.synthetic)
    # gradient with the hybrid's time per image: time a short run, then scale its steps.
    probe_steps = 50
    probe = inversion.evaluate(run, inversion.load(run, "gradient", {"steps": probe_steps}), real[:50], 50)
    per_step = probe["seconds_per_image"] / probe_steps
    steps = max(1, round(results["hybrid"]["seconds_per_image"] / per_step))
    results[f"gradient ({steps} steps, same time)"] = inversion.evaluate(
        run, inversion.load(run, "gradient", {"steps": steps}), real, args.synthetic)
    # The time calibration is only as good as the machine is quiet: a second row with twice the
    # steps shows whether the order of hybrid and gradient depends on it.
    results[f"gradient ({2 * steps} steps, twice the time)"] = inversion.evaluate(
        run, inversion.load(run, "gradient", {"steps": 2 * steps}), real, args.synthetic)
    for spec in args.joint:
        other, name = spec.rsplit(":", 1)
        joint_run = gantools.load_run(other)
        results[f"{name} ({Path(other).name})"] = inversion.evaluate(
            joint_run, inversion.load(joint_run, name), real, args.synthetic)
    print("| inverter | latent L1 (random pairs) | MSE | PSNR dB | cosine (random pairs) | ms per image |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, result in results.items():
        print(_row(name, result))
    out = Path(args.run_dir) / "inverters" / "comparison.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(True)
    sys.exit(main())
