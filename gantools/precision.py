"""Mixed precision for training: autocast per --precision, GradScalers for fp16, the penalty's loss scale."""
from __future__ import annotations

import contextlib
import torch

from gantools import stepcontext
from gantools.errors import UserError

PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check(precision: str, device: torch.device) -> None:
    """Refuse a precision the training device cannot autocast to."""
    if precision == "fp32":
        return
    if not torch.amp.is_autocast_available(device.type):
        raise UserError(f"--precision {precision} needs autocast, which torch {torch.__version__} lacks on "
                        f"{device.type}; use --precision fp32")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserError(f"--precision bf16 needs a GPU with bfloat16 support ({torch.cuda.get_device_name(device)} "
                        f"has none); use fp16 or fp32")


def autocast(precision: str, device: torch.device, cache: bool = True) -> contextlib.AbstractContextManager:
    """The forward passes' context: torch.autocast to bf16/fp16 on ``device``, nothing for fp32.
    ``cache`` False for CUDA graphs (autocast's weight-cast cache cannot live across a capture)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_DTYPES[precision], cache_enabled=cache)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """A GradScaler for fp16 (whose small range would flush small gradients to zero); None otherwise."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None


def loss_scale(scaler: torch.amp.GradScaler | None) -> contextlib.AbstractContextManager:
    """Within it, gantools.stepcontext.current().loss_scale is ``scaler``'s scale (unchanged for None).

    The trainer opens it around an fp16 critic objective: a gradient penalty there takes the
    critic's input gradient of the SCALED scores (so it does not underflow in fp16) and divides
    the scale out before the norm, as in PyTorch's AMP gradient-penalty recipe.
    """
    if scaler is None:
        return contextlib.nullcontext()
    return stepcontext.step(loss_scale=scaler.get_scale())
