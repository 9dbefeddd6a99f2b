"""Data-parallel training: 2 gloo processes under torchrun reproduce 1 process with the same global batch."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

import gantools
from gantools import checkpoint as ckpt
from gantools import distributed, ops, stepcontext
from gantools.cli.run import _without_nproc
from gantools.errors import UserError

# mlp + wgan-gp on 8 gaussians: no BatchNorm, so 2 ranks of 16 rows are exactly 1 process of 32.
SETTINGS = dict(arch="mlp", loss="wgan-gp", dataset="toy:8gaussians", dataset_opts={"n": 512},
                arch_opts={"hidden": 32, "layers": 2}, z_dim=4, batch_size=32, log_every=1, lr_decay="none",
                sample_every=2, checkpoint_every=2)
FLAGS = ["--arch", "mlp", "--loss", "wgan-gp", "--dataset", "toy:8gaussians", "--dataset-opt", "n=512",
         "--arch-opt", "hidden=32", "--arch-opt", "layers=2", "--z-dim", "4", "--batch-size", "32",
         "--log-every", "1", "--lr-decay", "none", "--sample-every", "2", "--checkpoint-every", "2", "--no-progress"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun(*args: str, cwd) -> subprocess.CompletedProcess:
    # --standalone: the rendezvous binds a free port itself (no race for a port picked beforehand).
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "gantools", "run", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV, cwd=cwd)


def rows(run_dir):
    return [{k: v for k, v in json.loads(line).items() if k != "images_per_s"}
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_rows_close(got, want, rel=1e-4, abs_=2e-6):
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for a, b in zip(got, want):
        assert a.keys() == b.keys()
        for key in b:
            assert a[key] == pytest.approx(b[key], rel=rel, abs=abs_), (a["step"], key)


def assert_states_close(got, want, rtol=1e-4, atol=1e-6):
    for part in ("generator", "critic", "generator_ema"):
        for name, tensor in want[part].items():
            torch.testing.assert_close(got[part][name], tensor, rtol=rtol, atol=atol)
    assert got["stream"] == want["stream"] and got["step"] == want["step"]
    assert torch.equal(got["rng"]["torch"], want["rng"]["torch"])  # the same global draws


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One process, global batch 32, 6 steps (checkpoints at 2, 4, 6)."""
    out = tmp_path_factory.mktemp("single") / "run"
    gantools.train(out=out, steps=6, **SETTINGS)
    return out


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Two gloo processes, 16 rows each, 4 steps."""
    base = tmp_path_factory.mktemp("two")
    proc = torchrun(*FLAGS, "--steps", "4", "--out", str(base / "run"), cwd=base)
    assert proc.returncode == 0, proc.stderr
    return base / "run", proc


def test_two_processes_train_like_one(two_ranks, reference):
    out, _ = two_ranks
    assert_rows_close(rows(out), rows(reference)[:4])
    assert_states_close(ckpt.load(out / "checkpoints" / "latest.pt"),
                        ckpt.load(reference / "checkpoints" / "step_0000004.pt"))


def test_only_rank_0_writes(two_ranks):
    out, proc = two_ranks
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["latest.pt", "step_0000002.pt",
                                                                       "step_0000004.pt"]
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["latest.png", "step_0000002.png",
                                                                   "step_0000004.png"]
    assert [r["step"] for r in rows(out)] == [1, 2, 3, 4]  # one row per step, not one per rank
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    assert proc.stderr.count("finished 4 steps") == 1 and "Traceback" not in proc.stderr


def test_two_rank_checkpoint_resumes_in_one_process(two_ranks, reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(two_ranks[0], out)
    gantools.train(out=out, resume=True, steps=6)
    assert_rows_close(rows(out), rows(reference))
    assert_states_close(ckpt.load(out / "checkpoints" / "latest.pt"),
                        ckpt.load(reference / "checkpoints" / "latest.pt"))


def test_one_process_checkpoint_resumes_in_two(reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    shutil.copyfile(out / "checkpoints" / "step_0000004.pt", out / "checkpoints" / "latest.pt")
    proc = subprocess.run([sys.executable, "-m", "gantools", "run", "--nproc", "2", "--resume", "--out", str(out),
                           "--steps", "6", "--no-progress"], capture_output=True, text=True, timeout=300, env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert_rows_close(rows(out), rows(reference))
    assert_states_close(ckpt.load(out / "checkpoints" / "latest.pt"),
                        ckpt.load(reference / "checkpoints" / "latest.pt"))


def test_a_batch_the_ranks_cannot_share_is_refused(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gantools", "run", "--nproc", "2", *FLAGS, "--batch-size", "33",
                           "--steps", "2", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300, env=ENV, cwd=tmp_path)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 2 and all("batch size 33 is not divisible by the 2 processes" in e for e in errors), \
        proc.stderr
    assert {e.split(":")[0] for e in errors} == {"error", "error (rank 1)"}
    assert "Traceback" not in proc.stderr and not (tmp_path / "run").exists()
    with pytest.raises(UserError, match="not divisible"):
        distributed.DataParallel(rank=0, world=2).local_batch(33)


def test_ranks_draw_their_rows_of_the_global_batch():
    draw = lambda n: torch.randn(n, 3)  # noqa: E731
    torch.manual_seed(0)
    whole = draw(8)
    for rank in (0, 1):
        torch.manual_seed(0)
        with distributed.DataParallel(rank=rank, world=2).sharding():
            part = stepcontext.rows(draw, 4)
        assert torch.equal(part, whole[4 * rank:4 * rank + 4])
    torch.manual_seed(0)
    assert torch.equal(stepcontext.rows(draw, 8), whole)  # outside a data-parallel step: as asked
    assert stepcontext.current() == stepcontext.StepContext()  # the step's context ended with it


def test_penalty_halves_average_to_the_global_penalty():
    # The interpolation weights of each rank's half are its rows of the global draw, so the mean of
    # the halves' penalties is the penalty of the whole batch.
    torch.manual_seed(1)
    critic = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    torch.manual_seed(5)
    whole = ops.gradient_penalty(critic, real, fake)
    halves = []
    for rank in (0, 1):
        torch.manual_seed(5)
        with distributed.DataParallel(rank=rank, world=2).sharding():
            rows_ = slice(4 * rank, 4 * rank + 4)
            halves.append(ops.gradient_penalty(critic, real[rows_], fake[rows_]))
    torch.testing.assert_close((halves[0] + halves[1]) / 2, whole)
    # The draw as an explicit input: each half given its rows of the global weights, no context.
    torch.manual_seed(5)
    eps = torch.rand(8)
    explicit = [ops.gradient_penalty(critic, real[r], fake[r], eps=eps[r]) for r in (slice(0, 4), slice(4, 8))]
    torch.testing.assert_close((explicit[0] + explicit[1]) / 2, whole)


def test_nproc_is_not_passed_on():
    assert _without_nproc(["run", "--nproc", "2", "--steps", "3", "--nproc=4", "--out", "x"]) == \
        ["run", "--steps", "3", "--out", "x"]


def test_augmented_two_processes_train_like_one(tmp_path):
    """--augment flip,diffaugment draws its randomness for the global batch: 2 ranks equal 1 process."""
    settings = dict(arch="mlp", loss="wgan-gp", dataset="digits", image_size=8, arch_opts={"hidden": 32, "layers": 2},
                    z_dim=4, batch_size=16, log_every=1, augment=["flip", "diffaugment"], steps=3)
    gantools.train(out=tmp_path / "one", **settings)
    gantools.train(out=tmp_path / "plain", **{**settings, "augment": []})
    flags = ["--arch", "mlp", "--loss", "wgan-gp", "--dataset", "digits", "--image-size", "8", "--arch-opt",
             "hidden=32", "--arch-opt", "layers=2", "--z-dim", "4", "--batch-size", "16", "--log-every", "1",
             "--augment", "flip,diffaugment", "--steps", "3", "--no-progress", "--out", str(tmp_path / "two")]
    proc = torchrun(*flags, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # 64-pixel inputs sum in another order over 2 x 8 rows than over 16: float noise of a few 1e-6 on
    # losses near 0.03 (the same without augmentation). Draws that did not match the single process
    # (other flips, shifts, cutouts) move the losses by 1e-2 and more: see the unaugmented run below.
    assert_rows_close(rows(tmp_path / "two"), rows(tmp_path / "one"), rel=1e-3, abs_=2e-5)
    got, want = (ckpt.load(tmp_path / name / "checkpoints" / "latest.pt") for name in ("two", "one"))
    # Adam turns that noise in a near-zero gradient into a step of up to lr (4e-4) in a weight.
    assert_states_close(got, want, rtol=1e-3, atol=1e-3)
    assert got["config"]["augment"] == ["flip", "diffaugment"]
    plain = rows(tmp_path / "plain")
    assert max(abs(a["d_real"] - b["d_real"]) for a, b in zip(plain, rows(tmp_path / "one"))) > 1e-2
