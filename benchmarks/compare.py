"""Train a grid of architectures x losses with equal budgets and score them with one table.

    python benchmarks/compare.py --out runs/compare --minutes 3            # {dcgan, resnet} x {gan, wgan, wgan-gp} on digits
    python benchmarks/compare.py --out runs/toy --dataset toy:25gaussians --archs mlp --losses gan,wgan-gp

Each cell is `gantools run --arch A --loss L --dataset D` with the same wall-clock budget
(--minutes: `--time-limit`, steps reached are reported) or the same number of steps (--steps,
or the dataset's recommendation when neither is given), then `gantools eval` with the metrics
that apply (digits: digits, fid, kid, swd; 2-D mixtures: modes). Runs are sequential, so each
has the machine to itself; existing cells are re-scored, not retrained (--retrain to redo).
Writes OUT/compare.json and OUT/compare.md (the markdown table) and prints the table.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

COLUMNS = {
    # metric figure -> column title
    ("digits", "confident"): "digits confident",
    ("digits", "classes_covered"): "classes",
    ("digits", "kl_to_uniform"): "class KL",
    ("fid", "fid"): "FID (digits feat.)",
    ("kid", "kid"): "KID x1e3 (digits feat.)",
    ("swd", "swd"): "SWD x1e3",
    ("modes", "modes_covered"): "modes",
    ("modes", "high_quality"): "high quality",
}


def _images_per_s(run_dir: Path) -> float:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rates = [r["images_per_s"] for r in rows if "images_per_s" in r]
    return sum(rates) / len(rates) if rates else float("nan")


def train_cell(out: Path, arch: str, loss: str, dataset: str, minutes: float | None, steps: int | None,
               extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "gantools", "run", "--arch", arch, "--loss", loss, "--dataset", dataset,
           "--out", str(out), "--no-progress", *extra]
    if minutes:
        cmd += ["--time-limit", str(minutes), "--steps", str(steps or 1_000_000)]
    elif steps:
        cmd += ["--steps", str(steps)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return {"train_minutes": round((time.perf_counter() - start) / 60, 2), "command": " ".join(cmd[1:])}


def score_cell(out: Path, metrics: list[str], n: int) -> dict:
    cmd = [sys.executable, "-m", "gantools", "eval", str(out), "--n", str(n)]
    for metric in metrics:
        cmd += ["--metric", metric]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "eval.json").read_text())


def _cell_text(metric: str, key: str, result: dict) -> str:
    value = result["metrics"].get(metric, {}).get(key)
    if value is None:
        return "-"
    if metric == "kid":
        return f"{1e3 * value:.2f}"
    if metric == "swd":
        return f"{value:.1f}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def table(rows: list[dict]) -> str:
    present = [c for c in COLUMNS if any(c[0] in r["eval"]["metrics"] for r in rows)]
    head = ["arch", "loss", "steps", "images/s", "train min", *[COLUMNS[c] for c in present]]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [r["arch"], r["loss"], str(r["steps"]), f"{r['images_per_s']:.0f}", f"{r['train_minutes']:.2f}",
                 *[_cell_text(m, k, r["eval"]) for m, k in present]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory holding one run per cell")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--archs", default="dcgan,resnet")
    parser.add_argument("--losses", default="gan,wgan,wgan-gp")
    parser.add_argument("--minutes", type=float, default=None, help="wall-clock budget per cell")
    parser.add_argument("--steps", type=int, default=None, help="step budget per cell (or the cap with --minutes)")
    parser.add_argument("--n", type=int, default=2000, help="generated samples scored per cell")
    parser.add_argument("--metrics", default=None,
                        help="comma-separated metrics (default: digits,fid,kid,swd for digits; modes for toys)")
    parser.add_argument("--retrain", action="store_true", help="train cells again even if they exist")
    parser.add_argument("run_args", nargs="*", help="extra flags for every gantools run (after --)")
    args = parser.parse_args(argv)
    metrics = (args.metrics.split(",") if args.metrics else
               ["modes"] if args.dataset.startswith("toy:") else ["digits", "fid", "kid", "swd"])
    root = Path(args.out)
    rows = []
    for arch in args.archs.split(","):
        for loss in args.losses.split(","):
            out = root / f"{arch}-{loss}"
            info_path = out / "compare_cell.json"
            if args.retrain or not info_path.is_file():
                if out.exists() and args.retrain:
                    shutil.rmtree(out)
                info = train_cell(out, arch, loss, args.dataset, args.minutes, args.steps, args.run_args)
                info_path.write_text(json.dumps(info) + "\n")
            info = json.loads(info_path.read_text())
            result = score_cell(out, metrics, args.n)
            rows.append({"arch": arch, "loss": loss, "steps": result["step"], "images_per_s": _images_per_s(out),
                         **info, "eval": result})
            print(f"{arch}/{loss}: step {result['step']}, "
                  + ", ".join(f"{m}: {_cell_text(m, k, result)}" for m, k in COLUMNS if m in result["metrics"]),
                  file=sys.stderr, flush=True)
    text = table(rows)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.processor() or
            platform.machine(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "budget": {"minutes": args.minutes, "steps": args.steps}, "dataset": args.dataset,
            "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])}
    (root / "compare.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (root / "compare.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
