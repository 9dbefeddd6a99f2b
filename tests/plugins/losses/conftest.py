"""Shared by the loss plugins' tests: objectives on hand-made scores, and tiny training runs."""
from __future__ import annotations

import json
import math

import pytest
import torch

import gantools


def identity(x: torch.Tensor) -> torch.Tensor:
    """A critic whose scores are its inputs: the batches ARE the scores."""
    return x


@pytest.fixture
def critic_loss():
    """``critic_loss(loss, real, fake)``: the critic objective on the scores ``real``/``fake``
    (through an identity critic), checking that it logs their means as d_real/d_fake."""
    def compute(loss, real, fake):
        value, logs = loss.discriminator_loss(identity, real, fake)
        torch.testing.assert_close(logs["d_real"], real.mean())
        torch.testing.assert_close(logs["d_fake"], fake.mean())
        assert value.dim() == 0 and all(not torch.as_tensor(v).requires_grad for v in logs.values())
        return value, logs
    return compute


@pytest.fixture
def generator_loss():
    """``generator_loss(loss, fake)``: the generator objective on the scores ``fake``."""
    return lambda loss, fake: loss.generator_loss(identity, fake)[0]


@pytest.fixture
def trained(tmp_path):
    """``trained(**settings)``: a tiny gantools.train run; returns (run, the logged loss rows), every
    logged loss and mean score checked finite."""
    def train(**settings):
        run = gantools.train(out=tmp_path / "run", log_every=1, **settings)
        lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        rows = [row for row in map(json.loads, lines) if "d_loss" in row]
        assert len(rows) == settings["steps"]
        assert all(math.isfinite(r[k]) for r in rows for k in ("d_loss", "g_loss", "d_real", "d_fake"))
        return run, rows
    return train
