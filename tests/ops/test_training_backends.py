"""Training with the native ops and with the reference gives the same losses for the first steps."""
from __future__ import annotations

import json

import pytest

import gantools

SETTINGS = dict(arch="dcgan", loss="wgan-gp", dataset="digits", image_size=16, arch_opts={"width": 8}, z_dim=8,
                batch_size=16, steps=4, log_every=1, n_critic=2, ema=0.0)


def losses(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("images_per_s", "step")} for r in rows]


@pytest.mark.parametrize("norm", ["layer", "none"])
def test_native_and_reference_training_agree(tmp_path, monkeypatch, native, norm):
    settings = {**SETTINGS, "arch_opts": {"width": 8, "norm": norm}}
    gantools.train(out=tmp_path / "native", **settings)
    monkeypatch.setenv("GANTOOLS_OPS", "reference")
    gantools.train(out=tmp_path / "reference", **settings)
    got, want = losses(tmp_path / "native"), losses(tmp_path / "reference")
    assert len(got) == len(want) == 4
    for row_got, row_want in zip(got, want):
        assert row_got.keys() == row_want.keys()
        for key in row_want:
            assert row_got[key] == pytest.approx(row_want[key], rel=1e-3, abs=1e-4), key
