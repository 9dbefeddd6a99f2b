"""--cuda-graphs: refused with the reason where capture cannot work; on a GPU, captured training
equals eager training within float tolerance."""
from __future__ import annotations

import json

import pytest
import torch

import gantools
from gantools import cudagraphs
from gantools.errors import UserError
from gantools_plugins.losses.wgan_gp import WGANGP

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
BASE = {"cuda_graphs": True, "precision": "fp32", "inverter": None, "loss": "wgan-gp"}


@pytest.mark.parametrize("change,world,loss,reason", [
    ({}, 1, WGANGP(), None),
    ({}, 2, WGANGP(), "runs in one process"),
    ({"precision": "fp16"}, 1, WGANGP(), "GradScaler decides on the host"),
    ({"inverter": "ali"}, 1, WGANGP(), "joint inverters (ali)"),
    ({}, 1, WGANGP(lazy=4), "every 4th critic step"),
    ({"loss": "mine"}, 1, type("Unsafe", (), {"graph_safe": False})(), "mine says it cannot be captured"),
])
def test_refusals_name_the_reason(change, world, loss, reason):
    got = cudagraphs.refusal({**BASE, **change}, torch.device("cuda", 0), world, loss)
    assert (got is None) if reason is None else (reason in got)
    assert "needs a CUDA device" in cudagraphs.refusal(BASE, torch.device("cpu"), 1, loss)


def test_a_cpu_run_is_refused_with_one_line(tmp_path, tiny_settings):
    with pytest.raises(UserError, match="--cuda-graphs cannot capture this run: it needs a CUDA device"):
        gantools.train(out=tmp_path / "r", cuda_graphs=True, device="cpu", **tiny_settings)


def _rows(path):
    return [{k: v for k, v in json.loads(line).items() if k != "images_per_s"}
            for line in (path / "metrics.jsonl").read_text().splitlines()]


@CUDA
@pytest.mark.parametrize("settings", [
    {"arch": "dcgan", "loss": "wgan-gp", "image_size": 16},
    {"arch": "dcgan", "loss": "gan", "image_size": 16, "ema": 0.99},
    {"arch": "dcgan", "loss": "wgan", "image_size": 16},
    {"arch": "resnet", "loss": "wgan-gp", "image_size": 16},
    {"arch": "dcgan", "loss": "wgan-gp", "image_size": 16, "precision": "bf16", "augment": ["flip", "diffaugment"],
     "lr_decay": "linear"},
], ids=["dcgan-wgan-gp", "dcgan-gan-ema", "dcgan-wgan", "resnet-wgan-gp", "bf16-augment-decay"])
def test_captured_training_equals_eager(tmp_path, settings):
    base = dict(dataset="digits", arch_opts={"width": 8}, z_dim=8, batch_size=16, steps=8, log_every=1,
                device="cuda", sample_every=4, checkpoint_every=4, **settings)
    eager = gantools.train(out=tmp_path / "eager", **base)
    graphed = gantools.train(out=tmp_path / "graphed", cuda_graphs=True, **base)
    tol = dict(rel=2e-2, abs=2e-3) if settings.get("precision") == "bf16" else dict(rel=1e-3, abs=1e-5)
    for a, b in zip(_rows(tmp_path / "graphed"), _rows(tmp_path / "eager")):
        assert a.keys() == b.keys()
        for key in b:
            assert a[key] == pytest.approx(b[key], **tol), (a["step"], key)
    for (name, a), b in zip(graphed.generator.state_dict().items(), eager.generator.state_dict().values()):
        torch.testing.assert_close(a.float(), b.float(), rtol=tol["rel"] * 10, atol=tol["abs"] * 10, msg=name)
    # a captured run resumes (the optimiser's state is capturable) and continues like the eager one
    more = gantools.train(out=tmp_path / "graphed", resume=True, steps=10)
    assert more.step == 10
