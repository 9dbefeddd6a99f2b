"""Backend selection: GANTOOLS_OPS, lazy loading, one announced fallback, the per-op backend table."""
from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch

from gantools import ops
from gantools.errors import UserError
from gantools.ops import _backend


def _uses_native(y: torch.Tensor) -> bool:
    # The native ops' autograd nodes are C++ Functions in namespace gantools.
    return "gantools::" in y.grad_fn.name()


def test_reference_env_var_runs_plain_pytorch(reference):
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    assert not _uses_native(ops.bias_leaky_relu(x, torch.zeros(3)))
    assert not _uses_native(ops.penalty_from_grad(x))
    assert ops.backend() == {name: "reference (GANTOOLS_OPS=reference)" for name in _backend.OPS}


def test_native_env_var_runs_the_kernels(native):
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    assert _uses_native(ops.bias_leaky_relu(x, torch.zeros(3)))
    assert _uses_native(ops.penalty_from_grad(x))
    assert all(how.startswith("native (CPU") for how in ops.backend().values())


def test_unknown_choice_is_a_user_error(monkeypatch):
    monkeypatch.setenv("GANTOOLS_OPS", "fast")
    with pytest.raises(UserError, match="GANTOOLS_OPS='fast'"):
        ops.bias_leaky_relu(torch.randn(2, 3))


@pytest.fixture
def missing_library(monkeypatch):
    """The state of a process whose library failed to load."""
    monkeypatch.setattr(_backend, "_state", {"loaded": False, "reason": "ImportError: simulated", "warned": set()})


def test_auto_falls_back_with_one_warning(missing_library, monkeypatch):
    monkeypatch.setenv("GANTOOLS_OPS", "auto")
    x = torch.randn(2, 3, 4, 4)
    with pytest.warns(UserWarning, match="simulated") as record:
        y = ops.bias_leaky_relu(x, torch.zeros(3))
        ops.bias_leaky_relu(x, torch.zeros(3))
        ops.penalty_from_grad(x)
    assert len(record) == 1
    torch.testing.assert_close(y, torch.nn.functional.leaky_relu(x, 0.2))
    assert "native unavailable: ImportError: simulated" in ops.backend()["gradient_penalty"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ops.bias_leaky_relu(x)  # announced already: silent now


def test_native_without_library_is_a_user_error(missing_library, monkeypatch):
    monkeypatch.setenv("GANTOOLS_OPS", "native")
    with pytest.raises(UserError, match="GANTOOLS_OPS=native but the native library is unavailable"):
        ops.penalty_from_grad(torch.randn(2, 3))


def test_importing_gantools_loads_no_library():
    code = ("import torch, gantools, gantools.ops, gantools.nn; from gantools.ops import _backend; "
            "print(_backend._state['loaded'], len(torch.ops.loaded_libraries))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["None", "0"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_kernels_are_registered(native):
    assert ops.backend()["bias_leaky_relu"] == "native (CPU, CUDA)"
    assert _uses_native(ops.bias_leaky_relu(torch.randn(2, 3, device="cuda", requires_grad=True)))
