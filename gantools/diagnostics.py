"""Seeing inside training: the run's curves one figure per group (`gantools plot`), the critic's
gradient norm per layer (`--log-grad-norms`) and its weight histograms.

Every figure is a PNG with the numbers behind it in JSON: ``plot_run`` writes RUN/plots/GROUP.png
and RUN/plots/plots.json (the series drawn, step by step); ``save_weight_histograms`` writes
plots/weights.png and plots/weights.json.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from gantools import fileio
from gantools.report import LABELS, PROBABILITIES, _pyplot, read_metrics

GRAD_PREFIX = "grad_norm/"
CRITIC_SCORES = ("wasserstein", "penalty", "d_real", "d_fake")
SCHEDULES = ("lr", "instance_noise_std")
# group: (title, file name, a y axis on a log scale); the order of the figures
GROUPS = {
    "losses": ("losses", "losses.png", False),
    "critic": ("critic: Wasserstein estimate, penalty, mean scores", "critic.png", False),
    "probabilities": ("D(x) and D(G(z)) (mean sigmoid of the critic's logits)", "probabilities.png", False),
    "schedule": ("learning rate and schedules", "schedule.png", False),
    "throughput": ("images/s", "throughput.png", False),
    "grad_norms": ("the critic's gradient norm per layer", "grad_norms.png", True),
    "eval": ("periodic evaluation", "eval.png", False),
    "other": ("other logged values", "other.png", False),
}
PANELS_PER_KEY = ("eval", "other")  # one panel per series (their scales differ); the rest share one


def group_of(key: str) -> str:
    """The figure a metrics.jsonl column is drawn in."""
    if key.startswith(GRAD_PREFIX):
        return "grad_norms"
    if key in PROBABILITIES:
        return "probabilities"
    if key in CRITIC_SCORES:
        return "critic"
    if key in SCHEDULES:
        return "schedule"
    if key == "images_per_s":
        return "throughput"
    return "losses" if "loss" in key else "other"


def collect(rows: list[dict]) -> dict[str, dict[str, dict[str, list]]]:
    """group -> series name -> {"step": [...], "value": [...]}, from metrics.jsonl rows: training
    columns by ``group_of``, and each scalar figure of the eval rows as ``METRIC/FIGURE``."""
    groups: dict[str, dict[str, dict[str, list]]] = {}

    def add(group: str, key: str, step: int, value) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        series = groups.setdefault(group, {}).setdefault(key, {"step": [], "value": []})
        series["step"].append(step)
        series["value"].append(value)

    for row in rows:
        step = row.get("step", 0)
        if "eval" in row:
            for metric, figures in row["eval"].items():
                for name, value in (figures.items() if isinstance(figures, dict) else ()):
                    add("eval", f"{metric}/{name}", step, value)
            continue
        for key, value in row.items():
            if key != "step":
                add(group_of(key), key, step, value)
    return {g: groups[g] for g in GROUPS if g in groups}


def _draw(group: str, series: dict[str, dict[str, list]], path: Path) -> None:
    title, _, log = GROUPS[group]
    plt = _pyplot()
    panels = [[k] for k in series] if group in PANELS_PER_KEY else [list(series)]
    cols = min(len(panels), 4)
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols if cols > 1 else 7, 3.6 * rows), squeeze=False)
    for ax, keys in zip(axes.flat, panels):
        for key in keys:
            s = series[key]
            positive = [v for v in s["value"] if v > 0] if log else s["value"]
            if log and not positive:
                continue
            ax.plot(s["step"], s["value"], label=LABELS.get(key, key.removeprefix(GRAD_PREFIX)),
                    marker="." if len(s["step"]) < 30 else None)
        if log:
            ax.set_yscale("log")
        if group == "probabilities":
            ax.set_ylim(0, 1)
            ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("generator step")
        ax.set_title(keys[0] if len(panels) > 1 else title, fontsize=9)
        ax.grid(alpha=0.3)
        if len(keys) > 1 or len(panels) == 1:
            ax.legend(fontsize=7 if len(keys) > 6 else 9, ncol=2 if len(keys) > 8 else 1)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title if len(panels) > 1 else "", fontsize=10)
    _save(fig, plt, path)


def _save(fig, plt, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_run(metrics_path: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Draw a run's metrics.jsonl, one PNG per group that has data, and plots.json with every
    series drawn; returns {group: path} (empty when nothing is logged yet). Safe on a file that a
    running training is appending to: a torn last line is skipped."""
    groups = collect(read_metrics(Path(metrics_path)))
    out_dir = Path(out_dir)
    written = {}
    for group, series in groups.items():
        written[group] = out_dir / GROUPS[group][1]
        _draw(group, series, written[group])
    if written:
        record = {g: {"file": written[g].name, "title": GROUPS[g][0], "series": groups[g]} for g in groups}
        fileio.atomic_write_json(out_dir / "plots.json", record)
    return written


# ---- the critic's gradients and weights ----------------------------------------------------
def _layers(module: torch.nn.Module) -> dict[str, list[torch.nn.Parameter]]:
    """Parameters grouped by the module that holds them ('features.0' -> [weight, bias]); the
    prefixes of wrappers (DistributedDataParallel's 'module.', torch.compile's '_orig_mod.') dropped."""
    layers: dict[str, list[torch.nn.Parameter]] = {}
    for name, p in module.named_parameters():
        layer = name.rpartition(".")[0] or name
        for prefix in ("module.", "_orig_mod."):
            layer = layer.removeprefix(prefix)
        layers.setdefault(layer, []).append(p)
    return layers


def grad_norms(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """{'grad_norm/LAYER': the L2 norm of the layer's parameter gradients}, device tensors (no
    wait for the device); layers without gradients are left out."""
    out = {}
    for layer, params in _layers(module).items():
        grads = [p.grad for p in params if p.grad is not None]
        if grads:
            out[GRAD_PREFIX + layer] = torch.stack([g.detach().float().pow(2).sum() for g in grads]).sum().sqrt()
    return out


def save_weight_histograms(module: torch.nn.Module, path: str | Path, bins: int = 50) -> dict:
    """A histogram of each layer's weights (its parameters with more than one dimension), one panel
    per layer, and the JSON beside it (per layer: n, min, max, mean, std, and the share within 1%
    of the extremes of the layer's range: weight clipping piles weights at +-c)."""
    plt = _pyplot()
    layers = {k: torch.cat([p.detach().float().flatten().cpu() for p in ps if p.dim() > 1])
              for k, ps in _layers(module).items() if any(p.dim() > 1 for p in ps)}
    cols = min(max(len(layers), 1), 4)
    fig, axes = plt.subplots(math.ceil(max(len(layers), 1) / cols), cols, figsize=(4 * cols, 3), squeeze=False)
    record = {}
    for ax, (layer, w) in zip(axes.flat, layers.items()):
        lo, hi = float(w.min()), float(w.max())
        edge = 0.01 * (hi - lo)
        record[layer] = {"n": w.numel(), "min": lo, "max": hi, "mean": float(w.mean()), "std": float(w.std()),
                         "share_at_extremes": float(((w <= lo + edge) | (w >= hi - edge)).float().mean())}
        ax.hist(w.numpy(), bins=bins, color="tab:blue")
        ax.set_title(layer, fontsize=9)
        ax.set_xlabel("weight")
    for ax in list(axes.flat)[len(layers):]:
        ax.axis("off")
    _save(fig, plt, Path(path))
    fileio.atomic_write_json(Path(path).with_suffix(".json"), record, indent=1)
    return record
