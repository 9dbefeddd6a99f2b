"""A run directory's files: config.json, checkpoints/, samples/, metrics.jsonl, plots, joint inverters.

    RUN/config.json               the resolved config, where each value came from, the versions
    RUN/checkpoints/latest.pt     the newest checkpoint (plus step_N.pt every checkpoint_every)
    RUN/samples/step_N.png        grids of the fixed latent batch (samples/latest.png: the newest)
    RUN/metrics.jsonl             one row of logged means per log step, eval rows {"step", "eval"}
    RUN/plots/GROUP.png           the logged curves, one figure per group, drawn at the end
                                  (plots.json: the numbers; `gantools plot` redraws them any time)
    RUN/plots/weights.png         --log-grad-norms: the critic's weights per layer at the end
    RUN/inverters/NAME.pt         a joint inverter's state, written at the end
    RUN/tensorboard/              --tensorboard: the rows, grids and config as TensorBoard events

Only one process writes: in a data-parallel run, the others hold a RunDirectory with
``writes=False`` whose methods do nothing.
"""
from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path
from typing import Any

import torch

from gantools import checkpoint as ckpt
from gantools import diagnostics, fileio, report, tblog
from gantools.registry import Registry


def versions(registry: Registry, config: dict[str, Any]) -> dict[str, Any]:
    """What made a run: gantools, torch and Python versions, and each plugin's distribution and version."""
    from gantools import __version__
    from gantools.config import split_dataset

    used = [("architectures", config["arch"]), ("losses", config["loss"]),
            ("datasets", split_dataset(config["dataset"])[0])]
    if config.get("inverter"):
        used.append(("inverters", config["inverter"]))
    plugins = {}
    for kind, name in used:
        info = registry.info(kind, name)
        plugins[f"{kind}/{name}"] = {"distribution": info.distribution, "version": info.version}
    return {"gantools": __version__, "torch": str(torch.__version__), "python": platform.python_version(),
            "plugins": plugins}


class RunDirectory:
    """Reads and writes the files of one run directory.

    Args:
        path: the run directory.
        writes: False in the processes of a data-parallel run other than rank 0.
    """

    def __init__(self, path: str | Path, writes: bool = True):
        self.path, self.writes = Path(path), writes
        self.metrics_path = self.path / "metrics.jsonl"
        self.latest = self.path / "checkpoints" / "latest.pt"
        self._metrics = None
        self._tensorboard: tblog.TensorBoardLog | None = None

    def write_config(self, record: dict[str, Any]) -> None:
        """config.json: the resolved config, its sources, data shape, versions (written atomically)."""
        if self.writes:
            fileio.atomic_write_json(self.path / "config.json", record)

    def save_checkpoint(self, state: dict[str, Any], step: int, numbered: bool) -> Path:
        """checkpoints/latest.pt, and step_N.pt too when ``numbered``."""
        if self.writes:
            ckpt.save_atomic(state, self.latest)
            if numbered:
                ckpt.save_atomic(state, self.path / "checkpoints" / f"step_{step:07d}.pt")
        return self.latest

    def save_samples(self, samples: torch.Tensor, step: int, kind: str, dataset=None, nrow: int | None = None,
                     critic: torch.nn.Module | None = None) -> Path:
        """samples/step_N.png (``nrow`` images a row; for points, the ``critic``'s level sets under
        them), rendered once and copied to samples/latest.png."""
        path = self.path / "samples" / f"step_{step:07d}.png"
        if self.writes:
            report.save_samples(samples, path, kind, dataset, nrow=nrow, critic=critic)
            shutil.copyfile(path, self.path / "samples" / "latest.png")
            if self._tensorboard is not None:
                self._tensorboard.image("samples", path, step)
        return path

    def save_inverter(self, name: str, options: dict[str, Any], state: dict[str, Any]) -> Path:
        """inverters/NAME.pt, where gantools invert finds a joint inverter's state."""
        path = self.path / "inverters" / f"{name}.pt"
        if self.writes:
            ckpt.save_inverter_state(path, name, options, state, [])
        return path

    # ---- metrics.jsonl ----
    def open_metrics(self, step: int) -> None:
        """Open metrics.jsonl for appending, dropping rows after ``step`` (a resumed run rewrites them)."""
        if self.writes:
            self.path.mkdir(parents=True, exist_ok=True)
            report.truncate_metrics(self.metrics_path, step)
            self._metrics = open(self.metrics_path, "a")

    def log(self, row: dict[str, Any]) -> None:
        """Append one row (flushed, so the file can be read while the run goes on)."""
        if self._metrics is not None:
            self._metrics.write(json.dumps(row) + "\n")
            self._metrics.flush()
        if self._tensorboard is not None:  # its numeric columns, or an eval row's scalar figures
            self._tensorboard.scalars(row.get("step", 0), diagnostics.collect([row]))

    # ---- TensorBoard ----
    def open_tensorboard(self, step: int, record: dict[str, Any]) -> None:
        """Mirror rows, grids and the config (``record``, config.json's) into RUN/tensorboard from ``step``."""
        if self.writes:
            self._tensorboard = tblog.TensorBoardLog(self.path / "tensorboard", step)
            self._tensorboard.config(record, step)

    def close_tensorboard(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None

    def close_metrics(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None

    def plot(self, critic: torch.nn.Module | None = None) -> None:
        """The figures drawn at the end of a run: plots/GROUP.png from metrics.jsonl, and with a
        ``critic`` (--log-grad-norms) the histograms of its weights, plots/weights.png."""
        if self.writes:
            diagnostics.plot_run(self.metrics_path, self.path / "plots")
            if critic is not None:
                diagnostics.save_weight_histograms(critic, self.path / "plots" / "weights.png")
