"""Fixtures for the op tests: the native backend, which CI builds, so its tests run there."""
from __future__ import annotations

import os

import pytest

from gantools.ops import _backend


@pytest.fixture
def native(monkeypatch):
    """Force the native backend; skip when the library is not built (fail instead under GANTOOLS_REQUIRE_NATIVE=1)."""
    monkeypatch.setenv("GANTOOLS_OPS", "auto")
    if not _backend._load_native():
        if os.environ.get("GANTOOLS_REQUIRE_NATIVE") == "1":
            pytest.fail(f"native library not built ({_backend._state['reason']})")
        pytest.skip("native library not built")
    monkeypatch.setenv("GANTOOLS_OPS", "native")


@pytest.fixture
def reference(monkeypatch):
    """Force the plain-PyTorch reference."""
    monkeypatch.setenv("GANTOOLS_OPS", "reference")
