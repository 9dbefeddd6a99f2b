"""Run: sampling in eval mode (restored even on failure), keyword construction."""
from __future__ import annotations

import pytest
import torch

from gantools.run import Run


class Flaky(torch.nn.Module):
    def __init__(self, fail: bool):
        super().__init__()
        self.fail, self.modes = fail, []

    def forward(self, z):
        self.modes.append(self.training)
        if self.fail:
            raise RuntimeError("generator failed")
        return torch.tanh(z[:, :2])


def _run(generator) -> Run:
    return Run(config={"z_dim": 3, "prior": "normal", "arch": "mlp", "loss": "gan", "dataset": "toy"},
               generator=generator, critic=torch.nn.Identity(), data_kind="points", data_shape=(2,),
               directory=None, step=0, device=torch.device("cpu"))


def test_generate_runs_in_eval_mode_in_batches_and_restores_the_mode():
    g = Flaky(fail=False).train()
    out = _run(g).generate(torch.randn(7, 3), batch_size=3)
    assert out.shape == (7, 2) and g.modes == [False, False, False] and g.training


def test_mode_is_restored_when_the_generator_raises():
    g = Flaky(fail=True).train()
    with pytest.raises(RuntimeError, match="generator failed"):
        _run(g).sample(4, seed=0)
    assert g.training


def test_sample_is_seeded_and_run_takes_keywords_only():
    run = _run(Flaky(fail=False))
    assert torch.equal(run.sample(5, seed=1), run.sample(5, seed=1))
    assert not torch.equal(run.sample(5, seed=1), run.sample(5, seed=2))
    with pytest.raises(TypeError):
        Run({}, None, None, "points", (2,), None, 0, torch.device("cpu"))  # noqa: the API is keywords only
