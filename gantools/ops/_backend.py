"""Backend selection for the native ops: GANTOOLS_OPS=auto|native|reference, loaded lazily."""
from __future__ import annotations

import os
import warnings

from gantools.errors import UserError

_CHOICES = ("auto", "native", "reference")
_state: dict = {"loaded": None, "reason": None, "warned": False}


def requested() -> str:
    """The backend the user asked for through GANTOOLS_OPS (default auto)."""
    value = os.environ.get("GANTOOLS_OPS", "auto").strip().lower() or "auto"
    if value not in _CHOICES:
        raise UserError(f"GANTOOLS_OPS={value!r} is not one of {', '.join(_CHOICES)}")
    return value


def _load_native() -> bool:
    """Import the compiled library once; remember why it failed."""
    if _state["loaded"] is None:
        try:
            import gantools._C  # noqa: F401  (registers torch.ops.gantools.*)
        except Exception as exc:  # any import failure means "not built here"
            _state["loaded"], _state["reason"] = False, f"{type(exc).__name__}: {exc}"
        else:
            _state["loaded"] = True
    return bool(_state["loaded"])


def use_native() -> bool:
    """True when the native kernels should run; announces an auto fallback once."""
    choice = requested()
    if choice == "reference":
        return False
    if _load_native():
        return True
    if choice == "native":
        raise UserError(f"GANTOOLS_OPS=native but the native library is unavailable ({_state['reason']})")
    if not _state["warned"]:
        _state["warned"] = True
        warnings.warn(f"gantools: native ops unavailable, using the PyTorch reference ({_state['reason']})",
                      stacklevel=3)
    return False


def describe() -> str:
    """One line for `gantools info`: which backend the ops use and why."""
    choice = requested()
    if choice == "reference":
        return "reference (GANTOOLS_OPS=reference)"
    if _load_native():
        return "native"
    return f"reference (native unavailable: {_state['reason']})"
