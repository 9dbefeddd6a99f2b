"""Evaluation: metric plugins (entry-point group ``gantools.metrics``) scored on a run's samples.

    gantools eval RUN_DIR [--metric NAME ...] [--n N] [--metric-opt NAME.KEY=VALUE]

``evaluate`` draws n samples from the run's generator (fixed seed), gives every metric the
samples and an ``EvalContext`` (the run, its real data, a cache directory), and returns one
JSON-able dict; ``gantools eval`` prints it as a table and writes RUN_DIR/eval.json.
Without --metric, every installed metric that applies to the run is used (``applies``).

``EvalContext.real_statistics`` keeps what metrics compute from the real data (FID's feature mean
and covariance, KID's real features) on disk, keyed by the dataset (spec, options, resolution,
channels; for a folder the dataset cache's key, for a file its size and mtime), the seed and n of
the real draw, and the metric's own name for its features (network and weights identity).
Written atomically with a digest inside; a half-written or damaged file is reported, recomputed
and replaced, never trusted.
"""
from __future__ import annotations

import hashlib
import io
import json
import time
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from gantools import datacache, fileio
from gantools.errors import PluginLoadError, UserError
from gantools.registry import Registry, default_registry


STATS_FORMAT, STATS_VERSION = "gantools-real-statistics", 1
STATS_DIR = "real_stats"
# What reading a damaged statistics file raises: truncated or foreign (BadZipFile, EOFError), a bad
# stream (zlib.error), missing members (KeyError), wrong contents or digest (ValueError), unreadable.
_DAMAGED = (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile, zlib.error)


def cache_dir() -> Path:
    """Where metrics keep what they compute once (gantools.fileio.cache_dir)."""
    return fileio.cache_dir()


class EvalContext:
    """What a metric may use besides the samples.

    Attributes:
        run: the gantools.api.Run (config, data_kind, data_shape, device, directory).
        registry: the plugin registry.
        n: number of generated samples being scored.
        seed: seed of the sample draw (metrics that draw at random derive theirs from it).
        cache_dir: directory for things computed once and reused (created on demand).
        dataset_name / dataset_arg: the run's dataset plugin and its argument (``toy:25gaussians``
            -> "toy", "25gaussians").

    ``real(n)`` gives real items; ``real_statistics(what, n, compute)`` what a metric computes
    from them, kept on disk so later evaluations of the same data skip the work.
    """

    def __init__(self, run, registry: Registry, n: int, seed: int = 0, cache: Path | None = None):
        from gantools.config import split_dataset

        self.run, self.registry, self.n, self.seed = run, registry, n, seed
        self.cache_dir = Path(cache) if cache is not None else cache_dir()
        self.dataset_name, self.dataset_arg = split_dataset(run.config["dataset"])
        self._dataset_plugin = None
        self._real: torch.Tensor | None = None
        self._all_real = False  # True once every item has been read

    def dataset_plugin(self):
        """The run's dataset plugin object (created with the run's dataset options)."""
        if self._dataset_plugin is None:
            self._dataset_plugin = self.registry.create("datasets", self.dataset_name,
                                                        self.run.config.get("dataset_opts", {}))
        return self._dataset_plugin

    def real(self, n: int | None = None) -> torch.Tensor:
        """Up to n real items of the run's training data at its resolution (all when n is None),
        in an order seeded by ``seed``, on the CPU: images (n, C, H, W) in [-1, 1] or points (n, 2).
        Only the items asked for are read (a smaller n is a prefix of a larger one), so a large
        image set is never decoded to float whole for a metric that needs a few thousand."""
        from gantools.data import load_items

        have, wanted = self._real, float("inf") if n is None else n
        if have is None or (len(have) < wanted and not self._all_real):
            have = load_items(self.run, self.dataset_name, self.dataset_arg, self.run.config.get("dataset_opts", {}),
                              n=n, seed=self.seed, registry=self.registry)
            self._real, self._all_real = have, n is None or len(have) < n
        return have if n is None else have[:n]

    def statistics_path(self, what: str, n: int) -> Path:
        """The file of ``real_statistics(what, n, ...)``: SLOT.DATA.npz, where SLOT hashes the
        dataset spec, options, item shape, seed, n and ``what``, and DATA the data's fingerprint."""
        opts = self.run.config.get("dataset_opts", {})
        slot = [STATS_FORMAT, STATS_VERSION, self.dataset_name, self.dataset_arg, opts,
                list(self.run.data_shape), self.seed, n, what]
        data = data_fingerprint(self.dataset_arg, list(self.run.data_shape))

        def digest(obj) -> str:
            return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:24]

        return self.cache_dir / STATS_DIR / f"{digest(slot)}.{digest(data)}.npz"

    def real_statistics(self, what: str, n: int, compute: Callable[[], dict]) -> dict[str, np.ndarray]:
        """Statistics of the first n real items (``real(n)``), computed once per data and kept.

        Args:
            what: names the statistics AND everything they depend on besides the data, seed and n:
                the feature network and the identity of its weights (e.g. "fid-moments/inception/
                <hash>"); a new network or new weights must give a new ``what``.
            n: the real items asked for (the key; ``compute`` reads them itself).
            compute: () -> {name: array}, called only when no sound cached copy exists.

        Returns:
            {name: numpy array}, from the cache file or from ``compute`` (then written, atomically).
        """
        path = self.statistics_path(what, n)
        key = path.stem
        if path.is_file():
            try:
                return _read_statistics(path, key)
            except _DAMAGED as exc:
                warnings.warn(f"real-data statistics {path} are damaged or unreadable "
                              f"({type(exc).__name__}: {exc}); recomputing them", stacklevel=2)
        arrays = {name: np.asarray(value) for name, value in compute().items()}
        try:
            _write_statistics(path, key, arrays)
        except OSError as exc:
            warnings.warn(f"could not cache real-data statistics in {path}: {exc}", stacklevel=2)
        return arrays


def data_fingerprint(arg: str | None, shape) -> list:
    """What a dataset's files look like now: for a folder the dataset cache's key
    (gantools.datacache: every image's path, size and mtime, plus dataset.json), for a file its
    size and mtime; [] when ``arg`` names no path (built-in data: the spec says it all)."""
    path = Path(arg).expanduser() if arg else None
    if path is None or not path.exists():
        return []
    if path.is_file():
        info = path.stat()
        return ["file", info.st_size, info.st_mtime_ns]
    labels = path / "dataset.json"
    stamp = [labels.stat().st_size, labels.stat().st_mtime_ns] if labels.is_file() else []
    size, channels = (shape[1], shape[0]) if len(shape) == 3 else (None, None)
    return ["folder", datacache.cache_key(datacache.scan(path), size, channels, stamp)]


def _digest(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.asarray(arrays[name])
        digest.update(f"{name}\0{value.dtype.str}\0{value.shape}\n".encode())
        digest.update(value.tobytes())  # C order whatever the layout
    return digest.hexdigest()


def _write_statistics(path: Path, key: str, arrays: dict[str, np.ndarray]) -> None:
    """One .npz holding ``arrays`` and a meta record (format, key, digest of the arrays), atomically;
    older entries of the same slot (the same statistics of since-changed data) are removed."""
    meta = {"format": STATS_FORMAT, "version": STATS_VERSION, "key": key, "sha256": _digest(arrays)}
    buffer = io.BytesIO()
    np.savez(buffer, _meta=np.array(json.dumps(meta)), **arrays)
    fileio.atomic_write(path, buffer.getvalue())
    slot = path.name.split(".")[0]
    for stale in path.parent.glob(f"{slot}.*.npz"):
        if stale != path:
            stale.unlink(missing_ok=True)


def _read_statistics(path: Path, key: str) -> dict[str, np.ndarray]:
    """The arrays of a statistics file; raises one of _DAMAGED unless it is whole and is ``key``'s."""
    with open(path, "rb") as handle:  # our handle: np.load leaks its own when the zip is damaged
        archive = np.load(handle, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays.pop("_meta")))
    if not isinstance(meta, dict):
        raise ValueError("no meta record")
    if (meta.get("format"), meta.get("version"), meta.get("key")) != (STATS_FORMAT, STATS_VERSION, key):
        raise ValueError("written for other data or by another version")
    if meta.get("sha256") != _digest(arrays):
        raise ValueError("contents do not match their digest")
    return arrays


def _applies(metric, ctx: EvalContext) -> str | None:
    """None when the metric applies to the run, else the reason it does not."""
    kinds = getattr(metric, "kinds", ("images",))
    if ctx.run.data_kind not in kinds:
        return f"needs {' or '.join(kinds)} data; the run has {ctx.run.data_kind}"
    check = getattr(metric, "applies", None)
    return check(ctx) if check is not None else None


def evaluate(run, metrics: list[str] | None = None, n: int = 2000, seed: int = 0,
             options: dict[str, dict[str, Any]] | None = None, registry: Registry | None = None,
             samples: torch.Tensor | None = None) -> dict[str, Any]:
    """Score a run with metric plugins.

    Args:
        run: a gantools.api.Run (gantools.load_run(dir)).
        metrics: metric names; None means every installed metric that applies to the run.
        n: generated samples drawn (ignored when ``samples`` is given).
        seed: seed of the latent draw and of the real subset.
        options: per-metric plugin options, {"fid": {"features": "digits"}}.
        samples: score these instead of drawing from the generator.

    Returns:
        {"run", "step", "n", "seed", "metrics": {name: figures}, "seconds": {name: s},
        "skipped": {name: reason}} (skipped only lists metrics not asked for by name).
    """
    registry = registry or default_registry()
    options = options or {}
    unknown = set(options) - set(metrics or registry.names("metrics"))
    if unknown:
        raise UserError(f"options for metric(s) not being computed: {', '.join(sorted(unknown))}")
    if samples is None:
        if n < 1:
            raise UserError(f"--n must be at least 1 (got {n})")
        samples = run.sample(n, seed=seed)
    ctx = EvalContext(run, registry, len(samples), seed)
    names = metrics if metrics else registry.names("metrics")
    result: dict[str, Any] = {"run": str(run.directory) if run.directory else None, "step": run.step,
                              "n": len(samples), "seed": seed, "metrics": {}, "seconds": {}, "skipped": {}}
    for name in names:
        try:
            metric = registry.create("metrics", name, options.get(name, {}))
        except PluginLoadError as exc:
            if metrics:
                raise
            result["skipped"][name] = str(exc)  # a broken plugin does not stop the others
            continue
        reason = _applies(metric, ctx)
        if reason is not None:
            if metrics:  # asked for by name: say why not, and stop
                raise UserError(f"metric '{name}' does not apply to this run: {reason}")
            result["skipped"][name] = reason
            continue
        start = time.perf_counter()
        with torch.no_grad():
            result["metrics"][name] = metric.evaluate(samples, ctx)
        result["seconds"][name] = round(time.perf_counter() - start, 3)
    return result


def write(result: dict[str, Any], path: str | Path) -> Path:
    """Write an evaluation as JSON, atomically (gantools.fileio)."""
    return fileio.atomic_write_json(path, result)


def scalar_items(figures: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in figures.items() if isinstance(v, (int, float, str, bool)) and k != "label"]


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table: one line per metric figure (lists are left to eval.json)."""
    lines = [f"{result['n']} samples, step {result['step']}"]
    for name, figures in result["metrics"].items():
        label = figures.get("label")
        lines.append(f"{name}" + (f"  [{label}]" if label else "") + f"  ({result['seconds'][name]:.1f} s)")
        for key, value in scalar_items(figures):
            text = f"{value:.4g}" if isinstance(value, float) else str(value)
            lines.append(f"  {key:<24} {text}")
    for name, reason in result.get("skipped", {}).items():
        lines.append(f"{name}: skipped ({reason})")
    return "\n".join(lines)
