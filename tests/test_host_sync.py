"""The training step never waits for the device between log steps: no .item(), float(), bool(),
.cpu(), .tolist() or .numpy() of a tensor from gantools' own code (core and plugins)."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

import gantools
import gantools_plugins

OWN = tuple(str(Path(m.__file__).resolve().parent) for m in (gantools, gantools_plugins))
METHODS = ("item", "tolist", "numpy", "cpu", "__float__", "__int__", "__bool__", "__index__")


@pytest.fixture
def host_reads(monkeypatch):
    """Counts each listed Tensor method called from a file under gantools/ or gantools_plugins/."""
    calls: Counter = Counter()
    for name in METHODS:
        original = getattr(torch.Tensor, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(OWN):
                calls[f"{_name} from {Path(caller).name}:{sys._getframe(1).f_lineno}"] += 1
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, spy)
    return calls


def _trainer(tmp_path, **settings):
    from gantools.config import resolve
    from gantools.registry import default_registry
    from gantools.trainer import Trainer

    base = dict(arch="dcgan", loss="wgan-gp", dataset="digits", image_size=8, arch_opts={"width": 4}, z_dim=4,
                batch_size=8, ema=0.9, lr_decay="linear", augment=["flip", "diffaugment"])
    config, sources = resolve(default_registry(), {**base, **settings})
    return Trainer(default_registry(), config, sources, tmp_path / "t", progress=False)


@pytest.mark.parametrize("settings", [{}, {"loss": "gan"}, {"loss": "wgan", "arch": "mlp", "arch_opts": {}},
                                      {"precision": "bf16"}, {"log_grad_norms": True}],
                         ids=["wgan-gp", "gan", "wgan-mlp", "bf16", "grad-norms"])
def test_no_host_reads_between_log_steps(tmp_path, host_reads, settings):
    trainer = _trainer(tmp_path, **settings)
    trainer.train_step()  # the first step may set things up
    host_reads.clear()
    for _ in range(6):  # what the loop does on a step that logs, samples and saves nothing
        trainer._accumulate(trainer.train_step())
        trainer.step += 1
    assert dict(host_reads) == {}
    trainer.check_finite()  # the log step's check is where the host reads, once
    assert sum(host_reads.values()) >= 1


def test_the_count_sees_an_injected_item(tmp_path, host_reads, monkeypatch):
    # Code compiled under a file name inside gantools/ counts as gantools' own, as an .item() added
    # to a loss plugin or the trainer would.
    namespace: dict = {}
    exec(compile("def read(t):\n    return t.item()\n", str(Path(OWN[0]) / "injected.py"), "exec"), namespace)
    trainer = _trainer(tmp_path)
    loss = trainer.models.loss
    original = loss.discriminator_loss

    def reading(critic, real, fake):
        value, logs = original(critic, real, fake)
        namespace["read"](value)
        return value, logs
    monkeypatch.setattr(loss, "discriminator_loss", reading)
    trainer._accumulate(trainer.train_step())
    assert host_reads == {"item from injected.py:2": trainer.config["n_critic"]}
