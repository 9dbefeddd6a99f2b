"""benchmarks/bench_training.py and benchmarks/gpu_suite.sh on the CPU: what they write, and the suite's plumbing."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gantools.registry import default_registry

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_training  # noqa: E402

TINY = ["--device", "cpu", "--steps", "2", "--warmup", "1", "--batch", "8", "--size", "16", "--width", "8"]


@pytest.fixture
def one_thread():
    # Tiny networks: on a small shared machine OpenMP's barriers would cost more than the work.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("size,width", [(16, 8), (64, 64)])
def test_the_plain_networks_have_the_dcgan_plugins_parameters(size, width):
    # The baseline must train the same networks: the same layers give the same parameter counts.
    arch = default_registry().create("architectures", "dcgan", {"width": width})
    shape = (3, size, size)
    ours = (arch.generator(bench_training.Z_DIM, shape), arch.discriminator(shape, per_sample=True))
    plain = (bench_training.plain_generator(size, width), bench_training.plain_critic(size, width))
    for a, b in zip(ours, plain):
        assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())
    z = torch.randn(2, bench_training.Z_DIM)
    assert plain[0](z).shape == (2, *shape) and plain[1](plain[0](z)).shape == (2, 1)


def test_bench_training_compares_gantools_with_the_plain_loop(tmp_path, one_thread):
    out = tmp_path / "training.json"
    assert bench_training.main([*TINY, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["settings"]["batch"] == 8 and report["settings"]["steps"] == 2 and report["n_critic"] == 5
    assert report["environment"]["device"] == "cpu" and report["environment"]["torch"] == torch.__version__
    rows = {r["variant"]: r for r in report["results"]}
    assert set(rows) == {"gantools", "plain"}
    for row in rows.values():
        assert row["status"] == "ok" and row["images_per_s"] > 0 and row["timed_s"] > 0
    assert rows["gantools"]["wall_s"] >= rows["gantools"]["timed_s"]
    assert report["speedup"] == pytest.approx(rows["gantools"]["images_per_s"] / rows["plain"]["images_per_s"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a CUDA machine the graphs run rather than being refused")
def test_bench_training_records_a_refused_cuda_graphs_run(tmp_path):
    out = tmp_path / "graphs.json"
    assert bench_training.main([*TINY, "--variants", "gantools", "--cuda-graphs", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    (row,) = report["results"]
    assert row["variant"] == "gantools --cuda-graphs" and row["status"].startswith("refused: ")
    assert "speedup" not in report


@pytest.mark.parametrize("args,message", [(["--size", "24"], "power of two"), (["--variants", "x"], "--variants")])
def test_bench_training_refuses_bad_arguments(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_training.parse_args(args)
    assert message in str(exc.value) or message in capsys.readouterr().err


SUITE_PARTS = ["info", "build", "imports", "tests", "bandwidth", "critic", "train-b8-plain", "train-b8-gantools",
               "train-b8-graphs", "nccl", "precision"]


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                    reason="the suite needs bash and coreutils' timeout")
def test_gpu_suite_runs_its_cpu_mode(tmp_path):
    # The suite's plumbing, before any GPU time is spent on it: every part runs or is skipped for a
    # reason, a refused --cuda-graphs run is a result, and OUT holds exactly three files. About 40 s.
    out = tmp_path / "out"
    env = {**os.environ, "GANTOOLS_SUITE_CPU": "1", "PYTHON": sys.executable, "OUT": str(out), "TMPDIR": str(tmp_path)}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_suite.sh")], env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(os.listdir(out)) == ["logs.txt", "results.json", "results.md"]
    result = json.loads((out / "results.json").read_text())
    parts = {p["part"]: p for p in result["parts"]}
    assert list(parts) == SUITE_PARTS
    assert {parts[name]["status"] for name in ("build", "bandwidth", "critic", "precision")} == {"skipped"}
    for name in ("info", "tests", "train-b8-plain", "train-b8-gantools", "train-b8-graphs", "nccl"):
        assert parts[name]["status"] == "ok", (parts[name], proc.stdout[-3000:])
    assert parts["train-b8-graphs"]["note"].startswith("refused: ")
    assert result["info"]["mode"].startswith("cpu") and result["info"]["torch"] == torch.__version__
    assert result["tests"]["failed"] == 0 and result["tests"]["errors"] == 0
    training = {r["variant"]: r for r in result["training"]}
    assert training["plain"]["images_per_s"] > 0 and training["gantools"]["vs_plain"] > 0
    assert training["gantools --cuda-graphs"]["status"].startswith("refused: ")
    assert "| train-b8-gantools | ok |" in (out / "results.md").read_text()
    logs = (out / "logs.txt").read_text()
    assert "===== nccl: ok" in logs and "all_reduce ok: world 1" in logs
