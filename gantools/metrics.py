"""Evaluation: metric plugins (entry-point group ``gantools.metrics``) scored on a run's samples.

    gantools eval RUN_DIR [--metric NAME ...] [--n N] [--metric-opt NAME.KEY=VALUE]

``evaluate`` draws n samples from the run's generator (fixed seed), gives every metric the
samples and an ``EvalContext`` (the run, its real data, a cache directory), and returns one
JSON-able dict; ``gantools eval`` prints it as a table and writes RUN_DIR/eval.json.
Without --metric, every installed metric that applies to the run is used (``applies``).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from gantools import fileio
from gantools.errors import PluginLoadError, UserError
from gantools.registry import Registry, default_registry


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
