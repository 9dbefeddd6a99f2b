"""Deterministic, resumable batches from any torch Dataset."""
from __future__ import annotations

import torch

from gantools.errors import UserError


def fetch(dataset, indices: torch.Tensor) -> torch.Tensor:
    """Items ``indices`` of a torch Dataset as one tensor, through its ``get_batch`` when it has one."""
    get_batch = getattr(dataset, "get_batch", None)
    if get_batch is not None:
        return get_batch(indices)
    return torch.stack([torch.as_tensor(dataset[int(i)]) for i in indices])


class BatchStream:
    """Endless shuffled batches; the order depends only on (seed, epoch), so the state to
    resume is two integers.

    Under data parallelism every rank walks the same global batches and fetches only its rows,
    so the state is the same on every rank and for any number of ranks.

    Args:
        dataset: a torch Dataset; its ``get_batch(indices)`` is used when it has one.
        batch_size: items per (global) batch (the last partial batch of an epoch is dropped).
        seed: seeds the per-epoch permutation.
        rank, world: this process's share: rows [rank * B / world, (rank + 1) * B / world).
    """

    def __init__(self, dataset, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.dataset = dataset
        self.n = len(dataset)
        if self.n < batch_size:
            raise UserError(f"the dataset has {self.n} items, fewer than the batch size {batch_size}")
        self.batch_size = batch_size
        self.seed = seed
        local = batch_size // world
        self._rows = slice(rank * local, (rank + 1) * local)
        self.epoch = 0
        self.pos = 0
        self._perm = self._permutation()

    def _permutation(self) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.n, generator=gen)

    def next(self) -> torch.Tensor:
        """This rank's rows of the next batch (B / world, ...) as a float tensor."""
        if self.pos + self.batch_size > self.n:
            self.epoch += 1
            self.pos = 0
            self._perm = self._permutation()
        idx = self._perm[self.pos:self.pos + self.batch_size][self._rows]
        self.pos += self.batch_size
        return fetch(self.dataset, idx)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._perm = self._permutation()
