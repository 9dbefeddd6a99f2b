"""RunDirectory: what a run directory holds, written by rank 0 only."""
from __future__ import annotations

import json

import pytest
import torch

from gantools import checkpoint as ckpt
from gantools.rundir import RunDirectory


def _state(step):
    return {"format": ckpt.FORMAT, "version": ckpt.VERSION, "step": step}


def test_checkpoints_samples_config_and_metrics(tmp_path):
    rd = RunDirectory(tmp_path / "r")
    rd.write_config({"config": {"a": 1}})
    assert json.loads((tmp_path / "r" / "config.json").read_text()) == {"config": {"a": 1}}
    rd.save_checkpoint(_state(3), 3, numbered=False)
    rd.save_checkpoint(_state(4), 4, numbered=True)
    assert sorted(p.name for p in (tmp_path / "r" / "checkpoints").iterdir()) == ["latest.pt", "step_0000004.pt"]
    assert ckpt.load(rd.latest)["step"] == 4
    grid = rd.save_samples(torch.zeros(4, 1, 8, 8), 4, "images")
    assert grid.name == "step_0000004.png" and (grid.parent / "latest.png").read_bytes() == grid.read_bytes()
    rd.open_metrics(0)
    for step in (1, 2, 3):
        rd.log({"step": step, "d_loss": float(step)})
    rd.close_metrics()
    rd.open_metrics(2)  # a run resumed from step 2 drops the rows after it and appends
    rd.log({"step": 3, "d_loss": 30.0})
    rd.close_metrics()
    rows = [json.loads(line) for line in rd.metrics_path.read_text().splitlines()]
    assert rows == [{"step": 1, "d_loss": 1.0}, {"step": 2, "d_loss": 2.0}, {"step": 3, "d_loss": 30.0}]
    rd.plot()
    assert (tmp_path / "r" / "plots" / "losses.png").stat().st_size > 1000


def test_inverter_state_round_trips(tmp_path):
    rd = RunDirectory(tmp_path / "r")
    path = rd.save_inverter("ali", {"z_width": 4}, {"w": torch.ones(2)})
    saved = ckpt.load_inverter_state(path)
    assert saved["name"] == "ali" and saved["options"] == {"z_width": 4} and torch.equal(saved["state"]["w"], torch.ones(2))
    with pytest.raises(Exception, match="not a gantools inverter file"):
        ckpt.load_inverter_state(rd.save_checkpoint(_state(1), 1, numbered=False))


def test_other_ranks_write_nothing(tmp_path):
    rd = RunDirectory(tmp_path / "r", writes=False)
    rd.write_config({"config": {}})
    rd.save_checkpoint(_state(1), 1, numbered=True)
    rd.save_samples(torch.zeros(1, 1, 4, 4), 1, "images")
    rd.save_inverter("ali", {}, {})
    rd.open_metrics(0)
    rd.log({"step": 1})
    rd.close_metrics()
    rd.plot()
    assert not (tmp_path / "r").exists()
