"""Latent-space tools: interpolation, walks along a re-encoding direction, norm statistics, and
the encode -> decode iteration as a dynamical system. Each works with any inverter."""
from __future__ import annotations

from typing import Any

import torch

from gantools import inversion


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Straight-line points (T, d) between two latents (d,) at fractions t (T,)."""
    return z0 + (z1 - z0) * t[:, None]


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (T, d): along the great circle between the two directions, with the
    norm interpolated linearly; falls back to lerp for (anti)parallel latents."""
    n0, n1 = z0.norm(), z1.norm()
    u0, u1 = z0 / n0.clamp_min(1e-12), z1 / n1.clamp_min(1e-12)
    omega = torch.arccos((u0 * u1).sum().clamp(-1.0, 1.0))
    if omega.abs() < 1e-4 or (torch.pi - omega).abs() < 1e-4:
        return lerp(z0, z1, t)
    s = torch.sin(omega)
    directions = (torch.sin((1 - t) * omega)[:, None] * u0 + torch.sin(t * omega)[:, None] * u1) / s
    return directions * (n0 + (n1 - n0) * t)[:, None]


def renormalise(z: torch.Tensor, norm: float) -> torch.Tensor:
    """Scale each latent (row) to the given norm."""
    return z * (norm / z.norm(dim=1, keepdim=True).clamp_min(1e-12))


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int, method: str = "lerp",
                norm: float | None = None) -> torch.Tensor:
    """``steps`` latents from z0 to z1 (both ends included), optionally renormalised to ``norm``
    (e.g. the median norm of encoded data, so the path stays where encodings live)."""
    if method not in ("lerp", "slerp"):
        from gantools.errors import UserError

        raise UserError(f"interpolation method must be lerp or slerp (got {method!r})")
    t = torch.linspace(0.0, 1.0, steps)
    path = (slerp if method == "slerp" else lerp)(z0.float(), z1.float(), t)
    return renormalise(path, norm) if norm is not None else path


def walk(run, inverter: Any, image: torch.Tensor, multiples: torch.Tensor,
         seed: int = 0) -> dict[str, torch.Tensor]:
    """Displacement along the re-encoding direction against a random one of equal norm.

    Z = E(x), Z' = E(G(Z)), D = Z' - Z. Returns the latents Z' + n * D and Z' + n * R for each
    multiple n, R a random direction with ||R|| = ||D||, and D's norm.
    """
    z = inversion.encode(inverter, image[None])
    z_prime = inversion.encode(inverter, inversion.decode(run, z))
    d = (z_prime - z)[0]
    gen = torch.Generator().manual_seed(seed)
    r = torch.randn(d.shape, generator=gen)
    r = r * (d.norm() / r.norm().clamp_min(1e-12))
    return {"along": z_prime + multiples[:, None] * d, "random": z_prime + multiples[:, None] * r,
            "z": z[0], "z_prime": z_prime[0], "direction_norm": d.norm()}


def norms(run, inverter: Any, images: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Norms of encoded images and of as many prior samples."""
    from gantools.models import sample_prior

    encoded = inversion.encode(inverter, images)
    gen = torch.Generator().manual_seed(seed)
    prior = sample_prior(len(images), run.config["z_dim"], run.config["prior"], torch.device("cpu"), gen)
    return {"encoded": encoded.norm(dim=1), "prior": prior.norm(dim=1)}


def dynamics(run, inverter: Any, z0: torch.Tensor, iters: int) -> dict[str, torch.Tensor]:
    """Iterate z_{k+1} = E(G(z_k)) from z0 (N, d) for ``iters`` steps.

    Returns, per iteration k = 1..iters, the mean L1 distance between z_k and z_{k-1} and the
    mean cosine distance (1 - cosine similarity) between z_k and z_0, plus the final latents.
    """
    z = z0.float()
    step_l1, cos_dist = [], []
    for _ in range(iters):
        nxt = inversion.encode(inverter, inversion.decode(run, z))
        step_l1.append((nxt - z).abs().sum(1).mean())
        cos_dist.append((1 - torch.nn.functional.cosine_similarity(nxt, z0.float(), dim=1)).mean())
        z = nxt
    return {"step_l1": torch.stack(step_l1) if step_l1 else torch.empty(0),
            "cosine_distance_to_z0": torch.stack(cos_dist) if cos_dist else torch.empty(0), "z": z}
