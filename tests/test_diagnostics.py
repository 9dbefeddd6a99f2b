"""Diagnostics: the run's curves one figure per group (`gantools plot`), per-layer gradient norms
(--log-grad-norms), weight histograms, and the critic's level sets on 2-D data."""
from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

import gantools
from gantools import diagnostics, report
from gantools.cli import main

ROWS = [
    {"step": 10, "d_loss": -1.0, "g_loss": 0.5, "wasserstein": 1.0, "penalty": 0.1, "d_real_prob": 0.7,
     "d_fake_prob": 0.3, "lr": 1e-4, "images_per_s": 500.0, "grad_norm/features.0": 2.0, "flag": True},
    {"step": 20, "d_loss": -2.0, "g_loss": 0.25, "wasserstein": 2.0, "penalty": 0.2, "d_real_prob": 0.6,
     "d_fake_prob": 0.4, "lr": 5e-5, "images_per_s": 510.0, "grad_norm/features.0": 4.0, "note": "text"},
    {"step": 20, "eval": {"fid": {"fid": 12.5, "features": "digits"}, "swd": {"swd": 3.0}}},
]


def test_columns_fall_into_groups_and_eval_rows_into_metric_figures():
    assert {k: diagnostics.group_of(k) for k in ("d_loss", "ae_loss", "wasserstein", "d_fake_prob", "lr",
                                                 "images_per_s", "grad_norm/head", "acc")} == {
        "d_loss": "losses", "ae_loss": "losses", "wasserstein": "critic", "d_fake_prob": "probabilities",
        "lr": "schedule", "images_per_s": "throughput", "grad_norm/head": "grad_norms", "acc": "other"}
    groups = diagnostics.collect(ROWS)
    assert list(groups) == ["losses", "critic", "probabilities", "schedule", "throughput", "grad_norms", "eval"]
    assert groups["losses"]["g_loss"] == {"step": [10, 20], "value": [0.5, 0.25]}
    assert groups["grad_norms"]["grad_norm/features.0"]["value"] == [2.0, 4.0]
    # eval rows: each scalar figure as METRIC/FIGURE; strings and booleans are not drawn
    assert groups["eval"] == {"fid/fid": {"step": [20], "value": [12.5]}, "swd/swd": {"step": [20], "value": [3.0]}}
    assert "other" not in groups


def test_plot_run_writes_a_figure_per_group_and_the_numbers(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(r) + "\n" for r in ROWS) + '{"step": 30, "d_lo')  # torn last line
    written = diagnostics.plot_run(metrics, tmp_path / "plots")
    assert sorted(p.name for p in written.values()) == sorted(
        ["losses.png", "critic.png", "probabilities.png", "schedule.png", "throughput.png", "grad_norms.png",
         "eval.png"])
    for path in written.values():
        with Image.open(path) as im:
            assert im.width >= 400 and im.height >= 300
    record = json.loads((tmp_path / "plots" / "plots.json").read_text())
    assert record["probabilities"]["series"]["d_fake_prob"] == {"step": [10, 20], "value": [0.3, 0.4]}
    assert record["grad_norms"]["file"] == "grad_norms.png"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert diagnostics.plot_run(empty, tmp_path / "none") == {} and not (tmp_path / "none").exists()


def test_grad_norms_are_the_l2_norm_of_each_layers_gradients():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1, bias=False))
    net(torch.randn(5, 3)).pow(2).sum().backward()
    norms = diagnostics.grad_norms(net)
    first = torch.cat([net[0].weight.grad.flatten(), net[0].bias.grad]).norm()
    assert set(norms) == {"grad_norm/0", "grad_norm/2"}
    torch.testing.assert_close(norms["grad_norm/0"], first)
    torch.testing.assert_close(norms["grad_norm/2"], net[2].weight.grad.norm())
    net[2].weight.grad = None
    assert set(diagnostics.grad_norms(net)) == {"grad_norm/0"}


def test_layer_names_drop_wrapper_prefixes():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    ddp_like, compiled_like = torch.nn.Module(), torch.nn.Module()
    ddp_like.module = net  # DistributedDataParallel's parameter names: module.0.weight
    compiled_like._orig_mod = net  # torch.compile's: _orig_mod.0.weight
    assert list(diagnostics._layers(ddp_like)) == list(diagnostics._layers(compiled_like)) == ["0", "1"]


def test_weight_histograms_show_clipped_weights_at_the_extremes(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(50, 40), torch.nn.Linear(40, 30))
    with torch.no_grad():
        net[0].weight.copy_(torch.randn(40, 50).clamp(-0.01, 0.01))  # clipped at 0.01: most sit on +-c
    record = diagnostics.save_weight_histograms(net, tmp_path / "weights.png")
    assert set(record) == {"0", "1"} and record["0"]["n"] == 2000
    assert record["0"]["max"] == pytest.approx(0.01) and record["0"]["min"] == pytest.approx(-0.01)
    assert record["0"]["share_at_extremes"] > 0.95 and record["1"]["share_at_extremes"] < 0.2
    assert json.loads((tmp_path / "weights.json").read_text()) == record
    assert (tmp_path / "weights.png").stat().st_size > 1000


def test_critic_surface_is_the_critic_on_a_grid_around_the_points():
    critic = torch.nn.Linear(2, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[2.0, -1.0]]))
        critic.bias.fill_(0.5)
    critic.train()
    points = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    xs, ys, values = report.critic_surface(critic, points, n=5, margin=0.5)
    torch.testing.assert_close(xs, torch.linspace(-0.5, 1.5, 5))
    torch.testing.assert_close(ys, torch.linspace(-1.0, 3.0, 5))
    torch.testing.assert_close(values, 2 * xs[None, :] - ys[:, None] + 0.5)  # row i at ys[i]
    assert critic.training  # put back as it was


def _cli(args, capsys):
    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_wgan_toy_run_logs_grad_norms_draws_level_sets_and_weights(tmp_path, capsys):
    out = tmp_path / "toy"
    gantools.train(out=out, arch="mlp", loss="wgan", dataset="toy:8gaussians", batch_size=32, steps=6,
                   log_every=3, n_critic=2, log_grad_norms=True, lr_decay="linear", lr_decay_start=0.0, lr=1e-3)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    grad_keys = sorted(k for k in rows[0] if k.startswith("grad_norm/"))
    assert len(grad_keys) >= 3 and all(rows[0][k] > 0 for k in grad_keys)
    # the rate of the row's last step (0-based 2 and 5) under linear decay to 0 over 6 steps
    assert [r["lr"] for r in rows] == pytest.approx([1e-3 * 4 / 6, 1e-3 * 1 / 6], abs=1e-9)
    weights = json.loads((out / "plots" / "weights.json").read_text())
    clip = 0.01  # wgan's default clip value
    assert weights and all(-clip - 1e-7 <= w["min"] and w["max"] <= clip + 1e-7 for w in weights.values())
    assert {p.name for p in (out / "plots").iterdir()} >= {"grad_norms.png", "losses.png", "schedule.png",
                                                           "weights.png", "plots.json"}
    with Image.open(out / "samples" / "latest.png") as im:
        assert im.width > im.height  # the level sets' colour bar beside the square scatter
    # `gantools plot` redraws into another directory
    code, text, err = _cli(["plot", str(out), "--out", str(tmp_path / "again")], capsys)
    assert code == 0 and "grad_norms.png" in text, err
    again = json.loads((tmp_path / "again" / "plots.json").read_text())
    assert again["grad_norms"]["series"][grad_keys[0]]["value"] == [r[grad_keys[0]] for r in rows]


def test_plot_refuses_a_directory_without_rows(tmp_path, cli_error):
    assert "no metrics.jsonl" in cli_error(["plot", str(tmp_path)])
    (tmp_path / "metrics.jsonl").write_text("")
    assert "no logged rows" in cli_error(["plot", str(tmp_path)])
