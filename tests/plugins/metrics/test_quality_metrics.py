"""The `modes` and `digits` metrics, and `gantools eval` on real runs."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import gantools
from gantools import metrics
from gantools.cli import main
from gantools.errors import UserError
from gantools_plugins.metrics import digits as digits_metric
from gantools_plugins.metrics.modes import mode_coverage

TOY = dict(arch="mlp", loss="wgan-gp", z_dim=2, batch_size=16, steps=2, n_critic=1, log_every=1,
           checkpoint_every=2, sample_every=2)


def test_mode_coverage_counts_hand_made_points():
    modes = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = np.concatenate([
        np.zeros((60, 2)),                    # mode 0, exact
        np.full((30, 2), [10.0, 0.29]),       # mode 1, 2.9 std away: high quality
        np.full((9, 2), [0.0, 10.31]),        # mode 2, 3.1 std away: not high quality
        np.full((1, 2), [5.0, 5.0]),          # between modes
    ])
    result = mode_coverage(points, modes, std=0.1)
    assert result["n"] == 100 and result["n_modes"] == 3
    assert result["mode_counts"] == [60, 30, 0]
    assert result["modes_covered"] == 2
    assert result["high_quality"] == pytest.approx(0.90)
    # A mode is covered from 1% of its expected share (0.01 * 100 / 3 = 0.33 samples): one sample.
    assert mode_coverage(points[:61], modes[:2], std=0.1, min_share=0.5)["modes_covered"] == 1


def test_modes_metric_on_a_toy_run(tmp_path):
    run = gantools.train(out=tmp_path / "g", dataset="toy:25gaussians", **TOY)
    toy = gantools.registry.create("datasets", "toy")
    exact = torch.as_tensor(np.repeat(toy.modes("25gaussians"), 4, axis=0), dtype=torch.float32)
    result = metrics.evaluate(gantools.load_run(tmp_path / "g"), ["modes"], samples=exact)
    assert result["metrics"]["modes"]["modes_covered"] == 25
    assert result["metrics"]["modes"]["high_quality"] == 1.0
    # Every metric that applies, by default: only modes for points; the image metrics are skipped.
    auto = metrics.evaluate(gantools.load_run(tmp_path / "g"), n=50)
    assert list(auto["metrics"]) == ["modes"]
    assert "images" in auto["skipped"]["digits"]


def test_modes_metric_refuses_data_without_modes(tmp_path):
    gantools.train(out=tmp_path / "s", dataset="toy:swissroll", **TOY)
    with pytest.raises(UserError, match="modes.*does not apply.*not a gaussian mixture"):
        metrics.evaluate(gantools.load_run(tmp_path / "s"), ["modes"], n=20)


def _real_digits(size=16):
    data = gantools.registry.create("datasets", "digits").build(None, size, 1)
    return data.get_batch(torch.arange(len(data)))


def test_digits_figures_on_real_digits_and_one_class(tmp_path):
    from sklearn.datasets import load_digits

    classifier = digits_metric.load_classifier(tmp_path)
    real = _real_digits()
    result = digits_metric.digits_quality(real, classifier)
    assert result["n"] == 1797 and result["classes_covered"] == 10 and result["passes"]
    assert result["confident"] >= 0.8
    # The real class histogram is nearly uniform (174-183 per class): KL close to 0.
    counts = np.bincount(load_digits().target) / 1797
    assert result["kl_to_uniform"] < 0.01
    assert float((counts * np.log(counts * 10)).sum()) < 0.01
    sevens = real[torch.as_tensor(load_digits().target == 7)]
    one = digits_metric.digits_quality(sevens, classifier)
    assert one["classes_covered"] <= 2 and one["class_fractions"][7] > 0.95
    assert one["kl_to_uniform"] == pytest.approx(math.log(10), abs=0.25)
    assert not one["passes"]


def test_eval_cli_writes_eval_json(tmp_path, capsys):
    gantools.train(out=tmp_path / "g", dataset="toy:25gaussians", **TOY)
    with pytest.raises(SystemExit) as info:
        main(["eval", str(tmp_path / "g"), "--n", "100", "--metric", "modes", "--metric-opt", "modes.radius=3"])
    assert info.value.code == 0
    saved = json.loads((tmp_path / "g" / "eval.json").read_text())
    assert saved["n"] == 100 and saved["step"] == 2 and saved["checkpoint"] == "latest.pt"
    assert set(saved["metrics"]["modes"]) >= {"modes_covered", "high_quality", "n_modes"}
    assert "modes_covered" in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [
    (["--metric", "digits"], "does not apply to this run"),
    (["--metric", "nosuch"], "nosuch"),
    (["--metric-opt", "radius=3"], "METRIC.KEY=VALUE"),
    (["--metric", "modes", "--metric-opt", "fid.features=digits"], "not being computed: fid"),
    (["--metric", "modes", "--metric-opt", "modes.radius=-1"], "radius > 0"),
])
def test_eval_cli_errors_are_one_line(tmp_path, capsys, args, message):
    gantools.train(out=tmp_path / "g", dataset="toy:8gaussians", **TOY)
    with pytest.raises(SystemExit) as info:
        main(["eval", str(tmp_path / "g"), "--n", "10", *args])
    assert info.value.code != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_periodic_evaluation_during_training(tmp_path):
    settings = {**TOY, "steps": 4, "checkpoint_every": 4, "sample_every": 4}
    gantools.train(out=tmp_path / "p", dataset="toy:25gaussians", eval_every=2, eval_metrics=["modes"],
                   eval_n=50, **settings)
    rows = [json.loads(line) for line in (tmp_path / "p" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert all(r["eval"]["modes"]["n"] == 50 and r["eval"]["modes"]["n_modes"] == 25 for r in evals)
    # Evaluating draws from its own seeded generators: training is unchanged by it.
    gantools.train(out=tmp_path / "q", dataset="toy:25gaussians", **settings)
    plain = [json.loads(line) for line in (tmp_path / "q" / "metrics.jsonl").read_text().splitlines()]
    assert [r["d_loss"] for r in plain] == [r["d_loss"] for r in rows if "d_loss" in r]
    with pytest.raises(UserError, match="unknown metric 'nosuch'"):
        gantools.train(out=tmp_path / "x", dataset="toy:25gaussians", eval_every=2, eval_metrics=["nosuch"],
                       **settings)
