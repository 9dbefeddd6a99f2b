"""gantools.report: sample grids and scatter plots, metrics.jsonl handling, plots, the progress bar."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gantools import report
from gantools.imageio import TensorImages

PAD_GREY = 128  # the grid's padding between tiles


def _png(path):
    with Image.open(path) as img:
        assert img.format == "PNG"
        img.load()
        return img


def _tile_centre(k, nrow, side, upscale, padding=2):
    """(x, y) of the centre of tile k in a grid written by save_samples."""
    row, col = divmod(k, nrow)
    left, top = padding + col * (side + padding), padding + row * (side + padding)
    return (left + side // 2) * upscale, (top + side // 2) * upscale


def test_image_grid_is_near_square_enlarged_and_maps_values_to_pixels(tmp_path):
    values = [-1.0, 0.0, 1.0, 2.0, -0.5]  # 2.0 is clamped to white
    samples = torch.stack([torch.full((1, 8, 8), v) for v in values])
    path = tmp_path / "deep" / "grid.png"  # parent folders are created
    report.save_samples(samples, path, "images")
    img = _png(path)
    # ceil(sqrt(5)) = 3 per row, 2 rows; tiles of 8 px with 2 px padding; 8 px images are enlarged 64 // 8 = 8x.
    assert img.mode == "L" and img.size == ((3 * 10 + 2) * 8, (2 * 10 + 2) * 8)
    pixels = np.asarray(img)
    expected = [0, 128, 255, 255, 64]  # round((v + 1) * 127.5), half to even
    for k, want in enumerate(expected):
        x, y = _tile_centre(k, 3, 8, 8)
        assert pixels[y, x] == want, (k, pixels[y, x])
    assert pixels[0, 0] == PAD_GREY
    x, y = _tile_centre(5, 3, 8, 8)  # the sixth cell of the grid is empty: padding grey
    assert pixels[y, x] == PAD_GREY


def test_image_grid_rows_rgb_and_no_enlargement_for_large_images(tmp_path):
    rgb = torch.zeros(4, 3, 4, 4)
    rgb[:, 0] = 1.0  # red
    report.save_samples(rgb, tmp_path / "row.png", "images", nrow=4)
    img = _png(tmp_path / "row.png")
    assert img.mode == "RGB" and img.size == ((4 * 6 + 2) * 16, (6 + 2) * 16)
    x, y = _tile_centre(3, 4, 4, 16)
    assert tuple(np.asarray(img)[y, x]) == (255, 128, 128)  # channels 0 -> 128

    report.save_samples(torch.zeros(2, 1, 64, 64), tmp_path / "big.png", "images")
    assert _png(tmp_path / "big.png").size == (2 * 66 + 2, 66 + 2)  # 64 px: upscale 1


def _colour_fractions(path):
    """Fractions of pixels that are orange-ish (generated points) and green-ish (real points)."""
    rgb = np.asarray(_png(path).convert("RGB")).astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    orange = (r > g + 40) & (g > b + 40)
    green = (g > r + 20) & (g > b + 20)
    return orange.mean(), green.mean()


def test_points_are_scattered_over_the_real_data(tmp_path):
    gen = torch.Generator().manual_seed(0)
    fake = torch.randn(200, 2, generator=gen)
    real = TensorImages(torch.randn(3000, 2, generator=gen) + 3)
    report.save_samples(fake, tmp_path / "alone" / "p.png", "points")
    report.save_samples(fake, tmp_path / "over.png", "points", dataset=real)
    alone, over = _png(tmp_path / "alone" / "p.png"), _png(tmp_path / "over.png")
    for img in (alone, over):  # a 5x5 inch figure at 100 dpi, trimmed to its content
        assert 250 <= img.size[0] <= 520 and 250 <= img.size[1] <= 520
    orange, green = _colour_fractions(tmp_path / "alone" / "p.png")
    assert orange > 0 and green == 0
    orange, green = _colour_fractions(tmp_path / "over.png")
    assert orange > 0 and green > 0


def _write_rows(path, rows, torn=""):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + torn)


def test_read_metrics_ignores_a_torn_last_line_and_a_missing_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    assert report.read_metrics(path) == []
    _write_rows(path, [{"step": 1, "d_loss": 0.5}, {"step": 2, "d_loss": 0.25}], torn='{"step": 3, "d_lo')
    assert report.read_metrics(path) == [{"step": 1, "d_loss": 0.5}, {"step": 2, "d_loss": 0.25}]


def test_truncate_metrics_keeps_rows_up_to_the_step(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [{"step": s, "g_loss": float(s)} for s in (1, 2, 3, 4, 5)] + [{"note": "no step"}]
    _write_rows(path, rows, torn='{"step": 6')
    report.truncate_metrics(path, 3)
    assert report.read_metrics(path) == rows[:3] + [{"note": "no step"}]  # a row without step counts as 0
    assert path.read_text().endswith("\n") and path.read_text().count("\n") == 4  # the torn line is gone
    report.truncate_metrics(path, 0)
    assert report.read_metrics(path) == [{"note": "no step"}]
    report.truncate_metrics(tmp_path / "absent.jsonl", 3)  # nothing to truncate: no file made
    assert not (tmp_path / "absent.jsonl").exists()


def test_plot_losses_draws_only_when_something_was_logged(tmp_path):
    path, out = tmp_path / "metrics.jsonl", tmp_path / "loss.png"
    assert report.plot_losses(path, out) is False and not out.exists()
    _write_rows(path, [{"step": s, "d_loss": -s / 10, "g_loss": s / 10, "lr": 1e-4} for s in range(1, 21)])
    assert report.plot_losses(path, out) is True
    width, height = _png(out).size  # 7x4 inches at 100 dpi, trimmed to its content
    assert 550 <= width <= 720 and 300 <= height <= 420 and width > height


def test_histogram_and_line_plots_have_the_figure_sizes(tmp_path):
    series = {"a": torch.randn(500), "b": torch.randn(500) + 2}
    report.histogram(series, tmp_path / "h" / "hist.png", "norm", title="two")
    assert _png(tmp_path / "h" / "hist.png").size == (600, 350)
    report.histogram({"constant": torch.ones(10)}, tmp_path / "c.png", "x")  # one value: bins still span it
    assert _png(tmp_path / "c.png").size == (600, 350)

    three = {"x": [1.0, 2.0, 3.0], "y": torch.tensor([3.0, 2.0, 1.0]), "z": np.arange(3.0)}
    report.line_plots(three, tmp_path / "panels.png", "step")  # one 4.5-inch panel per series
    assert _png(tmp_path / "panels.png").size == (1350, 350)
    report.line_plots(three, tmp_path / "shared.png", "step", x=[10, 20, 30], title="all", shared=True)
    assert _png(tmp_path / "shared.png").size == (600, 350)


def test_progress_bar_starts_at_the_step_and_redraws_rarely_when_not_a_terminal(monkeypatch, capsys):
    bar = report.progress_bar(40, 100)
    try:
        assert (bar.n, bar.total) == (40, 100)
        assert bar.mininterval == 30.0  # pytest captures stderr: not a terminal
        bar.update(10)
        assert bar.n == 50
    finally:
        bar.close()
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    bar = report.progress_bar(0, 5)
    try:
        assert bar.mininterval == pytest.approx(0.1)
    finally:
        bar.close()


def test_truncation_is_atomic_and_plots_make_their_folder(tmp_path, monkeypatch):
    from gantools import fileio

    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "d_loss": 1.0}) + "\n" for s in (1, 2, 3)))

    def broken_replace(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(fileio.os, "replace", broken_replace)
    with pytest.raises(OSError):
        report.truncate_metrics(path, 1)
    monkeypatch.undo()
    assert [r["step"] for r in report.read_metrics(path)] == [1, 2, 3]  # the history survived
    assert report.plot_losses(path, tmp_path / "new" / "curve.png")
    assert (tmp_path / "new" / "curve.png").stat().st_size > 1000


def test_loss_curve_draws_d_of_x_and_d_of_g_of_z_beside_the_losses(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [{"step": s, "d_loss": 1.0, "g_loss": 0.7, "d_real_prob": 0.6, "d_fake_prob": 0.45} for s in (1, 2, 3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + json.dumps({"step": 3, "eval": {}}) + "\n")
    assert report.plot_losses(path, tmp_path / "two.png")
    rows = [{k: v for k, v in r.items() if "prob" not in k} for r in rows]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert report.plot_losses(path, tmp_path / "one.png")
    with Image.open(tmp_path / "two.png") as two, Image.open(tmp_path / "one.png") as one:
        assert two.width > 1.7 * one.width and abs(two.height - one.height) < 20  # a second panel beside
