"""Figures of the latent studies: boxplots from given statistics, image grids with row and column
labels, histograms on given bins (returning their counts) and per-trajectory line plots."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from gantools.imageio import grid_image
from gantools.report import _pyplot, _save

LABEL_MARGIN = 4  # pixels around a label's text
BACKGROUND = 255  # labels: black text on white


def whiskers(values: torch.Tensor, q1: float, q3: float) -> tuple[float, float, list[float]]:
    """Tukey's whiskers: the extreme values within 1.5 IQR of the quartiles, and the values beyond."""
    values = torch.as_tensor(values).float().flatten()
    reach = 1.5 * (q3 - q1)
    inside = values[(values >= q1 - reach) & (values <= q3 + reach)]
    if len(inside) == 0:
        inside = values
    beyond = values[(values < q1 - reach) | (values > q3 + reach)]
    return float(inside.min()), float(inside.max()), beyond.tolist()


def boxplots(boxes: Sequence[tuple[str, torch.Tensor, dict]], path: Path, ylabel: str, title: str = "",
             hlines: Sequence[tuple[float, str]] = ()) -> None:
    """One box per (label, values, stats), drawn from the stats' median, q1 and q3 (so the picture
    shows the numbers of the JSON), whiskers at 1.5 IQR, the mean as a marker; dashed horizontal
    lines at ``hlines`` (value, legend label)."""
    plt = _pyplot()
    drawn = []
    for label, values, stats in boxes:
        low, high, fliers = whiskers(values, stats["q1"], stats["q3"])
        drawn.append({"label": label, "med": stats["median"], "q1": stats["q1"], "q3": stats["q3"],
                      "whislo": low, "whishi": high, "fliers": fliers, "mean": stats["mean"]})
    fig, ax = plt.subplots(figsize=(max(4.0, 1.0 + 1.1 * len(drawn)), 4.2))
    ax.bxp(drawn, showmeans=True, flierprops={"markersize": 2})
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (value, label) in enumerate(hlines):
        ax.axhline(value, ls="--", lw=1, color=colours[(k + 1) % len(colours)], label=label)
    if hlines:
        ax.legend(fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelrotation=30 if len(drawn) > 3 else 0, labelsize=8)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, plt, path)


def _font():
    try:
        return ImageFont.load_default(size=12)
    except TypeError:  # Pillow before 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def _margins(row_labels, col_labels, font) -> tuple[int, int]:
    """(left, top) label margins in pixels: the widest row label, the tallest column label."""
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    left = max((_text_size(draw, s, font)[0] for s in row_labels), default=-1) + 1 + 2 * LABEL_MARGIN
    top = max((_text_size(draw, s, font)[1] for s in col_labels), default=-1) + 1 + 2 * LABEL_MARGIN
    return (left if row_labels else 0), (top if col_labels else 0)


def grid_layout(rows: int, cols: int, tile: int, row_labels: Sequence[str] = (), col_labels: Sequence[str] = (),
                padding: int = 2, upscale: int = 1) -> dict:
    """Where labelled_grid puts things: the left and top label margins, the (upscaled) tile side and
    padding, and the PNG's width and height in pixels."""
    left, top = _margins(list(row_labels), list(col_labels), _font())
    cell = (tile + padding) * upscale
    return {"rows": rows, "columns": cols, "tile_px": tile * upscale, "padding_px": padding * upscale,
            "left_px": left, "top_px": top, "width": left + cols * cell + padding * upscale,
            "height": top + rows * cell + padding * upscale}


def labelled_grid(tiles: torch.Tensor, path: Path, row_labels: Sequence[str] = (), col_labels: Sequence[str] = (),
                  padding: int = 2, upscale: int | None = None) -> dict:
    """Write images (R, K, C, H, W) in [-1, 1] as a PNG of R rows of K tiles, row labels on the
    left and column labels on top (either may be empty); returns grid_layout's geometry.
    Small images are enlarged (nearest neighbour) to about 64 pixels, as report.save_samples does."""
    tiles = torch.as_tensor(tiles).detach().float().cpu()
    rows, cols, channels, size = tiles.shape[0], tiles.shape[1], tiles.shape[2], tiles.shape[-1]
    upscale = upscale or max(1, 64 // size)
    grid = grid_image(tiles.flatten(0, 1), nrow=cols, padding=padding, upscale=upscale)
    layout = grid_layout(rows, cols, size, row_labels, col_labels, padding, upscale)
    mode = "L" if channels == 1 else "RGB"
    canvas = Image.new(mode, (layout["width"], layout["height"]), BACKGROUND if mode == "L" else (255,) * 3)
    canvas.paste(grid, (layout["left_px"], layout["top_px"]))
    _draw_labels(canvas, layout, list(row_labels), list(col_labels))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, format="PNG")
    return layout


def _draw_labels(canvas: Image.Image, layout: dict, row_labels: list[str], col_labels: list[str]) -> None:
    draw, font = ImageDraw.Draw(canvas), _font()
    ink = 0 if canvas.mode == "L" else (0, 0, 0)
    cell, pad, tile = layout["tile_px"] + layout["padding_px"], layout["padding_px"], layout["tile_px"]
    for r, text in enumerate(row_labels):
        height = _text_size(draw, text, font)[1]
        y = layout["top_px"] + pad + r * cell + (tile - height) // 2
        draw.text((LABEL_MARGIN, y), text, fill=ink, font=font, anchor="lt")
    for c, text in enumerate(col_labels):
        width = _text_size(draw, text, font)[0]
        x = layout["left_px"] + pad + c * cell + (tile - width) // 2
        draw.text((max(0, x), LABEL_MARGIN), text, fill=ink, font=font, anchor="lt")


def histogram(series: dict[str, torch.Tensor], bins: torch.Tensor, path: Path, xlabel: str, title: str = "",
              marks: dict[str, float] | None = None) -> dict:
    """Overlaid histograms of 1-D samples on the given bin edges, with dotted vertical lines at
    ``marks`` (label: value, e.g. the means); returns {"bins": edges, "counts": {label: counts}},
    the numbers drawn (values outside the edges are not counted)."""
    plt = _pyplot()
    edges = torch.as_tensor(bins).double().numpy()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    counts = {}
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (label, values) in enumerate(series.items()):
        numbers, _ = np.histogram(torch.as_tensor(values).double().numpy(), bins=edges)
        counts[label] = numbers.tolist()
        ax.hist(edges[:-1], bins=edges, weights=numbers, alpha=0.55, label=label, color=colours[k % len(colours)])
    for k, (label, value) in enumerate((marks or {}).items()):
        ax.axvline(value, ls=":", lw=1.2, color=colours[k % len(colours)], label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    _save(fig, plt, path)
    return {"bins": edges.tolist(), "counts": counts}


def trajectory_plot(panels: dict[str, torch.Tensor], path: Path, line_labels: Sequence[str], xlabel: str = "iteration",
                    log_x: bool = True, log_y: Sequence[str] = ()) -> None:
    """One panel per measure (K, T): a line per row (trajectory) against 1..T, labelled
    ``line_labels`` (legend on the first panel); log-scaled x, and log y on the panels named in
    ``log_y`` (non-positive values are left out there)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, (title, values) in zip(axes[0], panels.items()):
        values = torch.as_tensor(values).double()
        xs = np.arange(1, values.shape[1] + 1)
        for row, label in zip(values.numpy(), line_labels):
            ax.plot(xs, np.where(row > 0, row, np.nan) if title in log_y else row, lw=0.9, label=label)
        ax.set_xscale("log" if log_x else "linear")
        if title in log_y:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    if len(line_labels) <= 12:
        axes[0][0].legend(fontsize=7)
    _save(fig, plt, path)
