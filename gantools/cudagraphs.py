"""--cuda-graphs: one training iteration (n_critic critic updates and the generator update) captured
as a CUDA graph and replayed, so a step costs one launch instead of hundreds.

A DCGAN step at 64 px is a few milliseconds on an H100: launch overhead, not arithmetic, decides
the speed. Capture follows PyTorch's whole-network recipe: a few eager iterations on a side
stream (real training steps, counted as such), then one capture of the iteration, replayed from
then on. What changes between iterations lives in tensors the graph reads: the real batches
(copied into static buffers), the learning rate (capturable optimisers with a tensor lr), the
weight-average decay, and the random draws (latents, penalty interpolation, augmentation), which
PyTorch's CUDA generator makes graph-safe. Logs are the graph's static outputs, cloned after each
replay. Where capture cannot work, ``refusal`` names the reason and the run does not start.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from gantools.trainer import Trainer

WARMUP = 3  # eager iterations on a side stream before the capture (cuDNN and autograd settle)


def refusal(config: dict[str, Any], device: torch.device, world: int, loss) -> str | None:
    """Why a run cannot be captured, or None."""
    if device.type != "cuda":
        return f"it needs a CUDA device (the run trains on {device})"
    if world > 1:
        return "it runs in one process (data-parallel steps all-reduce between ranks outside the graph)"
    if config["precision"] == "fp16":
        return "fp16's GradScaler decides on the host whether to skip each update; use --precision bf16 or fp32"
    if config.get("conditional", "off") != "off":
        return "conditional runs are not captured (the real batches' labels have no static buffer in the graph)"
    if config["inverter"]:
        return f"joint inverters ({config['inverter']}) run their own objective outside the captured step"
    if getattr(loss, "autoencoder", False):
        return f"autoencoder runs (--loss {config['loss']}) are not captured; train them without --cuda-graphs"
    if getattr(loss, "lazy", 1) != 1:
        return (f"the loss applies its penalty on every {loss.lazy}th critic step only, so iterations differ; "
                f"use lazy=1")
    if not getattr(loss, "graph_safe", True):
        return f"the loss plugin {config['loss']} says it cannot be captured (graph_safe = False)"
    return None


class GraphedIteration:
    """Runs a trainer's iterations: eager first, then captured and replayed.

    Args:
        trainer: a Trainer built with ``cuda_graphs`` on (capturable optimisers, tensor schedules).
    """

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager = 0
        n = trainer.config["n_critic"]
        self.static_real = [torch.empty((trainer.local_batch, *trainer.data_shape), device=trainer.device)
                            .contiguous(memory_format=trainer.memory_format) for _ in range(n)]
        self.outputs: dict[str, torch.Tensor] = {}

    def __call__(self) -> dict[str, torch.Tensor]:
        t = self.trainer
        t.set_schedules()
        for buffer in self.static_real:  # copies queued on the stream: no wait for the device
            buffer.copy_(t.host_batch(), non_blocking=True)
        t.next_real = iter(self.static_real).__next__
        try:
            if self.graph is None and self.eager < WARMUP:
                self.eager += 1
                return self._side_stream(t.iteration)
            if self.graph is None:
                self._capture()
            self.graph.replay()
            return {k: v.clone() for k, v in self.outputs.items()}
        finally:
            t.next_real = None

    def _side_stream(self, func):
        stream = torch.cuda.Stream(self.trainer.device)
        stream.wait_stream(torch.cuda.current_stream(self.trainer.device))
        with torch.cuda.stream(stream):
            out = func()
        torch.cuda.current_stream(self.trainer.device).wait_stream(stream)
        return out

    def _capture(self) -> None:
        from gantools.errors import UserError

        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self.outputs = self.trainer.iteration()
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"--cuda-graphs: capturing the training step failed ({first}); "
                            f"run without --cuda-graphs") from None
        self.graph = graph
