"""The hybrid inverter: the fitted encoder's E(x), refined by gradient descent with an in-domain term."""
from __future__ import annotations

from gantools import inversion


def test_hybrid_refines_the_encoder(run, fitted, synthetic, mse):
    _, x = synthetic(seed=3)
    plain = {"steps": 80, "prior_mode": "none"}
    refined = inversion.load(run, "hybrid", {**plain, "domain_weight": 0.0})
    assert mse(refined, x) < 0.8 * mse(fitted, x)

    # The in-domain term keeps z a code the encoder reproduces from G(z).
    def domain_gap(inv):
        z = inversion.encode(inv, x)
        return float((z - inversion.encode(fitted, inversion.decode(run, z))).pow(2).mean())

    held = inversion.load(run, "hybrid", {**plain, "domain_weight": 100.0})
    assert domain_gap(held) < domain_gap(refined)
