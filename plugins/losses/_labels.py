"""The critic's targets for the classification-style losses (gan, lsgan): smoothing and flips."""
from __future__ import annotations

import torch

from gantools import stepcontext
from gantools.errors import UserError

Target = float | torch.Tensor


def check_flip(loss: str, flip: float) -> None:
    """Refuse a flip probability outside [0, 1], naming the loss."""
    if not 0.0 <= flip <= 1.0:
        raise UserError(f"{loss} flip is a probability in [0, 1] (got {flip})")


def targets(scores: torch.Tensor, label: float, other: float, flip: float) -> Target:
    """The targets of a batch whose samples are all labelled ``label``.

    Args:
        scores: the critic's (N,) scores of the batch (device, dtype and N are read off it).
        label: the batch's label (real or fake).
        other: the label a flipped sample gets (the other class's).
        flip: probability of flipping each sample's label; 0 draws nothing and returns the float
            ``label``. Draws go through gantools.stepcontext.rows, so the ranks of a
            data-parallel step flip exactly the samples one process would.

    Returns:
        ``label`` itself, or an (N,) tensor of ``label`` with ``other`` where a sample was flipped.
    """
    if flip <= 0.0:
        return label
    flipped = stepcontext.rows(lambda n: torch.rand(n, device=scores.device) < flip, scores.shape[0])
    # At least float32, so a smoothed 0.9 stays 0.9 beside bf16/fp16 scores (the loss promotes).
    dtype = torch.promote_types(scores.dtype, torch.float32)
    return torch.where(flipped.to(scores.device), other, label).to(dtype)
