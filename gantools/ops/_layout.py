"""Memory layout the native kernels produce; mirrors kernel_format() in csrc/common.h."""
from __future__ import annotations

import torch


def kernel_memory_format(t: torch.Tensor) -> torch.memory_format:
    """Layout of a kernel's output for input ``t``: channels_last stays, anything else is contiguous."""
    if t.is_contiguous():
        return torch.contiguous_format
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    if t.dim() == 5 and t.is_contiguous(memory_format=torch.channels_last_3d):
        return torch.channels_last_3d
    return torch.contiguous_format
