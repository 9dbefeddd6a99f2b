"""The training loop: resume equivalence, divergence handling, Ctrl-C, run directory contents."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from importlib.metadata import EntryPoint

import pytest
import torch

import gantools
from gantools import checkpoint as ckpt
from gantools.errors import UserError
from gantools.registry import Registry, installed_entry_points
from gantools.trainer import TrainingDiverged


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def losses(rows):
    return [{k: v for k, v in r.items() if k != "images_per_s"} for r in rows]


def test_run_directory_contents(tmp_path, tiny_settings):
    run = gantools.train(out=tmp_path / "run", **tiny_settings)
    out = tmp_path / "run"
    assert run.step == 6 and run.status == "finished"
    saved = json.loads((out / "config.json").read_text())
    assert saved["config"]["arch"] == "mlp" and saved["sources"]["arch"] == "cli"
    assert saved["sources"]["n_critic"] == "loss:wgan-gp" and saved["config"]["n_critic"] == 5
    # the toy dataset's recommendation for wgan-gp, merged under no user loss options
    assert saved["sources"]["lr"] == "dataset:toy" and saved["config"]["lr"] == 2e-3
    assert saved["config"]["loss_opts"] == {"weight": 1.0}
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["latest.pt", "step_0000003.pt",
                                                                       "step_0000006.pt"]
    assert (out / "samples" / "step_0000003.png").exists() and (out / "plots" / "losses.png").exists()
    rows = metrics(out)
    assert [r["step"] for r in rows] == [2, 4, 6]
    for key in ("d_loss", "g_loss", "wasserstein", "penalty", "d_real", "d_fake", "images_per_s"):
        assert all(key in r for r in rows)


DIGITS = {"dataset": "digits", "image_size": 16, "arch": "dcgan", "arch_opts": {"width": 8}, "z_dim": 8}


@pytest.mark.parametrize("variant", [
    {},  # mlp + wgan-gp on 8gaussians
    {**DIGITS, "loss": "wgan", "dataset_opts": {}},  # weight clipping, RMSprop, BatchNorm critic
    {**DIGITS, "loss": "gan", "dataset_opts": {}, "ema": 0.9},  # Adam, BatchNorm, weight average
    # The GradScalers' state and the lazy penalty's phase (20 critic steps at the split, 20 % 3 != 0)
    {"precision": "fp16", "loss_opts": {"weight": 1.0, "lazy": 3}},
], ids=["mlp-wgan-gp", "dcgan-wgan", "dcgan-gan-ema", "mlp-fp16-lazy"])
def test_resume_gives_the_same_losses_and_weights(tmp_path, tiny_settings, variant):
    settings = {**tiny_settings, **variant, "steps": 8, "log_every": 1}
    straight = gantools.train(out=tmp_path / "straight", **settings)
    gantools.train(out=tmp_path / "split", **{**settings, "steps": 4})
    resumed = gantools.train(out=tmp_path / "split", resume=True, steps=8)
    assert resumed.step == 8
    # Exact: both runs execute the same kernels in the same layout and order on this machine; resume
    # must restore every state (weights, optimisers, RNG, data order) bit for bit.
    assert losses(metrics(tmp_path / "split")) == losses(metrics(tmp_path / "straight"))
    for a, b in zip(straight.generator.state_dict().values(), resumed.generator.state_dict().values()):
        assert torch.equal(a, b)


def test_resume_refuses_changed_model_settings(tmp_path, tiny_settings):
    gantools.train(out=tmp_path / "run", **tiny_settings)
    with pytest.raises(UserError, match="only steps, epochs, precision, cuda_graphs, device"):
        gantools.train(out=tmp_path / "run", resume=True, lr=1.0)
    with pytest.raises(UserError, match="already holds a run"):
        gantools.train(out=tmp_path / "run", **tiny_settings)


class ExplodingLoss:
    """A Wasserstein-style loss whose critic objective turns NaN at its fifth call."""

    defaults = {"n_critic": 1, "optimizer": "adam", "lr": 1e-4, "betas": (0.5, 0.9)}

    def __init__(self):
        self.calls = 0

    def discriminator_loss(self, critic, real, fake):
        self.calls += 1
        loss = critic(fake).mean() - critic(real).mean()
        return (loss * float("nan") if self.calls >= 5 else loss), {}

    def generator_loss(self, critic, fake):
        return -critic(fake).mean(), {}


def test_nan_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path, tiny_settings):
    fake = EntryPoint("exploding", f"{__name__}:ExplodingLoss", "gantools.losses")
    registry = Registry(lambda: [*installed_entry_points(), ("test-dist", "0", fake)])
    settings = {**tiny_settings, "loss": "exploding", "checkpoint_every": 2, "steps": 10}
    # NaN from step 5; the losses are checked at the log row and checkpoint of step 6, before saving.
    with pytest.raises(TrainingDiverged, match=r"d_loss became nan between steps 5 and 6.*last good checkpoint"):
        gantools.train(out=tmp_path / "run", registry=registry, **settings)
    state = ckpt.load(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["generator"].values())


def test_ctrl_c_checkpoints_and_exits_zero(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "gantools", "run", "--arch", "mlp", "--dataset", "toy:8gaussians",
           "--dataset-opt", "n=512", "--arch-opt", "hidden=16", "--z-dim", "2", "--batch-size", "32",
           "--steps", "1000000", "--log-every", "1", "--no-progress", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "metrics.jsonl").exists() or \
            (out / "metrics.jsonl").exists() and not (out / "metrics.jsonl").read_text().strip():
        time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
    os.kill(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "interrupted at step" in stderr and "--resume" in stderr and "Traceback" not in stderr
    step = ckpt.load(out / "checkpoints" / "latest.pt")["step"]
    assert 0 < step < 1000000


def test_linear_lr_decay_follows_the_step(tmp_path, tiny_settings):
    gantools.train(out=tmp_path / "run", **{**tiny_settings, "steps": 4, "lr": 1e-3, "lr_decay": "linear",
                                                    "lr_decay_start": 0.0})
    state = ckpt.load(tmp_path / "run" / "checkpoints" / "latest.pt")
    for opt in ("opt_d", "opt_g"):  # the last iteration (step index 3 of 4) ran at lr * (1 - 3/4)
        assert state[opt]["param_groups"][0]["lr"] == pytest.approx(2.5e-4)
    with pytest.raises(UserError, match="lr_decay must be one of"):
        gantools.train(out=tmp_path / "bad", **{**tiny_settings, "lr_decay": "cosine"})


@pytest.mark.parametrize("start,last_lr", [(0.5, 5e-4), (0.8, 1e-3)])
def test_linear_lr_decay_can_start_late(tmp_path, tiny_settings, start, last_lr):
    # 4 steps; the last iteration runs with 1/4 of the run left: start 0.5 -> lr * 0.25 / 0.5,
    # start 0.8 -> the decay has not begun (0.25 / 0.2 > 1 keeps the full rate).
    settings = {**tiny_settings, "steps": 4, "lr": 1e-3, "lr_decay": "linear", "lr_decay_start": start}
    gantools.train(out=tmp_path / "run", **settings)
    state = ckpt.load(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert state["opt_d"]["param_groups"][0]["lr"] == pytest.approx(last_lr)
    with pytest.raises(UserError, match=r"lr_decay_start must be in \[0, 1\)"):
        gantools.train(out=tmp_path / "bad", **{**settings, "lr_decay_start": 1.0})


def test_dataset_recommendations_for_one_architecture():
    from gantools.config import resolve
    from gantools.registry import default_registry

    # toy recommends 128-unit MLPs ("arch:mlp"); a user's option still wins, key by key.
    config, sources = resolve(default_registry(), {"arch": "mlp", "loss": "wgan-gp", "dataset": "toy:8gaussians"})
    assert config["arch_opts"]["hidden"] == 128 and sources["arch_opts"] == "dataset:toy"
    config, sources = resolve(default_registry(), {"arch": "mlp", "loss": "wgan-gp", "dataset": "toy:8gaussians",
                                                   "arch_opts": {"layers": 2}})
    assert config["arch_opts"] == {"hidden": 128, "layers": 2}
    assert sources["arch_opts"] == "cli"
    # Another architecture does not receive the mlp's options.
    config, _ = resolve(default_registry(), {"arch": "dcgan", "loss": "wgan-gp", "dataset": "digits"})
    assert "hidden" not in config["arch_opts"]


def _trainer(tmp_path, **settings):
    from gantools.config import resolve
    from gantools.registry import default_registry
    from gantools.trainer import Trainer

    config, sources = resolve(default_registry(), settings)
    return Trainer(default_registry(), config, sources, tmp_path / "t", progress=False)


def test_channels_last_is_on_for_images_by_default(tmp_path, tiny_settings):
    def conv(trainer):  # a conv with several input channels, where the two layouts differ
        return next(m for m in trainer.models.critic.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)

    auto = _trainer(tmp_path, **{**DIGITS, "loss": "wgan-gp"})
    assert conv(auto).weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv(auto).weight.is_contiguous()
    off = _trainer(tmp_path, **{**DIGITS, "loss": "wgan-gp", "channels_last": False})
    assert conv(off).weight.is_contiguous()
    points = _trainer(tmp_path, **tiny_settings)  # auto leaves 2-D points alone
    assert points.memory_format == torch.preserve_format
    with pytest.raises(UserError, match="--channels-last applies to image data"):
        _trainer(tmp_path, **{**tiny_settings, "channels_last": True})


def test_channels_last_trains_like_the_default_layout(tmp_path, tiny_settings):
    settings = {**tiny_settings, **DIGITS, "loss": "wgan-gp", "steps": 3, "log_every": 1, "dataset_opts": {}}
    nhwc = losses(metrics(gantools.train(out=tmp_path / "nhwc", **settings).directory))
    nchw = losses(metrics(gantools.train(out=tmp_path / "nchw", **settings, channels_last=False).directory))
    for a, b in zip(nhwc, nchw):
        for key in ("d_loss", "g_loss", "penalty"):
            assert a[key] == pytest.approx(b[key], rel=1e-3, abs=1e-4)


def test_time_limit_stops_with_a_checkpoint_and_resumes(tmp_path, tiny_settings):
    settings = {**tiny_settings, "steps": 100000, "checkpoint_every": 100000, "sample_every": 100000}
    start = time.perf_counter()
    run = gantools.train(out=tmp_path / "t", time_limit=0.02, **settings)  # 1.2 s
    elapsed = time.perf_counter() - start
    assert run.status == "time limit" and 0 < run.step < 100000
    assert elapsed < 30
    state = ckpt.load(tmp_path / "t" / "checkpoints" / "latest.pt")
    assert state["step"] == run.step
    more = gantools.train(out=tmp_path / "t", resume=True, steps=run.step + 3, time_limit=0.0)
    assert more.status == "finished" and more.step == run.step + 3
    with pytest.raises(UserError, match="time_limit must be >= 0"):
        gantools.train(out=tmp_path / "u", time_limit=-1, **settings)


def test_lazy_penalty_is_logged_on_the_steps_that_apply_it(tmp_path, tiny_settings):
    settings = {**tiny_settings, "steps": 4, "log_every": 1, "n_critic": 1, "loss_opts": {"lazy": 2}}
    rows = metrics(gantools.train(out=tmp_path / "run", **settings).directory)
    assert ["penalty" in r for r in rows] == [True, False, True, False]
    state = ckpt.load(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert state["loss"] == {"calls": 4}


def _scripted_critic(trainer, losses_: list[float]):
    """Replace the critic update by one that returns the given losses in turn (and logs them)."""
    values = iter(losses_)

    def critic_step():
        value = torch.tensor(next(values))
        return value, {"d_real": value * 10}
    trainer.critic_step = critic_step


def test_critic_logs_are_the_mean_over_the_n_critic_steps(tmp_path, tiny_settings):
    trainer = _trainer(tmp_path, **{**tiny_settings, "n_critic": 3})
    _scripted_critic(trainer, [1.0, 2.0, 6.0])
    logs = trainer.train_step()
    assert float(logs["d_loss"]) == pytest.approx(3.0) and float(logs["d_real"]) == pytest.approx(30.0)


@pytest.mark.parametrize("bad", [0, 1, 2])
def test_every_critic_step_is_checked_for_divergence(tmp_path, tiny_settings, bad):
    trainer = _trainer(tmp_path, **{**tiny_settings, "n_critic": 3})
    values = [1.0, 2.0, 3.0]
    values[bad] = float("nan")
    _scripted_critic(trainer, values)
    trainer._accumulate(trainer.train_step())  # no check on the step itself: it never waits for the device
    trainer.step = 1
    with pytest.raises(TrainingDiverged, match="d_loss became nan between steps 1 and 1"):
        trainer.check_finite()


def test_config_and_checkpoint_record_the_versions(tmp_path, tiny_settings):
    import platform

    gantools.train(out=tmp_path / "run", **tiny_settings)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["versions"]
    state = ckpt.load(tmp_path / "run" / "checkpoints" / "latest.pt")["versions"]
    assert saved == state
    assert saved["gantools"] == gantools.__version__ and saved["torch"] == str(torch.__version__)
    assert saved["python"] == platform.python_version()
    assert set(saved["plugins"]) == {"architectures/mlp", "losses/wgan-gp", "datasets/toy"}
    for entry in saved["plugins"].values():
        assert entry["distribution"] == "gantools" and entry["version"] == gantools.__version__


def test_epochs_set_the_steps_from_the_data_size(tmp_path, tiny_settings):
    settings = {k: v for k, v in tiny_settings.items() if k != "steps"}  # 512 points, batch 32, n_critic 5
    run = gantools.train(out=tmp_path / "e", epochs=1, **settings)
    assert run.step == run.config["steps"] == 4  # ceil(512 / (32 * 5))
    saved = json.loads((tmp_path / "e" / "config.json").read_text())
    assert saved["config"]["epochs"] == 1 and saved["sources"]["steps"] == "epochs:1"
    more = gantools.train(out=tmp_path / "e", resume=True, epochs=3)  # resuming extends by epochs
    assert more.step == 10  # ceil(3 * 512 / 160)
    again = gantools.train(out=tmp_path / "e", resume=True, steps=12)  # --steps replaces the epoch count
    assert again.step == 12 and again.config["epochs"] is None
    with pytest.raises(UserError, match="--steps or --epochs, not both"):
        gantools.train(out=tmp_path / "both", epochs=1, steps=3, **settings)
    with pytest.raises(UserError, match="epochs must be at least 1"):
        gantools.train(out=tmp_path / "zero", epochs=0, **settings)


def test_augmentation_reaches_the_critic_and_is_checked(tmp_path, tiny_settings, monkeypatch):
    from gantools import augment

    seen = []
    real_fake = augment.augment_fake

    def spy(x, policy):
        seen.append(policy)
        return real_fake(x, policy)
    monkeypatch.setattr(augment, "augment_fake", spy)
    run = gantools.train(out=tmp_path / "a", **{**tiny_settings, **DIGITS, "loss": "wgan-gp", "steps": 2,
                                                 "augment": "flip,diffaugment", "dataset_opts": {}})
    assert run.config["augment"] == ["flip", "diffaugment"]
    assert seen and all(p == ("flip", "diffaugment") for p in seen)
    # per iteration: real and fake in each of n_critic critic steps, fake in the generator step
    assert len(seen) == 2 * (2 * run.config["n_critic"] + 1)
    with pytest.raises(UserError, match="augment must be none or one or more of flip, diffaugment"):
        gantools.train(out=tmp_path / "b", **{**tiny_settings, "augment": "rotate"})
    with pytest.raises(UserError, match="applies to images"):
        gantools.train(out=tmp_path / "c", **{**tiny_settings, "augment": "flip"})
    with pytest.raises(UserError, match="joint inverters"):
        gantools.train(out=tmp_path / "d", **{**tiny_settings, **DIGITS, "dataset_opts": {}, "augment": "diffaugment",
                                              "inverter": "ali"})


def test_instance_noise_is_annealed_to_zero_and_reaches_the_critic(tmp_path, tiny_settings):
    trainer = _trainer(tmp_path, **{**tiny_settings, **DIGITS, "dataset_opts": {}, "instance_noise": 0.5,
                                    "steps": 10})
    x = torch.zeros(4, 1, 16, 16)
    stds = []
    for step in (0, 5, 10):
        trainer.step = step
        trainer.set_schedules()
        torch.manual_seed(0)
        stds.append(float(trainer.critic_view(x).std()))
    assert stds[0] == pytest.approx(0.5, rel=0.1) and stds[1] == pytest.approx(0.25, rel=0.1) and stds[2] == 0.0
    run = gantools.train(out=tmp_path / "n", **{**tiny_settings, **DIGITS, "dataset_opts": {}, "instance_noise": 0.1,
                                                 "steps": 2})
    assert run.config["instance_noise"] == 0.1
    with pytest.raises(UserError, match="instance_noise must be at least 0"):
        gantools.train(out=tmp_path / "bad", **{**tiny_settings, "instance_noise": -1})
