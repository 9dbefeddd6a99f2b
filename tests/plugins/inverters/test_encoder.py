"""The encoder inverter: a learned E(x) -> z fitted on synthetic pairs against the frozen generator."""
from __future__ import annotations

import json

import torch

from gantools import inversion


def test_encoder_fit_logs_costs_and_recovers_latents(run, fitted):
    history = [json.loads(line) for line in open(run.directory / "inverters" / "encoder.jsonl")]
    assert [row["step"] for row in history] == [25, 50, 75, 100, 125, 150]
    assert set(history[0]) == {"step", "z_cost", "x_cost", "total"}
    assert history[-1]["total"] < 0.8 * history[0]["total"]
    assert (run.directory / "inverters" / "encoder.png").stat().st_size > 0
    result = inversion.evaluate(run, fitted, None, n_synthetic=200)
    s = result["synthetic"]
    # Better than guessing: well under the distance between random prior pairs.
    assert s["latent_l1"] < 0.7 * s["latent_l1_random_pairs"]
    assert result["seconds_per_image"] > 0


def test_fitted_encoder_reloads_identically(run, fitted, synthetic):
    _, x = synthetic()
    again = inversion.load(run, "encoder")
    torch.testing.assert_close(inversion.encode(again, x), inversion.encode(fitted, x))
