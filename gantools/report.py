"""What a run shows a person: progress bar, sample grids or scatter plots, the loss curve."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from gantools import fileio
from gantools.data import fetch
from gantools.imageio import save_grid

CURVES = ("d_loss", "g_loss", "wasserstein", "penalty")
PROBABILITIES = ("d_real_prob", "d_fake_prob")
LABELS = {"d_real_prob": "D(x)", "d_fake_prob": "D(G(z))"}


def progress_bar(step: int, total: int):
    """A tqdm bar on stderr starting at ``step`` of ``total`` iterations."""
    from tqdm.auto import tqdm
    # Redirected to a file (nohup, CI), redraw rarely so logs stay readable.
    interval = 0.1 if sys.stderr.isatty() else 30.0
    return tqdm(total=total, initial=step, unit="it", dynamic_ncols=True, leave=True, mininterval=interval)


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt
    return plt


def save_samples(samples: torch.Tensor, path: Path, kind: str, dataset=None, nrow: int | None = None,
                 critic: torch.nn.Module | None = None) -> None:
    """An image grid for images (``nrow`` per row, default near-square); a scatter plot over (a
    subsample of) the real data for points, over the ``critic``'s level sets when one is given."""
    if kind != "points":
        # Small images are enlarged (nearest neighbour) so the grid is readable.
        save_grid(samples, path, nrow=nrow, upscale=max(1, 64 // samples.shape[-1]))
        return
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6 if critic is not None else 5, 5))
    real = None
    if dataset is not None and len(dataset):
        idx = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:2000]
        real = fetch(dataset, idx)
    if critic is not None:
        _level_sets(fig, ax, critic, torch.cat([samples, real]) if real is not None else samples)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=2, c="tab:green", alpha=0.3, label="real")
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:orange", alpha=0.6, label="generated")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=4)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def critic_surface(critic: torch.nn.Module, points: torch.Tensor, n: int = 120,
                   margin: float = 0.15) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The critic's output on an n x n grid over the box around ``points`` (N, 2), widened by
    ``margin`` of its size: (xs (n,), ys (n,), values (n, n), row i at ys[i]). The critic runs in
    eval mode without gradients, on its own device, and is put back as it was."""
    lo, hi = points.min(0).values.float(), points.max(0).values.float()
    pad = (hi - lo).clamp_min(1e-3) * margin
    xs, ys = (torch.linspace(float(lo[i] - pad[i]), float(hi[i] + pad[i]), n) for i in range(2))
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
    param = next(critic.parameters())
    training = critic.training
    critic.eval()
    try:
        with torch.no_grad():
            values = critic(grid.to(param.device, param.dtype)).float().cpu().reshape(n, n)
    finally:
        critic.train(training)
    return xs, ys, values


def _level_sets(fig, ax, critic: torch.nn.Module, points: torch.Tensor) -> None:
    xs, ys, values = critic_surface(critic, points)
    filled = ax.contourf(xs.numpy(), ys.numpy(), values.numpy(), levels=20, cmap="coolwarm", alpha=0.45)
    ax.contour(xs.numpy(), ys.numpy(), values.numpy(), levels=10, colors="k", linewidths=0.4, alpha=0.5)
    fig.colorbar(filled, ax=ax, fraction=0.046, pad=0.04, label="critic output")


def read_metrics(path: Path) -> list[dict]:
    """The rows of a metrics.jsonl file (a torn last line from a crash is ignored)."""
    rows = []
    if Path(path).exists():
        for line in Path(path).read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def truncate_metrics(path: Path, step: int) -> None:
    """Drop rows logged after ``step``: a resumed run rewrites them."""
    if Path(path).exists():
        rows = [r for r in read_metrics(path) if r.get("step", 0) <= step]
        fileio.atomic_write(path, "".join(json.dumps(r) + "\n" for r in rows))  # a crash keeps the history


def plot_losses(metrics_path: Path, out: Path) -> bool:
    """Plot the logged losses against the step, and beside them D(x) and D(G(z)) as probabilities
    where the loss logs them (the `gan` loss); False when nothing was logged."""
    rows = [r for r in read_metrics(metrics_path) if "eval" not in r]
    if not rows:
        return False
    plt = _pyplot()
    panels = [CURVES] + ([PROBABILITIES] if any("d_real_prob" in r for r in rows) else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4), squeeze=False)
    steps = [r["step"] for r in rows]
    for ax, keys in zip(axes[0], panels):
        for key in keys:
            if any(key in r for r in rows):
                ax.plot(steps, [r.get(key, float("nan")) for r in rows], label=LABELS.get(key, key))
        ax.set_xlabel("generator step")
        ax.legend()
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("value")
    if len(panels) > 1:
        axes[0][1].set_ylim(0, 1)
        axes[0][1].axhline(0.5, color="grey", lw=0.8, ls="--")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return True


def histogram(series: dict[str, torch.Tensor], path: Path, xlabel: str, title: str = "") -> None:
    """Overlaid histograms of several 1-D samples on shared bins."""
    plt = _pyplot()
    values = torch.cat([torch.as_tensor(v).float().flatten() for v in series.values()])
    bins = torch.linspace(float(values.min()), float(values.max()) + 1e-6, 41).numpy()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, v in series.items():
        ax.hist(torch.as_tensor(v).float().numpy(), bins=bins, alpha=0.55, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(title, fontsize=9)
    ax.legend()
    _save(fig, plt, path)


def line_plots(series: dict[str, torch.Tensor], path: Path, xlabel: str, x=None, title: str = "",
               shared: bool = False) -> None:
    """One panel per series (or all on one panel with ``shared``) against x (default 1..n)."""
    plt = _pyplot()
    panels = 1 if shared else len(series)
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels if not shared else 6, 3.5), squeeze=False)
    for i, (label, v) in enumerate(series.items()):
        y = torch.as_tensor(v).float().numpy()
        xs = x if x is not None else range(1, len(y) + 1)
        ax = axes[0][0 if shared else i]
        ax.plot(list(xs), y, label=label, marker="." if len(y) < 50 else None)
        ax.set_xlabel(xlabel)
        ax.set_title(label if not shared else title, fontsize=9)
    if shared:
        axes[0][0].legend()
    _save(fig, plt, path)


def _save(fig, plt, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
