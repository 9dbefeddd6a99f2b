"""Checkpoints are written atomically and loaded as plain data only."""
from __future__ import annotations

import pickle

import pytest
import torch

from gantools import checkpoint as ckpt
from gantools import fileio
from gantools.errors import UserError


def payload(step: int) -> dict:
    return {"format": ckpt.FORMAT, "version": ckpt.VERSION, "step": step, "w": torch.arange(4.0),
            "config": {"arch": "mlp", "betas": [0.0, 0.9]}}


def test_round_trip_and_replace(tmp_path):
    path = tmp_path / "checkpoints" / "latest.pt"
    ckpt.save_atomic(payload(1), path)
    ckpt.save_atomic(payload(2), path)
    state = ckpt.load(path)
    assert state["step"] == 2 and torch.equal(state["w"], torch.arange(4.0))
    assert [p.name for p in path.parent.iterdir()] == ["latest.pt"]  # no temp files left behind


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    ckpt.save_atomic(payload(1), path)

    def broken_replace(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(fileio.os, "replace", broken_replace)
    with pytest.raises(OSError):
        ckpt.save_atomic(payload(2), path)
    monkeypatch.undo()
    assert ckpt.load(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]


class Exploit:
    """Unpickling this would run code (create a marker file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_checkpoint_carrying_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({**payload(1), "evil": Exploit(marker)}, path)
    with pytest.raises(UserError, match="refusing to load"):
        ckpt.load(path)
    assert not marker.exists()


def test_plain_pickle_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(Exploit(marker)))
    with pytest.raises(UserError):
        ckpt.load(path)
    assert not marker.exists()


def test_corrupt_and_foreign_files(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    ckpt.save_atomic(payload(1), corrupt)
    corrupt.write_bytes(corrupt.read_bytes()[:50])
    with pytest.raises(UserError, match="corrupt"):
        ckpt.load(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(UserError, match="not a gantools checkpoint"):
        ckpt.load(foreign)
    with pytest.raises(UserError, match="no checkpoint"):
        ckpt.load(tmp_path / "missing.pt")
