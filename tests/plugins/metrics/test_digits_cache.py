"""The digits metric's classifier cache: reused when sound; damaged -> one warning, rebuilt, same figures."""
from __future__ import annotations

import io
import types
import warnings

import numpy as np
import pytest
import torch

import gantools
from gantools_plugins.metrics import digits as digits_metric


def context(cache) -> types.SimpleNamespace:
    """The part of an EvalContext the digits metric reads."""
    return types.SimpleNamespace(cache_dir=cache, dataset_name="digits")


@pytest.fixture(scope="module")
def samples() -> torch.Tensor:
    data = gantools.registry.create("datasets", "digits").build(None, 16, 1)
    real = data.get_batch(torch.arange(300))
    noise = torch.rand(100, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return torch.cat([real, noise])  # confident and unconfident samples


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, samples) -> dict:
    """One real training into an empty cache: its file's bytes, classifier and figures."""
    cache = tmp_path_factory.mktemp("fresh")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an absent cache is no cause for a warning
        figures = digits_metric.DigitsMetric().evaluate(samples, context(cache))
    return {"bytes": (cache / digits_metric.CACHE_NAME).read_bytes(), "figures": figures,
            "classifier": digits_metric.load_classifier(cache)}


@pytest.fixture
def trainings(monkeypatch, fresh) -> list:
    """Count retrainings; each returns the fresh classifier (training is deterministic)."""
    calls = []

    def train():
        calls.append(1)
        c = fresh["classifier"]
        return digits_metric.Classifier(c.coef.copy(), c.intercept.copy())
    monkeypatch.setattr(digits_metric, "train_classifier", train)
    return calls


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def damaged_files(fresh: dict) -> dict[str, bytes]:
    good, c = fresh["bytes"], fresh["classifier"]
    flipped = bytearray(good)
    flipped[len(good) // 3] ^= 0xFF  # one byte inside the coefficients: the CRC no longer matches
    return {
        "garbage": b"not an npz archive at all",
        "truncated": good[: len(good) // 2],
        "truncated-end": good[:-5],
        "empty": b"",
        "flipped-byte": bytes(flipped),
        "missing-member": npz_bytes(coef=c.coef),
        "wrong-shape": npz_bytes(coef=c.coef[:5], intercept=c.intercept),
        "nan": npz_bytes(coef=np.full((10, 64), np.nan), intercept=c.intercept),
        "plain-npy": npy_bytes(c.coef),
    }


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_a_sound_cache_is_reused(tmp_path, fresh, samples, trainings):
    (tmp_path / digits_metric.CACHE_NAME).write_bytes(fresh["bytes"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figures = digits_metric.DigitsMetric().evaluate(samples, context(tmp_path))
    assert figures == fresh["figures"] and trainings == []


@pytest.mark.parametrize("kind", ["garbage", "truncated", "truncated-end", "empty", "flipped-byte",
                                  "missing-member", "wrong-shape", "nan", "plain-npy"])
def test_a_damaged_cache_is_reported_once_and_rebuilt(tmp_path, fresh, samples, trainings, kind):
    path = tmp_path / digits_metric.CACHE_NAME
    path.write_bytes(damaged_files(fresh)[kind])
    metric = digits_metric.DigitsMetric()
    with pytest.warns(UserWarning) as record:
        figures = metric.evaluate(samples, context(tmp_path))
    messages = [str(w.message) for w in record]
    assert len(messages) == 1, messages
    assert "damaged or unreadable" in messages[0] and str(path) in messages[0]
    assert "\n" not in messages[0]
    assert trainings == [1]
    assert figures == fresh["figures"]
    with np.load(path) as archive:  # rebuilt to a valid file (the zip's timestamps differ)
        np.testing.assert_array_equal(archive["coef"], fresh["classifier"].coef)
        np.testing.assert_array_equal(archive["intercept"], fresh["classifier"].intercept)
    assert sorted(p.name for p in tmp_path.iterdir()) == [digits_metric.CACHE_NAME]  # no temp left
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rebuilt: silent, and not retrained, from now on
        assert metric.evaluate(samples, context(tmp_path)) == fresh["figures"]
    assert trainings == [1]


def test_an_unwritable_cache_is_reported_and_the_figures_still_come(tmp_path, fresh, samples, trainings):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should be")
    with pytest.warns(UserWarning, match="could not cache the classifier") as record:
        figures = digits_metric.DigitsMetric().evaluate(samples, context(blocker))
    assert len(record) == 1 and figures == fresh["figures"]
    assert blocker.read_text() == "a file where the cache directory should be"

