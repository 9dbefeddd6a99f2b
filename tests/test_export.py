"""gantools export / load_generator: safetensors, torch.export .pt2 and ONNX, the JSON sidecar, refusals."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import gantools
from gantools import checkpoint
from gantools.cli import cli
from gantools.errors import UserError
from gantools.export import FORMATS, export_generator, load_generator, sidecar_path

# A tiny dcgan on 16-pixel digits; digits' recommended settings keep an EMA generator (ema 0.999).
RUN = dict(arch="dcgan", loss="wgan-gp", dataset="digits", arch_opts={"width": 8}, z_dim=6, batch_size=32,
           steps=2, n_critic=1)
TOLERANCE = 1e-5  # traced graphs may fuse or reorder float32 arithmetic; safetensors is bit-exact


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """{"plain": run dir, "conditional": run dir}."""
    root = tmp_path_factory.mktemp("export-runs")
    gantools.train(out=root / "plain", **RUN)
    gantools.train(out=root / "conditional", conditional="projection", **RUN)
    return {"plain": root / "plain", "conditional": root / "conditional"}


@pytest.fixture(scope="session")
def exported(runs, tmp_path_factory):
    """{(kind, format): path} for both runs in every format, exported once."""
    root = tmp_path_factory.mktemp("exports")
    paths = {}
    for kind, run_dir in runs.items():
        for fmt in FORMATS:
            paths[kind, fmt] = root / f"{kind}.{fmt}"
            export_generator(run_dir, paths[kind, fmt], fmt)
    return paths


def _inputs(run, n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, run.config["z_dim"], generator=gen)
    labels = torch.randint(len(run.classes), (n,), generator=gen) if run.conditional else None
    return z, labels


@pytest.mark.parametrize("kind", ["plain", "conditional"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_loaded_generator_reproduces_the_runs_generator(runs, exported, kind, fmt):
    run = gantools.load_run(runs[kind])
    loaded = gantools.load_generator(exported[kind, fmt])
    for n in (3, 5):  # any batch size (the traced formats have a dynamic batch dimension)
        z, labels = _inputs(run, n, seed=n)
        want = run.generate(z, labels=labels)
        got = loaded(z) if labels is None else loaded(z, labels)
        assert got.shape == (n, 1, 16, 16) and got.dtype == torch.float32
        if fmt == "safetensors":
            assert torch.equal(got, want)
        else:
            assert (got - want).abs().max().item() < TOLERANCE


def test_safetensors_holds_the_ema_weights(runs, exported):
    from safetensors.torch import load_file

    state = checkpoint.load(runs["plain"] / "checkpoints" / "latest.pt")
    saved = load_file(str(exported["plain", "safetensors"]))
    assert saved.keys() == state["generator_ema"].keys()
    assert all(torch.equal(saved[k], state["generator_ema"][k]) for k in saved)
    assert any(not torch.equal(saved[k], state["generator"][k]) for k in saved)  # the average, not G


# Runs an exported file with torch / onnxruntime while `import gantools` fails.
STANDALONE = """
import json, sys
sys.modules["gantools"] = sys.modules["gantools_plugins"] = None
import numpy as np, onnxruntime, torch
try:
    import gantools
except ImportError:
    pass
else:
    raise SystemExit("gantools is importable")
for job in json.loads(sys.argv[1]):
    args = [np.load(p) for p in job["inputs"]]
    if job["format"] == "pt2":
        out = torch.export.load(job["file"]).module()(*map(torch.from_numpy, args)).numpy()
    else:
        session = onnxruntime.InferenceSession(job["file"], providers=["CPUExecutionProvider"])
        out = session.run(None, dict(zip([i.name for i in session.get_inputs()], args)))[0]
    np.save(job["out"], out)
"""


def test_pt2_and_onnx_run_with_torch_or_onnxruntime_alone(runs, exported, tmp_path):
    jobs, wants = [], []
    for kind in ("plain", "conditional"):
        run = gantools.load_run(runs[kind])
        for n in (3, 5):
            z, labels = _inputs(run, n, seed=10 + n)
            inputs = [tmp_path / f"{kind}{n}-z.npy"]
            np.save(inputs[0], z.numpy())
            if labels is not None:
                inputs.append(tmp_path / f"{kind}{n}-labels.npy")
                np.save(inputs[1], labels.numpy())
            for fmt in ("pt2", "onnx"):
                out = tmp_path / f"{kind}{n}-{fmt}-out.npy"
                jobs.append({"format": fmt, "file": str(exported[kind, fmt]), "inputs": list(map(str, inputs)),
                             "out": str(out)})
                wants.append((out, run.generate(z, labels=labels)))
    done = subprocess.run([sys.executable, "-c", STANDALONE, json.dumps(jobs)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    for out, want in wants:
        got = torch.from_numpy(np.load(out))
        assert got.shape == want.shape and (got - want).abs().max().item() < TOLERANCE, out.name


def test_json_sidecar_says_what_the_generator_needs(exported):
    for (kind, fmt), path in exported.items():
        info = json.loads(sidecar_path(path).read_text())
        assert info == gantools.load_generator(path).info  # the same JSON is embedded in the file
        assert info["format"] == fmt and info["gantools_version"] == gantools.__version__
        assert (info["z_dim"], info["prior"], info["output_shape"], info["value_range"]) == (6, "normal", [1, 16, 16],
                                                                                            [-1.0, 1.0])
        assert info["ema"] is True and info["dynamic_batch"] is (fmt != "safetensors")
        if kind == "conditional":
            assert info["inputs"] == ["z", "labels"] and info["classes"] == [str(d) for d in range(10)]
        else:
            assert info["inputs"] == ["z"] and info["classes"] is None and info["conditional"] is False
        assert ("config" in info) is (fmt == "safetensors")  # what the registry rebuilds the network from


def test_conditional_generator_needs_labels_and_plain_one_refuses_them(exported):
    z = torch.zeros(2, 6)
    with pytest.raises(UserError, match="give a class"):
        load_generator(exported["conditional", "safetensors"])(z)
    with pytest.raises(UserError, match="not conditional"):
        load_generator(exported["plain", "safetensors"])(z, torch.zeros(2, dtype=torch.long))


def test_traced_graphs_use_the_reference_ops_not_the_native_ones(tmp_path, monkeypatch):
    from gantools.nn import FusedLeakyReLU
    from gantools.run import Run

    monkeypatch.setenv("GANTOOLS_OPS", "auto")  # native where built: eager calls run torch.ops.gantools
    torch.manual_seed(0)
    generator = torch.nn.Sequential(torch.nn.Linear(4, 8, bias=False), FusedLeakyReLU(8), torch.nn.Linear(8, 2))
    config = {"z_dim": 4, "prior": "uniform", "arch": "custom", "loss": "gan", "dataset": "toy", "ema": 0.0}
    run = Run(config=config, generator=generator.eval(), critic=None, data_kind="points", data_shape=(2,),
              directory=None, step=0, device=torch.device("cpu"))
    info = export_generator(run, tmp_path / "g.pt2", "pt2")
    assert os.environ["GANTOOLS_OPS"] == "auto"  # restored after tracing
    code = torch.export.load(str(tmp_path / "g.pt2")).graph_module.code
    assert "torch.ops.gantools" not in code and "leaky_relu" in code
    assert info["output"] == "points" and info["value_range"] is None and info["prior"] == "uniform"
    z = torch.rand(7, 4)
    assert (load_generator(tmp_path / "g.pt2")(z) - generator(z)).abs().max().item() < TOLERANCE


def test_cli_export_writes_the_file_and_its_json(runs, tmp_path):
    out = tmp_path / "g.safetensors"
    result = CliRunner().invoke(cli, ["export", str(runs["plain"]), "--format", "safetensors", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and sidecar_path(out).is_file() and f"wrote {out}" in result.output


def test_cli_one_line_errors(runs, tmp_path, cli_error):
    assert "no run directory" in cli_error(["export", str(tmp_path / "missing"), "--format", "pt2"])
    assert "'--format'" in cli_error(["export", str(runs["plain"]), "--format", "tflite"])
    err = cli_error(["export", str(runs["plain"]), "--format", "pt2", "--out", str(tmp_path / "g.onnx")])
    assert "onnx format" in err


def test_onnx_refuses_without_its_packages(runs, tmp_path, cli_error, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else find_spec(name, *a))
    err = cli_error(["export", str(runs["plain"]), "--format", "onnx", "--out", str(tmp_path / "g.onnx")])
    assert "onnxscript" in err and "pip install gantools[onnx]" in err


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_untraceable_generator_is_refused_in_one_line_and_safetensors_still_works(runs, tmp_path, cli_error,
                                                                                 monkeypatch, fmt):
    from gantools_plugins.architectures import dcgan

    forward = dcgan.Generator.forward

    def data_dependent(self, z):  # a Python branch on a value: torch.export cannot trace it
        return forward(self, z) if z.sum() > 0 else -forward(self, z)

    monkeypatch.setattr(dcgan.Generator, "forward", data_dependent)
    err = cli_error(["export", str(runs["plain"]), "--format", fmt, "--out", str(tmp_path / f"g.{fmt}")])
    assert err.startswith(f"error: cannot export this generator as {fmt}: ") and "data-dependent" in err
    assert not (tmp_path / f"g.{fmt}").exists() and not sidecar_path(tmp_path / f"g.{fmt}").exists()
    export_generator(runs["plain"], tmp_path / "g.safetensors", "safetensors")
    assert load_generator(tmp_path / "g.safetensors").info["format"] == "safetensors"


def test_load_generator_errors(tmp_path):
    with pytest.raises(UserError, match="no exported generator"):
        load_generator(tmp_path / "none.pt2")
    (tmp_path / "g.bin").write_bytes(b"x")
    with pytest.raises(UserError, match="cannot tell the format"):
        load_generator(tmp_path / "g.bin")
    (tmp_path / "g.pt2").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a readable pt2 export"):
        load_generator(tmp_path / "g.pt2")
