"""benchmarks/compare.py: the grid runs every cell, scores it, and writes one table."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import compare  # noqa: E402


def test_compare_grid_on_a_toy(tmp_path, capsys):
    args = ["--out", str(tmp_path), "--dataset", "toy:8gaussians", "--archs", "mlp", "--losses", "gan,wgan-gp",
            "--steps", "4", "--n", "200", "--", "--batch-size", "16", "--log-every", "2"]
    assert compare.main(args) == 0
    saved = json.loads((tmp_path / "compare.json").read_text())
    assert [(r["arch"], r["loss"], r["steps"]) for r in saved["rows"]] == [("mlp", "gan", 4), ("mlp", "wgan-gp", 4)]
    assert all(r["eval"]["metrics"]["modes"]["n"] == 200 for r in saved["rows"])
    table = (tmp_path / "compare.md").read_text().splitlines()
    assert table[0].startswith("| arch | loss | steps | images/s | train min | modes | high quality |")
    assert len(table) == 4 and table[2].startswith("| mlp | gan | 4 |")
    # A second call re-scores the existing cells without training them again.
    mtime = (tmp_path / "mlp-gan" / "checkpoints" / "latest.pt").stat().st_mtime
    assert compare.main(args) == 0
    assert (tmp_path / "mlp-gan" / "checkpoints" / "latest.pt").stat().st_mtime == mtime
