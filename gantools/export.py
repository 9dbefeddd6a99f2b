"""Exporting a run's generator (safetensors, torch.export .pt2, ONNX) and loading any of them back.

Every export writes PATH and the JSON sidecar PATH + ".json" (``G.onnx`` -> ``G.onnx.json``, so
exports of one run in several formats can share a folder), and embeds the same JSON in the file
(safetensors metadata, a .pt2 extra file, ONNX metadata_props) so that ``load_generator`` needs
only PATH. The JSON says what the generator needs and gives: z_dim, prior, its inputs (z, or z
and labels for a conditional run, with the class names), the output shape per sample and value
range, the format and the gantools/torch versions.

- ``safetensors``: the generator's state_dict plus the run config; rebuilding it needs gantools
  and the run's architecture plugin (the registry builds the network from the names).
- ``pt2`` (torch.export) and ``onnx``: the traced graph with its weights; they run with torch or
  onnxruntime alone. They are traced in eval mode with the plain-PyTorch reference of the gantools
  ops (GANTOOLS_OPS=reference while tracing), so the files hold only standard operators, with a
  dynamic batch dimension.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from gantools import fileio
from gantools.errors import UserError
from gantools.run import Run

FORMATS = ("safetensors", "pt2", "onnx")
SUFFIXES = {"safetensors": ".safetensors", "pt2": ".pt2", "onnx": ".onnx"}
ONNX_EXTRA = "pip install gantools[onnx]"
_KEY = "gantools"  # the embedded JSON's key (safetensors metadata, ONNX metadata_props); .pt2: "gantools.json"


def sidecar_path(path: str | os.PathLike) -> Path:
    """The JSON written beside an export: PATH + ".json" (``gen.pt2`` -> ``gen.pt2.json``)."""
    return Path(str(path) + ".json")


def export_generator(run: Run | str | os.PathLike, path: str | os.PathLike, fmt: str,
                     checkpoint: str = "latest.pt", registry=None) -> dict[str, Any]:
    """Write a run's generator (its EMA weights where the run keeps them) to ``path`` in ``fmt``,
    and the JSON sidecar PATH + ".json"; both atomically.

    Args:
        run: a Run, or a run directory (loaded on the CPU from ``checkpoint``).
        path: the file to write.
        fmt: safetensors, pt2 or onnx.
        registry: plugin registry for loading a run directory (default: the installed plugins).

    Returns:
        The JSON written (also embedded in the file).

    Raises:
        UserError: unknown format, onnx not installed, or a generator the format cannot hold (one
            line naming the format and the reason).
    """
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    path = Path(path)
    for other, suffix in SUFFIXES.items():
        if other != fmt and path.suffix == suffix:
            raise UserError(f"{path} has the suffix of the {other} format; give a {SUFFIXES[fmt]} path for {fmt}")
    if fmt == "onnx":
        _require_onnx()
    if not isinstance(run, Run):
        from gantools.api import load_run
        run = load_run(run, checkpoint=checkpoint, registry=registry)
    generator = copy.deepcopy(run.generator).cpu().eval().requires_grad_(False)
    info = describe(run, fmt)
    writer = {"safetensors": _save_safetensors, "pt2": _save_pt2, "onnx": _save_onnx}[fmt]
    writer(generator, run, info, path)
    fileio.atomic_write_json(sidecar_path(path), info)
    return info


def describe(run: Run, fmt: str) -> dict[str, Any]:
    """The JSON of an export of ``run``'s generator in ``fmt`` (safetensors adds the run config)."""
    from gantools import __version__

    images = run.data_kind == "images"
    info = {"format": fmt, "gantools_version": __version__, "torch_version": str(torch.__version__),
            "z_dim": int(run.config["z_dim"]), "prior": run.config["prior"],
            "inputs": ["z", "labels"] if run.conditional else ["z"],
            "conditional": run.conditional, "classes": run.classes,
            "output": run.data_kind, "output_shape": list(run.data_shape),
            "value_range": [-1.0, 1.0] if images else None, "dynamic_batch": fmt != "safetensors",
            "ema": float(run.config.get("ema", 0.0)) > 0,
            "run": {"arch": run.config["arch"], "loss": run.config["loss"], "dataset": run.config["dataset"],
                    "step": run.step, "directory": None if run.directory is None else str(run.directory)}}
    if fmt == "safetensors":
        info["config"] = run.config  # what the registry rebuilds the generator from
    return info


def _example_inputs(info: dict[str, Any], batch: int = 2) -> tuple[tuple[torch.Tensor, ...], tuple[dict, ...]]:
    """Example inputs for tracing and their dynamic shapes: dim 0 of z (and labels) is the batch."""
    z = torch.zeros(batch, info["z_dim"])
    dim = torch.export.Dim("batch", min=1)
    if not info["conditional"]:
        return (z,), ({0: dim},)
    return (z, torch.arange(batch) % len(info["classes"])), ({0: dim}, {0: dim})


@contextlib.contextmanager
def _tracing(fmt: str):
    """Trace (and serialise) with the reference ops, so the graph holds standard operators only,
    and quietly: the exporters' logs, warnings and printed partial graphs are about torch's
    internals, and a failure becomes one UserError naming ``fmt`` and the reason."""
    saved_ops, torch_log = os.environ.get("GANTOOLS_OPS"), logging.getLogger("torch")
    saved_level = torch_log.level
    os.environ["GANTOOLS_OPS"] = "reference"
    torch_log.setLevel(logging.CRITICAL)
    try:
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    except UserError:
        raise
    except Exception as exc:  # whatever stops torch.export / the ONNX exporter: say which and why
        raise UserError(f"cannot export this generator as {fmt}: {_reason(exc)}") from None
    finally:
        torch_log.setLevel(saved_level)
        if saved_ops is None:
            os.environ.pop("GANTOOLS_OPS", None)
        else:
            os.environ["GANTOOLS_OPS"] = saved_ops


def _reason(exc: BaseException) -> str:
    """One line from an exporter's exception: its innermost cause's first line, colour codes removed."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _save_safetensors(generator: torch.nn.Module, run: Run, info: dict[str, Any], path: Path) -> None:
    from safetensors.torch import save

    # safetensors stores dense row-major tensors: channels-last weights are copied to that order.
    tensors = {name: t.detach().contiguous() for name, t in generator.state_dict().items()}
    fileio.atomic_write(path, save(tensors, metadata={_KEY: json.dumps(info)}))


def _save_pt2(generator: torch.nn.Module, run: Run, info: dict[str, Any], path: Path) -> None:
    args, dynamic = _example_inputs(info)
    buffer = io.BytesIO()
    with _tracing("pt2"):
        program = torch.export.export(generator, args, dynamic_shapes=dynamic)
        # (warns that channels-last weights are not "complete" tensors; their whole storage is saved)
        torch.export.save(program, buffer, extra_files={f"{_KEY}.json": json.dumps(info)})
    fileio.atomic_write(path, buffer.getbuffer())


def _save_onnx(generator: torch.nn.Module, run: Run, info: dict[str, Any], path: Path) -> None:
    args, dynamic = _example_inputs(info)
    with _tracing("onnx"):
        program = torch.onnx.export(generator, args, dynamic_shapes=dynamic, input_names=info["inputs"],
                                    output_names=["images" if info["output"] == "images" else "points"],
                                    dynamo=True, verbose=False)
        model = program.model_proto
        entry = model.metadata_props.add()
        entry.key, entry.value = _KEY, json.dumps(info)
        data = model.SerializeToString()
    fileio.atomic_write(path, data)


def _require_onnx() -> None:
    import importlib.util

    missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"--format onnx needs {', '.join(missing)}: {ONNX_EXTRA}")


class ExportedGenerator:
    """An exported generator loaded back: ``G(z)``, or ``G(z, labels)`` for a conditional run, maps
    latents (N, z_dim) (and int64 classes (N,)) to a float32 tensor (N, *output_shape) on the CPU.

    Attributes:
        info: the export's JSON (z_dim, prior, classes, output_shape, value_range, format, ...).
        model: what runs it: the rebuilt nn.Module (safetensors), the torch.export module (pt2) or
            the onnxruntime InferenceSession (onnx).
    """

    def __init__(self, forward: Callable[..., torch.Tensor], info: dict[str, Any], model: Any):
        self._forward, self.info, self.model = forward, info, model

    @property
    def conditional(self) -> bool:
        return bool(self.info.get("conditional"))

    def __call__(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.conditional != (labels is not None):
            raise UserError("this generator is conditional: give a class for each latent" if self.conditional
                            else "this generator is not conditional: it takes no classes")
        z = z.float()  # the exported graphs take float32 latents
        args = (z,) if labels is None else (z, labels.long())
        with torch.no_grad():
            return self._forward(*args)

    def __repr__(self) -> str:
        return f"ExportedGenerator({self.info.get('format')}, z_dim={self.info.get('z_dim')}, " \
               f"output_shape={self.info.get('output_shape')})"


def load_generator(path: str | os.PathLike, registry=None) -> ExportedGenerator:
    """Load a generator written by ``export_generator`` (any of the three formats, told by the
    embedded JSON's format, else the suffix) on the CPU.

    Args:
        path: the exported file.
        registry: plugin registry for rebuilding a safetensors export (default: the installed plugins).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no exported generator at {path}")
    fmt = _format_of(path)
    loaders = {"safetensors": _load_safetensors, "pt2": _load_pt2, "onnx": _load_onnx}
    if fmt not in loaders:
        raise UserError(f"cannot tell the format of {path}: name it .safetensors, .pt2 or .onnx")
    try:
        return loaders[fmt](path, registry)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"{path} is not a readable {fmt} export: {_reason(exc)}") from None


def _format_of(path: Path) -> str | None:
    """An export's format: by its suffix (export refuses another format's suffix), else its sidecar's."""
    by_suffix = {suffix: fmt for fmt, suffix in SUFFIXES.items()}.get(path.suffix)
    if by_suffix is not None or not sidecar_path(path).is_file():
        return by_suffix
    try:
        return json.loads(sidecar_path(path).read_text()).get("format")
    except (ValueError, AttributeError):
        return None


def _load_safetensors(path: Path, registry) -> ExportedGenerator:
    from safetensors import safe_open
    from safetensors.torch import load_file

    from gantools.models import build_models
    from gantools.registry import default_registry

    with safe_open(str(path), framework="pt") as handle:
        info = json.loads((handle.metadata() or {})[_KEY])
    models = build_models(registry or default_registry(), info["config"], tuple(info["output_shape"]),
                          torch.device("cpu"), len(info["classes"] or ()))
    generator = models.generator
    generator.load_state_dict(load_file(str(path)))
    generator.eval().requires_grad_(False)
    return ExportedGenerator(generator, info, generator)


def _load_pt2(path: Path, registry) -> ExportedGenerator:
    extra = {f"{_KEY}.json": ""}
    program = torch.export.load(str(path), extra_files=extra)
    module = program.module()
    return ExportedGenerator(module, json.loads(extra[f"{_KEY}.json"]), module)


def _load_onnx(path: Path, registry) -> ExportedGenerator:
    try:
        import onnxruntime
    except ImportError:
        raise UserError(f"loading {path} needs onnxruntime: {ONNX_EXTRA}") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    info = json.loads(session.get_modelmeta().custom_metadata_map[_KEY])
    names = [item.name for item in session.get_inputs()]

    def forward(*args: torch.Tensor) -> torch.Tensor:
        feeds = {name: arg.detach().cpu().numpy() for name, arg in zip(names, args)}
        return torch.from_numpy(session.run(None, feeds)[0])

    return ExportedGenerator(forward, info, session)
