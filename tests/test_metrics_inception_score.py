"""The `is` metric: the Inception Score's maths on known logits, and the plugin with a stub network."""
from __future__ import annotations

import math
import types

import numpy as np
import pytest
import torch

from gantools.errors import UserError
from gantools.metrics import EvalContext
from gantools.registry import default_registry
from gantools_plugins.metrics import _features as fe
from gantools_plugins.metrics import inception_score as iscore


def test_known_logits_give_the_known_score():
    # p = (3/4, 1/4) and (1/4, 3/4): p(y) = (1/2, 1/2), KL = 3/4 ln(3/2) + 1/4 ln(1/2) for both
    logits = np.log([[3.0, 1.0], [1.0, 3.0]])
    mean, std = iscore.inception_score(logits, splits=1)
    assert mean == pytest.approx(math.exp(0.75 * math.log(1.5) + 0.25 * math.log(0.5)), rel=1e-12)
    assert std == 0.0
    # two splits of one sample each: p(y) = p(y|x) in each, so KL = 0 and IS = 1
    assert iscore.inception_score(logits, splits=2) == (pytest.approx(1.0), pytest.approx(0.0))


def test_uniform_predictions_score_one_and_even_one_hot_scores_the_class_count():
    assert iscore.inception_score(np.zeros((50, 1008)), splits=10)[0] == pytest.approx(1.0, abs=1e-12)
    assert iscore.inception_score(np.full((50, 7), 3.5), splits=5)[0] == pytest.approx(1.0, abs=1e-12)
    for k in (2, 5, 10):
        logits = np.full((20 * k, 1008), -60.0)
        logits[np.arange(20 * k), np.arange(20 * k) % k] = 60.0  # each split holds 2 of every class
        mean, std = iscore.inception_score(logits, splits=10)
        assert mean == pytest.approx(k, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)


def test_splits_give_a_mean_and_std():
    logits = np.full((40, 4), -50.0)
    logits[np.arange(20), np.arange(20) % 4] = 50.0  # first half: 4 classes evenly -> IS 4
    logits[np.arange(20, 40), np.arange(20) % 2] = 50.0  # second half: 2 classes -> IS 2
    mean, std = iscore.inception_score(logits, splits=2)
    assert (mean, std) == (pytest.approx(3.0), pytest.approx(1.0))
    with pytest.raises(ValueError, match="n >= splits"):
        iscore.inception_score(logits[:3], splits=10)


def test_the_metric_declines_without_weights(monkeypatch, tmp_path):
    monkeypatch.delenv(fe.WEIGHTS_ENV, raising=False)
    ctx = types.SimpleNamespace(dataset_name="digits")
    assert fe.WEIGHTS_ENV in iscore.metric().applies(ctx)
    assert "no Inception weights file" in iscore.metric(weights=str(tmp_path / "nope.pth")).applies(ctx)
    monkeypatch.setenv(fe.WEIGHTS_ENV, str(tmp_path / "w.pth"))
    (tmp_path / "w.pth").write_bytes(b"")
    assert iscore.metric().applies(ctx) is None
    assert default_registry().options("metrics", "is") == {"weights": "", "splits": 10, "batch_size": 200}
    with pytest.raises(UserError, match="splits"):
        iscore.metric(splits=0)


def test_classifier_weight_is_read_from_the_weights_file(tmp_path):
    torch.save({"fc.weight": torch.ones(1008, 2048), "fc.bias": torch.zeros(1008)}, tmp_path / "w.pth")
    assert iscore._classifier_weight(str(tmp_path / "w.pth")).shape == (1008, 2048)
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(1)}, tmp_path / "nofc.pth")
    with pytest.raises(UserError, match="fc.weight"):
        iscore._classifier_weight(str(tmp_path / "nofc.pth"))


class _Stub(torch.nn.Module):
    """Stands in for the Inception pool3: feature 0 is the image's mean brightness."""

    def forward(self, x):
        out = torch.zeros(len(x), 2048)
        out[:, 0] = x.mean(dim=(1, 2, 3))
        return out


def test_the_metric_scores_samples_with_a_stub_network(monkeypatch, tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"stub")
    monkeypatch.setenv(fe.WEIGHTS_ENV, str(weights))
    monkeypatch.setattr(fe, "build", lambda name, w, cache=None: fe.Features(name, _Stub(), fe._rgb))
    w = torch.zeros(3, 2048, dtype=torch.float64)
    w[0, 0], w[1, 0] = 100.0, -100.0  # bright -> class 0, dark -> class 1, class 2 never
    monkeypatch.setattr(iscore, "_classifier_weight", lambda path: w)
    samples = torch.cat([torch.full((10, 1, 8, 8), 0.8), torch.full((10, 1, 8, 8), -0.8)])[torch.randperm(20)]
    run = types.SimpleNamespace(config={"dataset": "digits", "dataset_opts": {}}, data_shape=(1, 8, 8),
                                device=torch.device("cpu"))
    ctx = EvalContext(run, default_registry(), len(samples), cache=tmp_path)
    figures = iscore.metric(splits=1).evaluate(samples, ctx)
    assert figures["is"] == pytest.approx(2.0, rel=1e-6) and figures["n"] == 20
    assert "Inception Score" in figures["label"]
    assert iscore.metric(splits=1).evaluate(torch.full((6, 1, 8, 8), 0.5), ctx)["is"] == pytest.approx(1.0)
    with pytest.raises(UserError, match="at least splits=10"):
        iscore.metric().evaluate(samples[:5], ctx)
