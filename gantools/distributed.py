"""Data-parallel training over processes started by torchrun: process group, shared randomness, gradient sync."""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import torch
import torch.distributed as dist

from gantools import stepcontext
from gantools.errors import UserError

def environment() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) from the variables torchrun sets; None for a single process."""
    if "WORLD_SIZE" not in os.environ:
        return None
    try:
        world = int(os.environ["WORLD_SIZE"])
        rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise UserError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (as torchrun sets them)") from None
    return (rank, world, local_rank) if world > 1 else None


def is_main_process() -> bool:
    """False in the processes other than rank 0 of a torchrun launch (they print and write nothing)."""
    env = environment()
    return env is None or env[0] == 0


@dataclass(frozen=True)
class DataParallel:
    """This process's place in a data-parallel run; with world 1 every method is a no-op.

    How W processes reproduce one process with the same global batch B (each rank computes B/W rows):

    - Randomness is drawn for the global batch and sliced. Every rank seeds torch's RNG alike and
      makes the same draws as the single process would (the global batch's data indices, its
      latents, the gradient penalty's per-sample interpolation weights), keeping only its own rows
      (``gantools.stepcontext.rows``). So the RNG state stays identical on every rank and equal to the single
      process's, which is what makes a checkpoint written by rank 0 the global state, resumable with
      any world size. Randomness drawn inside networks at the local batch size (dropout, a joint
      inverter's reparametrisation noise) is identical across ranks rather than global: such runs
      train correctly but are not bit-for-bit a single process's.
    - Gradients are averaged over ranks; the losses are means over the batch, so the mean of the
      ranks' gradients is the gradient of the global batch's loss.
    - BatchNorm normalises each rank's B/W rows on its own (SyncBatchNorm is not used: gloo on CPU
      lacks it), so BatchNorm networks are not exactly a single process's; per-sample critics (the
      gradient-penalty losses) and the mlp are.

    Attributes:
        rank, world, local_rank: as torchrun numbers the processes.
        comm_device: where collectives on small tensors run (the GPU under NCCL, else the CPU).
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    comm_device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def training_device(self, name: str) -> torch.device:
        """The device this rank trains on: ``name`` for one process, cuda:LOCAL_RANK (or cpu) for several."""
        from gantools.models import resolve_device

        device = resolve_device(name)
        if self.world == 1 or device.type != "cuda":
            return device
        if ":" in str(name):
            raise UserError(f"with several processes each rank uses cuda:LOCAL_RANK; pass --device cuda, "
                            f"not {name}")
        if self.local_rank >= torch.cuda.device_count():
            raise UserError(f"local rank {self.local_rank} has no GPU ({torch.cuda.device_count()} visible); "
                            f"start at most one process per GPU")
        return torch.device("cuda", self.local_rank)

    def local_batch(self, batch_size: int) -> int:
        """Rows of the global batch this rank computes."""
        if batch_size % self.world:
            raise UserError(f"batch size {batch_size} is not divisible by the {self.world} processes; "
                            f"the global batch is split evenly across them")
        return batch_size // self.world

    def sharding(self) -> contextlib.AbstractContextManager:
        """Within it, gantools.stepcontext.rows draws the global batch and keeps this rank's rows."""
        return stepcontext.step(rank=self.rank, world=self.world)

    def all_reduce_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Average the gradients of ``params`` over the ranks (one flat bucket per dtype).

        Used where DistributedDataParallel cannot be: the critic's gradient penalty is a double
        backward, which DDP's reducer does not support. Parameters without a gradient are left
        alone (every rank runs the same graph, so the set is the same everywhere).
        """
        if self.world == 1:
            return
        grads = [p.grad for p in params if p.grad is not None]

        def average(flat: torch.Tensor) -> None:
            dist.all_reduce(flat)
            flat.div_(self.world)
        _flat_apply(grads, average)

    @torch.no_grad()
    def broadcast(self, tensors: list[torch.Tensor]) -> None:
        """Copy rank 0's values of ``tensors`` (parameters, buffers) to every rank, in place."""
        if self.world > 1:
            _flat_apply(tensors, lambda flat: dist.broadcast(flat, src=0))

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of a small tensor (e.g. log scalars), on the tensor's device."""
        if self.world == 1:
            return values
        flat = values.detach().to(self.comm_device, torch.float64, copy=True)
        dist.all_reduce(flat)
        return (flat / self.world).to(values.device)

    def any(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag, true when it is true on any rank (so all ranks stop at the same step)."""
        if self.world == 1:
            return flags
        agreed = torch.tensor([float(f) for f in flags], device=self.comm_device)
        dist.all_reduce(agreed, op=dist.ReduceOp.MAX)
        return tuple(bool(v) for v in agreed.tolist())

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` (picklable) on every rank."""
        if self.world == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


SINGLE = DataParallel()


def _flat_apply(tensors: list[torch.Tensor], collective: Callable[[torch.Tensor], None]) -> None:
    """Run ``collective`` in place on one flat tensor per (dtype, device) and copy the result back
    (channels_last tensors included: reshape and copy_ follow the logical order)."""
    groups: dict[tuple, list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.dtype, t.device), []).append(t)
    for group in groups.values():
        flat = torch.cat([t.reshape(-1) for t in group])  # (sum of numel,)
        collective(flat)
        for t, part in zip(group, flat.split([t.numel() for t in group])):
            t.copy_(part.view(t.shape))


@contextlib.contextmanager
def session(device: str) -> Iterator[DataParallel]:
    """The process group of a torchrun launch for the duration of a training run.

    Yields SINGLE for one process. Under torchrun (WORLD_SIZE > 1) it joins the group (NCCL when
    training on CUDA, gloo otherwise), unless the caller already did, and leaves it at the end.
    """
    env = environment()
    if env is None:
        yield SINGLE
        return
    rank, world, local_rank = env
    probe = DataParallel(rank, world, local_rank)
    train_on = probe.training_device(device)
    backend = "nccl" if train_on.type == "cuda" else "gloo"
    owned = not dist.is_initialized()
    if owned:
        if train_on.type == "cuda":
            torch.cuda.set_device(train_on)
        try:
            dist.init_process_group(backend)
        except (RuntimeError, ValueError) as exc:
            raise UserError(f"cannot join the {backend} process group of rank {rank}/{world}: "
                            f"{str(exc).splitlines()[0]}") from None
    comm = train_on if dist.get_backend() == "nccl" else torch.device("cpu")
    try:
        yield DataParallel(dist.get_rank(), dist.get_world_size(), local_rank, comm)
    finally:
        if owned:
            dist.destroy_process_group()


def launch(nproc: int, args: list[str]) -> int:
    """Run ``python -m gantools ARGS`` in ``nproc`` processes through torchrun (its launcher, run
    in this process, with --standalone: a free port on this machine); returns the exit status.
    The ranks print their own errors, so torchrun's failure report is kept quiet."""
    if environment() is not None:
        raise UserError("--nproc starts the processes itself; under torchrun leave it out")
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    parsed = torchrun.parse_args(["--standalone", "--nproc_per_node", str(nproc), "-m", "gantools", *args])
    # torchrun's default is 1 thread per process; share the cores out instead (OMP_NUM_THREADS wins).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        torchrun.run(parsed)
    except ChildFailedError as exc:
        codes = [failure.exitcode for failure in exc.failures.values()]
        return next((c for c in codes if c > 0), 1)
    except SignalException:
        return 130
    return 0
