"""Benchmark fixtures: backend switching for the op and critic-step benchmarks."""
from __future__ import annotations

import pytest


@pytest.fixture
def use_backend(monkeypatch):
    """Select GANTOOLS_OPS for one benchmark; native must really be native."""
    def select(name: str) -> None:
        monkeypatch.setenv("GANTOOLS_OPS", name)
        if name == "native":
            from gantools.ops import _backend
            if not _backend._load_native():
                pytest.skip("native library not built")
    return select
