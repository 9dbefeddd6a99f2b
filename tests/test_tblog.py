"""TensorBoard beside metrics.jsonl: scalars equal to the rows, sample grids, the config as text,
a resumed run's events purged after its start, eval figures, and the setting's refusal."""
from __future__ import annotations

import json

import pytest

import gantools
from gantools import tblog
from gantools.rundir import RunDirectory

pytest.importorskip("tensorboard", reason="the tensorboard extra (pip install gantools[tensorboard]) is not installed")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

TINY = dict(arch="dcgan", loss="wgan-gp", dataset="digits", arch_opts={"width": 8}, z_dim=6, batch_size=32,
            n_critic=1, log_every=2, sample_every=2, checkpoint_every=2)


def _events(run_dir) -> EventAccumulator:
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    return events


def test_a_run_mirrors_its_rows_grids_and_config_into_tensorboard(tmp_path):
    gantools.train(out=tmp_path / "r", steps=4, **TINY)  # on by default: the package is installed
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    events = _events(tmp_path / "r")
    tags = events.Tags()
    assert {"losses/d_loss", "losses/g_loss", "critic/wasserstein", "critic/penalty", "schedule/lr",
            "throughput/images_per_s"} <= set(tags["scalars"])
    for tag, key in (("losses/d_loss", "d_loss"), ("critic/penalty", "penalty"), ("schedule/lr", "lr")):
        assert [(e.step, e.value) for e in events.Scalars(tag)] == [
            (r["step"], pytest.approx(r[key], rel=1e-6)) for r in rows]
    # a grid at steps 2 and 4 and the final one, at the grid's own size
    grids = events.Images("samples")
    assert [e.step for e in grids] == [2, 4, 4] and grids[0].width > 64
    text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| arch | dcgan | cli |" in text and "| steps | 4 | cli |" in text and "| eval_n | 1000 | default |" in text


def test_a_resumed_run_replaces_the_events_after_its_start(tmp_path):
    gantools.train(out=tmp_path / "r", steps=4, **TINY)
    (tmp_path / "r" / "checkpoints" / "latest.pt").unlink()  # resume from step 2
    (tmp_path / "r" / "checkpoints" / "step_0000002.pt").rename(tmp_path / "r" / "checkpoints" / "latest.pt")
    gantools.train(out=tmp_path / "r", resume=True, steps=6)
    steps = [e.step for e in _events(tmp_path / "r").Scalars("losses/d_loss")]
    assert steps == [2, 4, 6]  # the first run's step-4 row is purged, not drawn twice


def test_off_writes_no_events_and_eval_rows_become_scalars(tmp_path):
    gantools.train(out=tmp_path / "off", steps=2, tensorboard=False, **TINY)
    assert not (tmp_path / "off" / "tensorboard").exists()
    rundir = RunDirectory(tmp_path / "tb")
    rundir.open_tensorboard(0, {"config": {}, "sources": {}})
    rundir.log({"step": 7, "eval": {"fid": {"fid": 3.5, "label": "digits features"}, "swd": {"swd": 2.0}}})
    rundir.close_tensorboard()
    events = _events(tmp_path / "tb")
    assert sorted(events.Tags()["scalars"]) == ["eval/fid/fid", "eval/swd/swd"]
    assert [(e.step, e.value) for e in events.Scalars("eval/fid/fid")] == [(7, 3.5)]


def test_config_table_escapes_cells():
    table = tblog.config_markdown({"config": {"dataset": "folder:a|b", "betas": [0.0, 0.9]},
                                   "sources": {"dataset": "cli"}})
    assert table.splitlines()[2:] == ["| dataset | folder:a&#124;b | cli |", "| betas | [0.0, 0.9] |  |"]


def test_asking_for_tensorboard_without_the_package_is_one_line(tmp_path, cli_error, monkeypatch):
    monkeypatch.setattr(tblog, "available", lambda: False)
    err = cli_error(["run", "--steps", "1", "--tensorboard", "--out", str(tmp_path / "x")])
    assert "pip install gantools[tensorboard]" in err
    assert tblog.wanted(None) is False and tblog.wanted(False) is False
