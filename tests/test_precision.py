"""--precision: bf16 and fp16 autocast train with finite losses; fp16's penalty is taken from unscaled gradients."""
from __future__ import annotations

import json

import pytest
import torch

import gantools
from gantools import ops, precision
from gantools.errors import UserError

DIGITS = {"dataset": "digits", "image_size": 16, "arch": "dcgan", "arch_opts": {"width": 8}, "z_dim": 8,
          "dataset_opts": {}, "batch_size": 16, "log_every": 1}


def last_row(run):
    return json.loads((run.directory / "metrics.jsonl").read_text().splitlines()[-1])


@pytest.mark.parametrize("mode", ["bf16", "fp16"])
def test_mixed_precision_trains_with_finite_losses(tmp_path, tiny_settings, mode):
    run = gantools.train(out=tmp_path / "run", **{**tiny_settings, "steps": 3, "precision": mode})
    row = last_row(run)
    for key in ("d_loss", "g_loss", "penalty"):
        assert torch.isfinite(torch.tensor(row[key])), row
    assert all(torch.isfinite(p).all() for p in run.generator.parameters())
    assert ("amp_skipped" in row) == (mode == "fp16")


def test_bf16_on_cpu_trains_a_conv_critic_with_the_native_ops(tmp_path, monkeypatch):
    # The CPU kernels take float32/float64: under bf16 autocast the activations run the reference
    # (silently) and the penalty, on float32 input gradients, the kernel; channels_last stays on.
    monkeypatch.setenv("GANTOOLS_OPS", "auto")
    run = gantools.train(out=tmp_path / "run", **DIGITS, steps=2, precision="bf16")
    row = last_row(run)
    assert all(torch.isfinite(torch.tensor(row[k])) for k in ("d_loss", "g_loss", "penalty")), row


def test_fp16_penalty_is_computed_from_unscaled_gradients():
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.LeakyReLU(0.2), torch.nn.Linear(32, 1))
    real, fake = torch.randn(16, 8), torch.randn(16, 8)
    torch.manual_seed(1)
    want = ops.gradient_penalty(critic, real, fake)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 14)
    for explicit in (True, False):
        torch.manual_seed(1)
        with torch.autocast("cpu", dtype=torch.float16):
            if explicit:
                got = ops.gradient_penalty(critic, real, fake, scale=scaler.get_scale())
            else:  # as the trainer runs it: the scale of the step under way
                with precision.loss_scale(scaler):
                    got = ops.gradient_penalty(critic, real, fake)
        assert got.item() == pytest.approx(want.item(), rel=2e-2)
        got.backward()  # the double backward runs through the scaled graph
        assert torch.isfinite(critic[0].weight.grad).all() and critic[0].weight.grad.abs().sum() > 0
        critic.zero_grad()


def test_precision_is_checked(tmp_path, tiny_settings, monkeypatch):
    with pytest.raises(UserError, match="precision must be one of fp32, bf16, fp16"):
        gantools.train(out=tmp_path / "a", **{**tiny_settings, "precision": "fp8"})
    monkeypatch.setattr(torch.amp, "is_autocast_available", lambda device_type: False)
    with pytest.raises(UserError, match="--precision bf16 needs autocast"):
        gantools.train(out=tmp_path / "b", **{**tiny_settings, "precision": "bf16"})


def test_precision_may_change_on_resume(tmp_path, tiny_settings):
    gantools.train(out=tmp_path / "run", **{**tiny_settings, "steps": 2})
    run = gantools.train(out=tmp_path / "run", resume=True, steps=4, precision="bf16")
    assert run.step == 4 and run.config["precision"] == "bf16"
