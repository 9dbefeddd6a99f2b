"""Own image sets at scale: the decoded-once cache against the loader it replaced (issue 14).

    python benchmarks/bench_dataset.py --dir /tmp/celeba_like --n 50000 --out /tmp/bench_dataset.json

Generates (once) a folder of N JPEGs of 178 x 218 pixels, CelebA's shape (smooth colour fields
with noise, not flat colours), then measures in fresh processes, each training the default
dcgan at --image-size 64:
- time from process start to the first training step (the trainer built, data included; and to
  the end of that step, which adds one 64 px step of compute): the previous loader
  (sequential full-resolution decoding into memory at every start, `imageio.load_image_folder`
  patched into the folder plugin), a cold start of the cache (decode in a pool + write), and a
  warm start (cache present);
- peak RSS of the training process over one step (and of the decoding workers), and the RSS that
  building the trainer (dataset included) adds: the in-memory array, or nothing for the map;
- training images/s over a few steps, in-memory array against the memory map, in separate
  processes and interleaved in blocks of steps in one process (one trainer, the same array);
- two processes that open the cached set and read all of it: their proportional share (PSS) of
  the mapping sums to one copy of the array.
Results are printed and written as JSON (--out).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WIDTH, HEIGHT = 178, 218

# Runs in a fresh process: build a trainer on the folder and time the first step. argv: folder,
# cache dir, loader ("old" or "new"), steps, batch size.
TRAIN = r"""
import json, resource, sys, time
start = time.perf_counter()
folder, cache, loader, steps, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
import gantools
from gantools.config import resolve
from gantools.registry import default_registry
from gantools.trainer import Trainer
if loader == "old":  # the loader before the cache: sequential full decode into memory, every start
    from gantools import datacache, imageio
    import gantools_plugins.datasets.folder as plugin
    def old(root, size, channels, **kw):
        images, skipped = imageio.load_image_folder(root, size, channels)
        return datacache.ImageSet(images, [], skipped)
    plugin.load_folder = old
def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
registry = default_registry()
settings = {"dataset": "folder:" + folder, "image_size": 64, "loss": "gan", "batch_size": batch, "steps": steps,
            "dataset_opts": {"cache": cache}, "log_every": 10**6, "sample_every": 10**6, "checkpoint_every": 10**6}
config, sources = resolve(registry, settings)
before = rss_mib()
trainer = Trainer(registry, config, sources, cache + "/run", progress=False)
built = rss_mib()
data_s = time.perf_counter() - start
trainer.train_step()
first = time.perf_counter() - start
tick = time.perf_counter()
for _ in range(steps - 1):
    trainer.train_step()
rate = (steps - 1) * batch / (time.perf_counter() - tick) if steps > 1 else None
print(json.dumps({"first_step_s": round(first, 2), "images_per_s": rate and round(rate, 1),
                  "rss_added_by_trainer_init_mib": round(built - before, 1), "to_first_step_s": round(data_s, 2),
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                  "peak_rss_children_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}))
"""


def _make_image(args) -> None:
    path, seed = args
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    f = rng.uniform(8, 60, 3)
    phase = rng.uniform(0, 6.3, 3)
    base = np.stack([np.sin(x / f[0] + phase[0]), np.cos(y / f[1] + phase[1]), np.sin((x + y) / f[2] + phase[2])], -1)
    img = np.clip(128 + 90 * base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(path, quality=90)


def generate(folder: Path, n: int) -> None:
    """N JPEGs in sub-folders of 1000 (CelebA is one flat folder; the walk costs the same)."""
    marker = folder / ".complete"
    if marker.exists() and marker.read_text().strip() == str(n):
        return
    shutil.rmtree(folder, ignore_errors=True)
    jobs = []
    for i in range(n):
        sub = folder / f"{i // 1000:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        jobs.append((sub / f"{i:06d}.jpg", i))
    start = time.perf_counter()
    with mp.get_context("fork").Pool(os.cpu_count()) as pool:
        pool.map(_make_image, jobs, chunksize=200)
    marker.write_text(f"{n}\n")
    print(f"generated {n} JPEGs in {time.perf_counter() - start:.0f} s", file=sys.stderr)


# Runs in a fresh process: one trainer, its batches read alternately from the memory map and from
# an in-memory copy of the same array, in blocks of steps (so machine drift hits both alike).
INTERLEAVED = r"""
import json, sys, time
import numpy as np
from gantools.config import resolve
from gantools.imageio import TensorImages
from gantools.registry import default_registry
from gantools.trainer import Trainer
folder, cache, rounds, block, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
registry = default_registry()
config, sources = resolve(registry, {"dataset": "folder:" + folder, "image_size": 64, "loss": "gan",
                                     "batch_size": batch, "steps": 10**6, "dataset_opts": {"cache": cache}})
trainer = Trainer(registry, config, sources, cache + "/run", progress=False)
mapped = trainer.stream.dataset
loaders = {"memory": TensorImages(np.array(mapped._map)), "memory_map": mapped}
trainer.train_step()  # warm-up
seconds = {name: 0.0 for name in loaders}
for _ in range(rounds):
    for name, data in loaders.items():
        trainer.stream.dataset = data
        tick = time.perf_counter()
        for _ in range(block):
            trainer.train_step()
        seconds[name] += time.perf_counter() - tick
print(json.dumps({name: round(rounds * block * batch / s, 1) for name, s in seconds.items()}))
"""


def interleaved_throughput(folder: Path, cache: str, rounds: int, block: int, batch: int) -> dict:
    out = subprocess.run([sys.executable, "-c", INTERLEAVED, str(folder), cache, str(rounds), str(block), str(batch)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def train_probe(folder: Path, cache: str, loader: str, steps: int, batch: int) -> dict:
    out = subprocess.run([sys.executable, "-c", TRAIN, str(folder), cache, loader, str(steps), str(batch)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# Runs in each of two processes: open the cached set through the plugin and read every row.
SHARE = r"""
import sys, time
import numpy as np
from gantools_plugins.datasets.folder import Folder
data = Folder(cache=sys.argv[2]).build(sys.argv[1], 64, 3)
total = 0
for i in range(0, len(data), 4096):
    total += int(data.data[i:i + 4096].sum())
print("ready", flush=True)
sys.stdin.readline()  # measure once both processes have read everything
path = None
for line in open("/proc/self/maps"):
    if line.rstrip().endswith(".u8"):
        path = line.split()[-1]
rss = pss = 0
inside = False
for line in open("/proc/self/smaps"):
    parts = line.split()
    if len(parts) >= 6 and "-" in parts[0]:
        inside = parts[-1] == path
    elif inside and parts[0] == "Rss:":
        rss += int(parts[1])
    elif inside and parts[0] == "Pss:":
        pss += int(parts[1])
print(rss, pss, flush=True)
sys.stdin.read()  # hold the mapping until the other process has measured too
"""


def shared_pages(folder: Path, cache: str) -> dict:
    """Two processes read the whole cached set, then measure: each maps all of it (RSS), and the
    proportional shares (PSS) of the mapping add up to one copy."""
    procs = [subprocess.Popen([sys.executable, "-c", SHARE, str(folder), cache], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    assert [p.stdout.readline().strip() for p in procs] == ["ready", "ready"]
    for p in procs:
        p.stdin.write("measure\n")
        p.stdin.flush()
    first = [p.stdout.readline().split() for p in procs]
    for p in procs:
        p.stdin.close()
        p.wait()
    rss = [int(r) / 1024 for r, _ in first]
    pss = [int(s) / 1024 for _, s in first]
    return {"rss_mib_each": [round(v, 1) for v in rss], "pss_mib_each": [round(v, 1) for v in pss],
            "pss_mib_sum": round(pss[0] + pss[1], 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/gantools-celeba-like", help="the generated folder (kept)")
    parser.add_argument("--n", type=int, default=50000, help="images")
    parser.add_argument("--steps", type=int, default=21, help="training steps per probe (throughput on all but one)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--out", default=None, help="JSON file for the figures")
    args = parser.parse_args(argv)
    folder = Path(args.dir)
    generate(folder, args.n)
    cache = tempfile.mkdtemp(prefix="gantools-bench-cache-")
    array_mib = args.n * 3 * 64 * 64 / 2**20
    result = {"n": args.n, "array_mib": round(array_mib, 1), "cpus": os.cpu_count()}
    try:
        result["old_loader"] = train_probe(folder, cache, "old", args.steps, args.batch)
        result["cold_cache"] = train_probe(folder, cache, "new", 1, args.batch)
        result["warm_cache"] = train_probe(folder, cache, "new", 1, args.batch)
        result["warm_cache_throughput"] = train_probe(folder, cache, "new", args.steps, args.batch)
        result["images_per_s_interleaved"] = interleaved_throughput(folder, cache, 4, 5, args.batch)
        result["cold_speedup"] = round(result["old_loader"]["to_first_step_s"] / result["cold_cache"]["to_first_step_s"], 2)
        for probe in ("old_loader", "cold_cache", "warm_cache", "warm_cache_throughput"):
            result[probe]["peak_rss_over_array"] = round(result[probe]["peak_rss_mib"] / array_mib, 2)
        result["two_readers"] = shared_pages(folder, cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
