"""The third-party path: pip-install the example plugin distribution, then list and train with it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "plugins" / "examples" / "gantools-lsgan"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    """Environment whose sys.path holds a pip install (--target) of the example distribution."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(EXAMPLE)], check=True, capture_output=True)
    assert list(target.glob("gantools_lsgan-*.dist-info"))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}


def gantools(args, env, cwd):
    return subprocess.run([sys.executable, "-m", "gantools", *args], env=env, cwd=cwd, capture_output=True,
                          text=True)


def test_installed_plugin_is_listed_with_its_distribution(plugin_env, tmp_path):
    proc = gantools(["list", "losses"], plugin_env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    row = next(line.split() for line in proc.stdout.splitlines() if line.split()[:1] == ["lsgan-example"])
    assert row[1:3] == ["gantools-lsgan", "0.1.0"] and row[-1] == "ok"


def test_train_with_the_installed_loss_through_the_cli(plugin_env, tmp_path):
    out = tmp_path / "run"
    proc = gantools(["run", "--loss", "lsgan-example", "--loss-opt", "real_target=0.9", "--arch", "mlp",
                     "--dataset", "toy:8gaussians", "--dataset-opt", "n=256", "--arch-opt", "hidden=16", "--z-dim", "2",
                     "--batch-size", "32", "--steps", "5", "--log-every", "5", "--no-progress", "--out", str(out)],
                    plugin_env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["loss"] == "lsgan-example" and config["config"]["loss_opts"] == {"real_target": 0.9}
    assert config["sources"]["lr"] == "loss:lsgan-example" and config["config"]["lr"] == 2e-4
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["step"] == 5 and "d_real" in row
    assert (out / "checkpoints" / "latest.pt").exists()


def test_without_the_install_the_loss_is_unknown(tmp_path):
    proc = gantools(["run", "--loss", "lsgan-example"], {**os.environ}, tmp_path)
    assert proc.returncode == 1 and proc.stderr.startswith("error: unknown loss 'lsgan-example'")
