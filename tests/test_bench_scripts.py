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


def test_conditional_quality_scores_real_digits_high_and_noise_low():
    """benchmarks/conditional_quality.py's measure: real digits of class k are read as k; noise and
    digits asked for the wrong class are not."""
    import conditional_quality
    from gantools_plugins.datasets.digits import dataset

    data = dataset().build(None, 16, 1)
    by_class = {k: data.get_batch(torch.nonzero(data.labels == k).flatten()[:40]).numpy() for k in range(10)}
    real = conditional_quality.class_accuracy(by_class)
    assert real["overall"] > 0.9 and real["passes"]
    shifted = conditional_quality.class_accuracy({(k + 1) % 10: x for k, x in by_class.items()})
    assert shifted["overall"] < 0.05 and not shifted["passes"]
    noise = torch.rand(40, 1, 16, 16, generator=torch.Generator().manual_seed(0)).numpy() * 2 - 1
    assert conditional_quality.class_accuracy({3: noise})["overall"] < 0.6


def test_run_quality_reads_dgz_after_step_500(tmp_path):
    """run_quality.py's conv28-mnist score: D(G(z)) and D(x) over the rows after step 500 only."""
    import run_quality

    rows = [{"step": s, "d_real_prob": 0.9, "d_fake_prob": 0.1} for s in range(10, 501, 10)]
    rows += [{"step": s, "d_real_prob": 0.6, "d_fake_prob": 0.4 + 0.2 * (s % 20 == 0)} for s in range(510, 1001, 10)]
    rows.insert(5, {"step": 50, "eval": {"digits": {"confident": 0.5}}})
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = run_quality.dgz_after(tmp_path / "metrics.jsonl")
    assert got["rows_after"] == 50 and got["d_fake_prob_mean"] == pytest.approx(0.5)
    assert (got["d_fake_prob_min"], got["d_fake_prob_max"]) == (pytest.approx(0.4), pytest.approx(0.6))
    assert got["d_real_prob_mean"] == pytest.approx(0.6)
    assert got["curve"][0]["d_fake_prob_mean"] == pytest.approx(0.1)


def test_autoencoder_quality_scores_a_run_like_the_gan_tables(tmp_path, capsys):
    """benchmarks/autoencoder_quality.py: digits metric of the prior samples and the autoencoder
    inverter's figures on held-out digits; refuses a run without a held-out split."""
    import autoencoder_quality
    import gantools

    small = dict(arch="dcgan", dataset="digits", image_size=16, arch_opts={"width": 8}, z_dim=8, batch_size=32,
                 steps=30, progress=False)
    gantools.train(out=tmp_path / "vae", loss="vae", dataset_opts={"split": "train"}, **small)
    got = autoencoder_quality.score(tmp_path / "vae", n_samples=50, n_images=40)
    assert got["digits"]["n"] == 50 and 0 <= got["digits"]["confident"] <= 1
    real = got["inversion"]["real"]
    assert real["n"] == 40 and real["cosine"] > real["cosine_random_pairs"]
    gantools.train(out=tmp_path / "all", loss="ae", **small)
    with pytest.raises(SystemExit, match="split=train"):
        autoencoder_quality.score(tmp_path / "all")
