"""Every installed plugin, built-in or third-party, meets its contract (driven by the registry)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gantools import checkpoint as ckpt
from gantools.errors import UserError
from gantools.registry import default_registry

REGISTRY = default_registry()
SHAPES = [(2,), (1, 16, 16), (3, 32, 32)]


def names(kind):
    return REGISTRY.names(kind)


def _networks(name, shape, per_sample):
    arch = REGISTRY.create("architectures", name)
    try:
        check = getattr(arch, "check_shape", None)
        if check is not None:
            check(shape)
    except UserError:
        return None
    return arch.generator(8, shape), arch.discriminator(shape, per_sample=per_sample)


@pytest.mark.parametrize("name", names("architectures"))
@pytest.mark.parametrize("per_sample", [False, True])
def test_architecture_builds_trains_and_round_trips(name, per_sample, tmp_path):
    built = 0
    for shape in SHAPES:
        nets = _networks(name, shape, per_sample)
        if nets is None:
            continue
        built += 1
        g, d = nets
        z = torch.randn(4, 8)
        x = g(z)
        assert x.shape == (4, *shape)
        scores = d(x)
        assert scores.shape == (4,)
        (scores.sum()).backward()
        assert all(p.grad is not None for p in g.parameters() if p.requires_grad)
        if per_sample:  # gradient penalties need each score to depend on its own sample only
            d.eval()
            xs = torch.randn(3, *shape)
            alone = d(xs[:1])
            assert torch.allclose(d(xs)[:1], alone, atol=1e-5)
        path = tmp_path / f"{len(shape)}.pt"
        ckpt.save_atomic({"format": ckpt.FORMAT, "version": 1, "g": g.state_dict(), "d": d.state_dict()}, path)
        state = ckpt.load(path)
        g2, d2 = _networks(name, shape, per_sample)
        g2.load_state_dict(state["g"])
        d2.load_state_dict(state["d"])
        g.eval(), g2.eval(), d.eval(), d2.eval()
        # Exact: both copies are built alike (same layout), so the same kernels see the same weights.
        assert torch.equal(g(z), g2(z)) and torch.equal(d(x.detach()), d2(x.detach()))
    assert built >= 1, f"{name} supports none of {SHAPES}"


@pytest.mark.parametrize("name", names("losses"))
def test_loss_contract(name):
    loss = REGISTRY.create("losses", name)
    defaults = getattr(loss, "defaults", {})
    assert set(defaults) <= {"n_critic", "optimizer", "lr", "betas"}
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1), torch.nn.Flatten(0))
    real, fake = torch.randn(8, 2), torch.randn(8, 2, requires_grad=True)
    d_loss, logs = loss.discriminator_loss(critic, real, fake.detach())
    assert d_loss.dim() == 0 and torch.isfinite(d_loss)
    assert all(np.isfinite(float(v)) for v in logs.values())
    d_loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in critic.parameters())
    g_loss, _ = loss.generator_loss(critic, fake)
    g_loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    after = getattr(loss, "after_discriminator_step", None)
    if after is not None:
        after(critic)


def _candidate_args(tmp_path):
    """Arguments a dataset plugin may need: none, a toy name, an image folder, an npz file."""
    from PIL import Image
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(8):
        Image.fromarray(np.full((12, 12, 3), i * 30, np.uint8)).save(folder / f"{i}.png")
    npz = tmp_path / "data.npz"
    np.savez(npz, images=np.zeros((8, 16, 16), np.uint8))
    return [None, "8gaussians", str(folder), str(npz)]


@pytest.mark.parametrize("name", names("datasets"))
def test_dataset_contract(name, tmp_path):
    plugin = REGISTRY.create("datasets", name)
    assert getattr(plugin, "kind", "images") in ("images", "points")
    built = []
    for arg in _candidate_args(tmp_path):
        try:
            built.append(plugin.build(arg, 16, None))
        except UserError:
            continue
    assert built, f"dataset {name} built from none of the candidate arguments"
    for data in built:
        assert len(data) > 0
        item = data[0]
        assert item.dtype == torch.float32
        if plugin.kind == "points":
            assert item.shape == (2,)
        else:
            assert item.dim() == 3 and item.shape[1:] == (16, 16)
            assert item.min() >= -1 and item.max() <= 1
        batch = data.get_batch(torch.tensor([0, len(data) - 1]))
        assert batch.shape == (2, *item.shape) and torch.equal(batch[0], item)
