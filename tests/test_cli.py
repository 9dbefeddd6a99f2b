"""The command line: every user error is one line and a non-zero exit; commands do their job."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from click.testing import CliRunner

from gantools import distributed
from gantools.cli import cli, main

TINY_FLAGS = ["--arch", "mlp", "--dataset", "toy:8gaussians", "--dataset-opt", "n=256", "--arch-opt", "hidden=16",
              "--z-dim", "2", "--batch-size", "32", "--steps", "4", "--no-progress"]


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    subprocess.run([sys.executable, "-m", "gantools", "run", *TINY_FLAGS, "--out", str(out)], check=True,
                   capture_output=True)
    return out


@pytest.mark.parametrize("args,message", [
    (["run", "--arch", "nosuch"], "unknown architecture 'nosuch'; installed: conv28, dcgan, mlp, resnet"),
    (["run", "--loss", "nosuch"], "unknown loss 'nosuch'; installed: ae, dae, gan, hinge, lsgan, vae, wgan, wgan-gp"),
    (["run", "--arch-opt", "width"], "--arch-opt expects key=value"),
    (["run", "--arch-opt", "depth=3"], "architecture 'dcgan' has no option 'depth'"),
    (["run", "--arch-opt", "width=wide"], "cannot read 'wide' as int"),
    (["run", "--steps", "0"], "steps must be at least 1"),
    (["run", "--steps", "many"], "'many' is not a valid integer"),
    (["run", "--betas", "0.5"], "betas must be two numbers"),
    (["run", "--lr", "-1"], "lr must be positive"),
    (["run", "--dataset", "toy:moons"], "moons"),
    (["run", "--dataset", "folder:/no/such/dir"], "/no/such/dir"),
    (["run", "--image-size", "36"], "4..7 times a power of two"),
    (["run", "--config", "/no/such.json"], "cannot read config file"),
    (["run", "--resume"], "resume needs the run directory"),
    (["sample", "/no/such/run", "--out", "x.png"], "no run directory at /no/such/run"),
    (["list", "gadgets"], "'gadgets' is not one of"),
])
def test_user_errors_are_one_line(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(args, capsys)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert "Traceback" not in err + out


def test_empty_folder_and_corrupt_checkpoint(tmp_path, capsys, trained_run):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(["run", "--dataset", f"folder:{tmp_path / 'empty'}", "--out", str(tmp_path / "r")], capsys)
    assert code == 1 and "error:" in err and "empty" in err
    broken = tmp_path / "broken"
    (broken / "checkpoints").mkdir(parents=True)
    (broken / "checkpoints" / "latest.pt").write_bytes(b"not a checkpoint at all")
    code, _, err = run_cli(["sample", str(broken), "--out", str(tmp_path / "s.png")], capsys)
    assert code == 1 and err.startswith("error: checkpoint") and "corrupt" in err and len(err.splitlines()) == 1


def test_a_real_process_prints_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gantools", "run", "--arch", "nosuch"], capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: unknown architecture 'nosuch'; installed: conv28, dcgan, mlp, resnet"


def test_sample_writes_png_and_npz(trained_run, tmp_path, capsys):
    code, out, _ = run_cli(["sample", str(trained_run), "--n", "50", "--out", str(tmp_path / "s.png"),
                            "--npz", str(tmp_path / "s.npz")], capsys)
    assert code == 0 and "wrote" in out
    samples = np.load(tmp_path / "s.npz")["samples"]
    assert samples.shape == (50, 2) and np.isfinite(samples).all()
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_list_shows_builtins_with_distribution(capsys):
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("  ")}
    for name in ("dcgan", "mlp", "gan", "wgan", "wgan-gp", "digits", "folder", "npz", "toy"):
        assert rows[name][1] == "gantools" and rows[name][-1] == "ok"
    code, out, _ = run_cli(["list", "losses"], capsys)
    assert "losses:" in out and "dcgan" not in out


def test_info_reports_versions_device_and_backends(capsys):
    code, out, _ = run_cli(["info"], capsys)
    assert code == 0
    for needle in ("gantools 0.1.0", "torch", "device", "bias_leaky_relu", "gradient_penalty", "dcgan, mlp, resnet", "digits, fid, is, kid, modes, swd"):
        assert needle in out


def test_help_shows_defaults(capsys):
    code, out, _ = run_cli(["run", "--help"], capsys)
    assert code == 0
    assert "--arch TEXT" in out and "[default: (dcgan)]" in out and "[default: (64)]" in out
    assert "[default: (the loss's recipe)]" in out


RUN_ARGS = ["--arch", "mlp", "--nproc", "2", "--steps", "3", "--arch-opt", "hidden=16", "--nproc=2", "--no-progress"]
PASSED_ON = ["run", "--arch", "mlp", "--steps", "3", "--arch-opt", "hidden=16", "--no-progress"]


@pytest.mark.parametrize("call", ["main", "cli.main", "CliRunner"])
def test_nproc_relaunches_with_runs_own_arguments(call, monkeypatch):
    launched = []
    monkeypatch.setattr(distributed, "launch", lambda nproc, args: launched.append((nproc, args)) or 0)
    monkeypatch.setattr(sys, "argv", ["gantools", "sample", "elsewhere"])  # never read: run has its own
    if call == "main":
        with pytest.raises(SystemExit) as exit_info:
            main(["run", *RUN_ARGS])
        code = exit_info.value.code
    elif call == "cli.main":
        code = cli.main(args=["run", *RUN_ARGS], standalone_mode=False)
    else:
        code = CliRunner().invoke(cli, ["run", *RUN_ARGS]).exit_code
    assert code == 0
    assert launched == [(2, PASSED_ON)]


def test_an_unwritable_output_is_one_line(tmp_path, capsys, trained_run):
    (tmp_path / "afile").write_text("x")
    for args in (["sample", str(trained_run), "--n", "4", "--out", str(tmp_path / "afile" / "s.png")],
                 ["plot", str(trained_run), "--out", str(tmp_path / "afile" / "plots")],
                 ["prepare", str(tmp_path), "--size", "8", "--out", str(tmp_path / "afile" / "p")]):
        code, out, err = run_cli(args, capsys)
        assert code == 1 and err.startswith("error: ") and len(err.splitlines()) == 1, err
        assert str(tmp_path / "afile") in err and "Traceback" not in err + out
