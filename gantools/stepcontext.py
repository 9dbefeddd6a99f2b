"""The training step's context: what ops called inside a step need from the trainer, in one place.

Loss plugins call ops such as gantools.ops.gradient_penalty with the networks and batches only;
two facts about the step under way change what those ops must do, and the trainer states them
here instead of in module globals:

- ``rank`` / ``world``: in a data-parallel step, per-sample randomness is drawn for the GLOBAL
  batch and sliced (``rows``), so W processes draw exactly what one process would;
- ``loss_scale``: under fp16 the critic objective is scaled by the GradScaler's scale; a gradient
  penalty takes its input gradient of the scaled scores (so it does not underflow) and divides
  the scale out before the norm.

Ops read ``current()``; the trainer opens ``step(...)`` around the code that calls them. Ops also
take these as explicit arguments (e.g. gradient_penalty's ``eps`` and ``scale``), which win.
"""
from __future__ import annotations

import contextlib
import dataclasses
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable, Iterator

import torch


@dataclass(frozen=True)
class StepContext:
    """Attributes:
        rank, world: this process's place in a data-parallel step (0, 1 outside one).
        loss_scale: the fp16 loss scale of the objective being computed, or None.
    """

    rank: int = 0
    world: int = 1
    loss_scale: float | None = None

    def rows(self, draw: Callable[[int], torch.Tensor], n: int) -> torch.Tensor:
        """``n`` rows of a random batch for this rank: ``draw(n * world)`` (the global batch's draw,
        the same on every rank) sliced to this rank's rows; ``draw(n)`` in a single process."""
        if self.world == 1:
            return draw(n)
        return draw(n * self.world)[self.rank * n:(self.rank + 1) * n]


_CURRENT: ContextVar[StepContext] = ContextVar("gantools_step", default=StepContext())


def current() -> StepContext:
    """The context of the step under way (the default, a single process in fp32, outside one)."""
    return _CURRENT.get()


@contextlib.contextmanager
def step(**changes) -> Iterator[StepContext]:
    """Within it, ``current()`` is the current context with ``changes`` (rank, world, loss_scale)."""
    token = _CURRENT.set(dataclasses.replace(_CURRENT.get(), **changes))
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)


def rows(draw: Callable[[int], torch.Tensor], n: int) -> torch.Tensor:
    """``current().rows(draw, n)``: per-sample randomness drawn as one process would."""
    return _CURRENT.get().rows(draw, n)
