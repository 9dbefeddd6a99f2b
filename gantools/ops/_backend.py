"""Backend selection for the native ops: GANTOOLS_OPS=auto|native|reference, loaded lazily."""
from __future__ import annotations

import importlib.util
import os
import warnings
from typing import Callable

import torch

from gantools.errors import UserError

_CHOICES = ("auto", "native", "reference")
OPS = ("bias_leaky_relu", "gradient_penalty", "layer_norm_leaky_relu")
# Dtypes each device's kernels take; other dtypes run the reference on purpose
# (e.g. bfloat16 autocast on CPU), so that choice is not announced.
_DTYPES = {
    "cpu": (torch.float32, torch.float64),
    "cuda": (torch.float16, torch.bfloat16, torch.float32, torch.float64),
}
_DISPATCH_KEYS = {"cpu": "CPU", "cuda": "CUDA"}
_state: dict = {"loaded": None, "reason": None, "warned": set()}
_on_load: list[Callable[[], None]] = []


def requested() -> str:
    """The backend the user asked for through GANTOOLS_OPS (default auto)."""
    value = os.environ.get("GANTOOLS_OPS", "auto").strip().lower() or "auto"
    if value not in _CHOICES:
        raise UserError(f"GANTOOLS_OPS={value!r} is not one of {', '.join(_CHOICES)}")
    return value


def on_load(register: Callable[[], None]) -> None:
    """Run ``register`` (fake kernels, autograd) once the library has registered its ops."""
    _on_load.append(register)


def register_fakes(name: str, *, fake, fake_backward, fake_double_backward=None) -> None:
    """Once the library loads: fake (meta) kernels for ``name``, its gradient op ``name``_backward
    and, where the op has one, the gradient op's gradient ``name``_double_backward.

    Autograd is registered in C++ (csrc/), at the Autograd dispatch key.
    """
    def register() -> None:
        torch.library.register_fake(f"gantools::{name}", fake)
        torch.library.register_fake(f"gantools::{name}_backward", fake_backward)
        if fake_double_backward is not None:
            torch.library.register_fake(f"gantools::{name}_double_backward", fake_double_backward)
    on_load(register)


def _load_native() -> bool:
    """Load the compiled library once, on first use; remember why it failed."""
    if _state["loaded"] is None:
        try:
            # find_spec locates the built file without importing it: the library
            # has no Python module init, only dispatcher registrations.
            spec = importlib.util.find_spec("gantools._C")
            if spec is None or not spec.origin:
                raise ImportError("gantools._C is not built (pip install --no-build-isolation .)")
            torch.ops.load_library(spec.origin)
            for register in _on_load:
                register()
        except Exception as exc:  # any failure here means "not usable in this environment"
            _state["loaded"], _state["reason"] = False, f"{type(exc).__name__}: {exc}"
        else:
            _state["loaded"] = True
    return bool(_state["loaded"])


def _has_kernel(op: str, device: str) -> bool:
    # Asked on every call of an op, and fixed once the library is loaded: remember the answer.
    known = _state.setdefault("kernels", {})
    if (op, device) not in known:
        key = _DISPATCH_KEYS.get(device)
        known[op, device] = key is not None and torch._C._dispatch_has_kernel_for_dispatch_key(
            f"gantools::{op}", key)
    return known[op, device]


def _fall_back(reason: str, choice: str) -> bool:
    if choice == "native":
        raise UserError(f"GANTOOLS_OPS=native but {reason}")
    if reason not in _state["warned"]:
        _state["warned"].add(reason)
        warnings.warn(f"gantools: native ops unavailable, using the PyTorch reference ({reason})",
                      stacklevel=4)
    return False


def use_native(op: str, x: torch.Tensor) -> bool:
    """True when ``op`` should run its native kernel on ``x``; announces each fallback reason once."""
    choice = requested()
    if choice == "reference":
        return False
    if not _load_native():
        return _fall_back(f"the native library is unavailable ({_state['reason']})", choice)
    device = x.device.type
    if device == "meta":
        return True
    if not _has_kernel(op, device):
        return _fall_back(f"the native library has no {device} kernel for {op}", choice)
    return x.dtype in _DTYPES[device]


def backends() -> dict[str, str]:
    """Per op, the backend it uses and on which devices, e.g. {'bias_leaky_relu': 'native (CPU)'}."""
    choice = requested()
    if choice == "reference":
        return {op: "reference (GANTOOLS_OPS=reference)" for op in OPS}
    if not _load_native():
        return {op: f"reference (native unavailable: {_state['reason']})" for op in OPS}
    result = {}
    for op in OPS:
        devices = [key for device, key in _DISPATCH_KEYS.items() if _has_kernel(op, device)]
        result[op] = f"native ({', '.join(devices)})"
    return result
