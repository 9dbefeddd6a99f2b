"""Data: deterministic, resumable batches from any torch Dataset, and a run's real items at its resolution."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from gantools.config import split_dataset
from gantools.errors import UserError

if TYPE_CHECKING:
    from gantools.registry import Registry
    from gantools.run import Run


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
        labels: (N,) class indices of the items (conditional runs): batches are then (x, y) pairs.
    """

    def __init__(self, dataset, batch_size: int, seed: int, rank: int = 0, world: int = 1,
                 labels: torch.Tensor | None = None):
        self.dataset = dataset
        self.labels = labels
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

    def next(self) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """This rank's rows of the next batch (B / world, ...) as a float tensor; with ``labels``,
        (those rows, their labels (B / world,))."""
        if self.pos + self.batch_size > self.n:
            self.epoch += 1
            self.pos = 0
            self._perm = self._permutation()
        idx = self._perm[self.pos:self.pos + self.batch_size][self._rows]
        self.pos += self.batch_size
        if self.labels is not None:
            return fetch(self.dataset, idx), self.labels[idx]
        return fetch(self.dataset, idx)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._perm = self._permutation()


def load_items(run: Run, name: str, arg: str | None, options: dict | None = None, *, n: int | None = None,
               seed: int | None = None, registry: Registry | None = None) -> torch.Tensor:
    """Items of dataset plugin ``name`` built at the run's resolution, as float on the CPU.

    Args:
        run: gives ``data_shape``: images (C, H, W) are built at H pixels and C channels,
            points as the dataset makes them.
        name, arg, options: the dataset plugin, its argument (e.g. a path) and its options.
        n: items at most (all by default).
        seed: None takes the first n in the dataset's own order; a seed takes the first n of a
            seeded permutation of the whole dataset (so a smaller n gives a prefix of a larger one).
        registry: where the plugin comes from (default: the installed plugins).

    Returns:
        images (n, C, H, W) in [-1, 1] or points (n, 2).
    """
    if registry is None:
        from gantools.registry import default_registry

        registry = default_registry()
    shape = run.data_shape
    image_size, channels = (shape[1], shape[0]) if len(shape) == 3 else (None, None)
    dataset = registry.create("datasets", name, options or {}).build(arg, image_size, channels)
    count = len(dataset)
    if count == 0:
        raise UserError(f"dataset {name}{':' + arg if arg else ''} is empty")
    if seed is None:
        order = torch.arange(count)
    else:
        order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return fetch(dataset, order[:n]).float()


def load_images(run: Run, path: str | Path, registry: Registry | None = None) -> torch.Tensor:
    """Images from a folder or an .npz (as the folder and npz datasets read them), resized to
    the run's resolution and channel count, in the datasets' order (sorted paths for folders)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"no images at {path}")
    kind = "npz" if path.is_file() and path.suffix == ".npz" else "folder"
    if kind == "folder" and not path.is_dir():
        raise UserError(f"{path} is neither an image folder nor an .npz file")
    return load_items(run, kind, str(path), registry=registry)


def run_images(run: Run, n: int, registry: Registry | None = None) -> torch.Tensor:
    """The first n items of the run's own training data (its dataset, options and resolution)."""
    name, arg = split_dataset(run.config["dataset"])
    return load_items(run, name, arg, run.config["dataset_opts"], n=n, registry=registry)


def held_out_digits(run: Run, registry: Registry | None = None) -> tuple[torch.Tensor, str] | None:
    """digits' test split and its description when the run trained on the train split (the only
    held-out data we know), else None."""
    name, arg = split_dataset(run.config["dataset"])
    if name != "digits" or run.config["dataset_opts"].get("split") != "train":
        return None
    images = load_items(run, "digits", arg, {"split": "test"}, registry=registry)
    return images, "digits:split=test (held out)"
