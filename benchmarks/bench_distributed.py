"""Throughput of data-parallel and mixed-precision training.

  python benchmarks/bench_distributed.py scaling [--steps 200] [--cores 2]
      images/s of the default digits run (`gantools run`, DCGAN / WGAN-GP) in 1 process with
      CORES threads against 2 processes (torchrun, gloo) with CORES/2 threads each: the same
      cores either way, so the comparison is fair on a small shared machine.
  python benchmarks/bench_distributed.py precision [--device cuda] [--rounds 50]
      critic-step images/s of the default digits run at fp32, bf16 and fp16, and with the lazy
      penalty (wgan-gp lazy=4) against every step (meant for a GPU; runs on the CPU too).

Images/s counts critic images (batch * n_critic per iteration), as metrics.jsonl does; the first
logged row (warm-up) is left out.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _images_per_s(run_dir: Path) -> float:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rates = [r["images_per_s"] for r in rows if "images_per_s" in r][1:]
    return sum(rates) / len(rates)


def scaling(steps: int, cores: int) -> list[dict]:
    """Train the default run for ``steps`` in 1 and in 2 processes; images/s and wall time of each."""
    flags = ["run", "--steps", str(steps), "--log-every", str(max(steps // 8, 1)), "--sample-every", str(10 * steps),
             "--checkpoint-every", str(10 * steps), "--no-progress"]
    layouts = [("1 process", 1, cores), ("2 processes (torchrun, gloo)", 2, max(cores // 2, 1))]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, nproc, threads in layouts:
            out = Path(tmp) / f"p{nproc}"
            launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                         str(nproc), "-m", "gantools"] if nproc > 1 else [sys.executable, "-m", "gantools"])
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            start = time.perf_counter()
            proc = subprocess.run([*launcher, *flags, "--out", str(out)], env=env, capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(f"{label} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
            wall = time.perf_counter() - start
            results.append({"layout": label, "threads_per_process": threads, "images_per_s": _images_per_s(out),
                            "wall_s": wall})
    return results


def precision(device: str, rounds: int, block: int = 4) -> list[dict]:
    """Critic-step images/s of the default digits run per precision, and lazy=4 against lazy=1.

    The variants take turns, ``block`` critic steps each per round (a multiple of 4, so every
    lazy block holds one penalty step), and each reports its median block: drifting load from
    other jobs on a shared machine hits all of them alike.
    """
    import statistics

    import torch

    from gantools.config import resolve
    from gantools.registry import default_registry
    from gantools.trainer import Trainer

    variants = [("fp32", 1), ("bf16", 1), ("fp16", 1), ("fp32", 4), ("bf16", 4)]
    trainers, times = [], [[] for _ in variants]
    with tempfile.TemporaryDirectory() as tmp:
        for mode, lazy in variants:
            config, sources = resolve(default_registry(), {"device": device, "precision": mode,
                                                           "loss_opts": {"lazy": lazy}})
            trainer = Trainer(default_registry(), config, sources, Path(tmp) / "t", progress=False)
            for _ in range(8):  # warm-up (and the fp16 loss scale settling)
                trainer.critic_step()
            trainers.append(trainer)
        for _ in range(rounds):
            for trainer, spent in zip(trainers, times):
                if trainer.device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                for _ in range(block):
                    trainer.critic_step()
                if trainer.device.type == "cuda":
                    torch.cuda.synchronize()
                spent.append(time.perf_counter() - start)
    return [{"precision": mode, "lazy": lazy, "device": str(trainer.device),
             "critic_images_per_s": block * trainer.config["batch_size"] / statistics.median(spent)}
            for (mode, lazy), trainer, spent in zip(variants, trainers, times)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["scaling", "precision"])
    parser.add_argument("--steps", type=int, default=200, help="scaling: training iterations per run")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="scaling: threads in all")
    parser.add_argument("--device", default="auto", help="precision: auto, cpu or cuda")
    parser.add_argument("--rounds", type=int, default=15, help="precision: timed blocks of 4 critic steps per variant")
    args = parser.parse_args(argv)
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    rows = scaling(args.steps, args.cores) if args.what == "scaling" else precision(args.device, args.rounds)
    for row in rows:
        print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
