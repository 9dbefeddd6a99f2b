"""Conditional generation: the (z, y) generator, the (x, y) critics, labelled data, training, sampling."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import gantools
from gantools import conditional
from gantools.cli import cli
from gantools.cudagraphs import refusal
from gantools.data import BatchStream
from gantools.errors import UserError
from gantools.imageio import TensorImages

# A small conditional run: mlp on 8-pixel digits (fast), every mode's networks through training.
TINY = dict(arch="mlp", dataset="digits", image_size=8, arch_opts={"hidden": 32, "layers": 2}, z_dim=8,
            batch_size=16, log_every=2, sample_every=4, checkpoint_every=4, steps=4)


def _trunk(features: int = 6, inputs: int = 4) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(inputs, features), torch.nn.Tanh())


def test_projection_score_is_the_linear_output_plus_the_class_embedding_projection():
    critic = conditional.ConditionalCritic(_trunk(), 6, n_classes=3, mode="projection")
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 1, 0])
    h = critic.trunk(x)
    want = critic.out(h).flatten() + (critic.embed.weight[y] * h).sum(1)
    torch.testing.assert_close(critic(x, y), want)
    # Another class changes the score by exactly the difference of the projections.
    other = torch.tensor([2, 2, 2, 2, 2])
    torch.testing.assert_close(critic(x, other) - critic(x, y), ((critic.embed.weight[other] - critic.embed.weight[y]) * h).sum(1))


def test_concat_critic_reads_the_label_as_constant_planes():
    seen = {}

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen["x"] = x
            return x.flatten(1)[:, :2]

    critic = conditional.ConditionalCritic(Probe(), 2, n_classes=3, mode="concat")
    x = torch.randn(2, 1, 4, 4).contiguous(memory_format=torch.channels_last)
    critic(x, torch.tensor([2, 0]))
    got = seen["x"]
    assert got.shape == (2, 4, 4, 4) and torch.equal(got[:, :1], x)
    assert torch.equal(got[0, 1:, 0, 0], torch.tensor([0.0, 0.0, 1.0])) and torch.equal(got[1, 1:, 3, 2], torch.tensor([1.0, 0.0, 0.0]))
    assert got.is_contiguous(memory_format=torch.channels_last)  # the batch's layout kept


def test_acgan_classifies_and_only_acgan_does():
    critic = conditional.ConditionalCritic(_trunk(), 6, n_classes=3, mode="acgan")
    x = torch.randn(5, 4)
    assert critic.classify(x).shape == (5, 3)
    # The adversarial score ignores the label (AC-GAN's source output).
    torch.testing.assert_close(critic(x, torch.zeros(5, dtype=torch.long)), critic(x, torch.full((5,), 2)))
    with pytest.raises(UserError, match="only the acgan critic classifies"):
        conditional.ConditionalCritic(_trunk(), 6, 3, "projection").classify(x)
    with pytest.raises(UserError, match="must be one of"):
        conditional.ConditionalCritic(_trunk(), 6, 3, "bogus")


def test_labelled_critic_repeats_labels_for_stacked_batches():
    critic = conditional.ConditionalCritic(_trunk(), 6, n_classes=3, mode="projection")
    real, fake, y = torch.randn(4, 4), torch.randn(4, 4), torch.tensor([0, 1, 2, 0])
    bound = conditional.LabelledCritic(critic, y)
    joint = bound(torch.cat([real, fake]))
    torch.testing.assert_close(joint, torch.cat([critic(real, y), critic(fake, y)]))
    with pytest.raises(RuntimeError, match="6 inputs for 4 labels"):
        bound(torch.randn(6, 4))


def test_generator_appends_the_one_hot_code():
    base = torch.nn.Identity()
    out = conditional.ConditionalGenerator(base, 3)(torch.zeros(2, 2), torch.tensor([1, 2]))
    assert torch.equal(out, torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]]))


def test_labels_of_datasets():
    assert conditional.labels_of(TensorImages(torch.zeros(3, 1, 2, 2))) is None
    labels, names = conditional.labels_of(TensorImages(torch.zeros(3, 1, 2, 2), labels=[0, 2, 1]))
    assert labels.tolist() == [0, 2, 1] and names == ["0", "1", "2"]
    _, names = conditional.labels_of(TensorImages(torch.zeros(2, 1, 2, 2), labels=[1, 0], classes=["cat", "dog"]))
    assert names == ["cat", "dog"]
    with pytest.raises(UserError, match="outside its 2 classes"):
        conditional.labels_of(TensorImages(torch.zeros(2, 1, 2, 2), labels=[0, 2], classes=["a", "b"]))
    with pytest.raises(UserError, match="two classes or more"):
        conditional.labels_of(TensorImages(torch.zeros(2, 1, 2, 2), labels=[0, 0]))


def test_batch_stream_keeps_labels_with_their_rows():
    values = torch.arange(40, dtype=torch.float32)
    data = TensorImages(values[:, None], labels=torch.arange(40) % 7)
    stream = BatchStream(data, 8, seed=3, labels=data.labels)
    for _ in range(7):  # across an epoch boundary
        x, y = stream.next()
        assert torch.equal(y, x[:, 0].long() % 7)
    half = BatchStream(data, 8, seed=3, rank=1, world=2, labels=data.labels)
    x, y = half.next()
    assert x.shape[0] == 4 and torch.equal(y, x[:, 0].long() % 7)


@pytest.mark.parametrize("loss,mode,want", [("wgan-gp", "auto", "projection"), ("gan", "auto", "concat"),
                                            ("hinge", "acgan", "acgan")])
def test_conditional_run_trains_reloads_and_samples_each_class(tmp_path, loss, mode, want):
    run = gantools.train(out=tmp_path / "run", loss=loss, conditional=mode, ema=0.9, progress=False, **TINY)
    assert run.conditional and run.classes == [str(k) for k in range(10)]
    assert run.config["conditional"] == want  # auto is recorded as the loss's choice
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in rows if "d_loss" in r)
    if want == "acgan":
        assert "acgan_d" in rows[-1] and "acgan_g" in rows[-1]
    loaded = gantools.load_run(tmp_path / "run")
    assert loaded.classes == run.classes
    for label in (0, "7"):
        torch.testing.assert_close(loaded.sample(6, seed=1, label=label), run.sample(6, seed=1, label=label),
                                   rtol=0, atol=0)
    # The class matters: the same latents give other images for another class.
    assert not torch.equal(loaded.sample(6, seed=1, label=0), loaded.sample(6, seed=1, label=1))
    grid = Image.open(tmp_path / "run" / "samples" / "latest.png")
    assert grid.height > grid.width  # 10 rows (one per class) of 8
    with pytest.raises(UserError, match="give a class for each latent"):
        loaded.generate(torch.zeros(2, 8))


def test_conditional_two_processes_train_like_one(tmp_path):
    from tests.test_distributed import assert_rows_close, rows, torchrun

    settings = dict(TINY, loss="wgan-gp", conditional="projection", log_every=1, steps=3)
    gantools.train(out=tmp_path / "one", progress=False, **settings)
    flags = ["--arch", "mlp", "--loss", "wgan-gp", "--dataset", "digits", "--image-size", "8", "--arch-opt",
             "hidden=32", "--arch-opt", "layers=2", "--z-dim", "8", "--batch-size", "16", "--log-every", "1",
             "--conditional", "projection", "--steps", "3", "--no-progress", "--out", str(tmp_path / "two")]
    proc = torchrun(*flags, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert_rows_close(rows(tmp_path / "two"), rows(tmp_path / "one"), rel=1e-3, abs_=2e-5)


def test_folder_class_subfolders_are_labels(tmp_path):
    rng = np.random.default_rng(0)
    for name, value in (("cats", 40), ("dogs", 220)):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(10):
            pixels = np.clip(value + rng.integers(-20, 20, (8, 8, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / name / f"{i}.png")
    from gantools_plugins.datasets.folder import dataset

    data = dataset(cache=str(tmp_path / "cache")).build(str(tmp_path / "data"), 8, 3)
    assert data.classes == ["cats", "dogs"] and data.labels.tolist() == [0] * 10 + [1] * 10
    again = dataset(cache=str(tmp_path / "cache")).build(str(tmp_path / "data"), 8, 3)  # read from the cache
    assert again.classes == ["cats", "dogs"] and torch.equal(again.labels, data.labels)
    run = gantools.train(out=tmp_path / "run", arch="mlp", dataset=f"folder:{tmp_path / 'data'}", image_size=8,
                         arch_opts={"hidden": 16, "layers": 1}, z_dim=4, batch_size=8, steps=2, conditional="auto",
                         dataset_opts={"cache": "off"}, progress=False)
    assert run.classes == ["cats", "dogs"]
    result = CliRunner().invoke(cli, ["sample", str(tmp_path / "run"), "--class", "dogs", "--n", "4", "--npz",
                                      str(tmp_path / "dogs.npz")])
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "dogs.npz")["labels"].tolist() == [1, 1, 1, 1]


def test_bad_conditional_input_is_one_line(tmp_path, cli_error):
    out = cli_error(["run", "--conditional", "--arch", "mlp", "--dataset", "toy:8gaussians", "--steps", "1",
                           "--out", str(tmp_path / "toy"), "--no-progress"])
    assert "needs labelled data" in out
    gantools.train(out=tmp_path / "plain", progress=False, **TINY)
    assert "is not conditional" in cli_error(["sample", str(tmp_path / "plain"), "--class", "3", "--out",
                                                    str(tmp_path / "x.png")])
    gantools.train(out=tmp_path / "cond", conditional="auto", progress=False, **TINY)
    assert "not one of the run's 10 classes" in cli_error(["sample", str(tmp_path / "cond"), "--class", "10",
                                                                "--out", str(tmp_path / "x.png")])
    assert "not one of the run's 10 classes" in cli_error(["sample", str(tmp_path / "cond"), "--class", "cat",
                                                                "--out", str(tmp_path / "x.png")])
    assert "need an unconditional run" in cli_error(["invert", "fit", str(tmp_path / "cond"), "--inverter",
                                                          "encoder", "--steps", "1"])
    assert "need an unconditional run" in cli_error(["run", "--conditional", "--inverter", "ali", "--out",
                                                          str(tmp_path / "ali"), "--steps", "1", "--no-progress"])


def test_conditional_sample_grid_has_one_row_per_class(tmp_path):
    gantools.train(out=tmp_path / "cond", conditional="projection", progress=False, **TINY)
    result = CliRunner().invoke(cli, ["sample", str(tmp_path / "cond"), "--n", "30", "--out", str(tmp_path / "g.png"),
                                      "--npz", str(tmp_path / "g.npz")])
    assert result.exit_code == 0, result.output
    assert "10 rows, one per class" in result.output
    assert np.load(tmp_path / "g.npz")["labels"].tolist() == [k for k in range(10) for _ in range(3)]


def test_cuda_graphs_refuse_conditional_runs():
    config = {"precision": "fp32", "inverter": None, "conditional": "projection", "loss": "wgan-gp"}
    reason = refusal(config, torch.device("cuda"), 1, object())
    assert reason is not None and "conditional" in reason
