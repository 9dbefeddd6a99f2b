"""`gantools latent`: interpolate, walk, norms and dynamics in a run's latent space."""
from __future__ import annotations

import json
from pathlib import Path

import click

from gantools.cli.options import CONTEXT, inverter_options, inverter_opts
from gantools.errors import UserError


def _common(func):
    """The inversion commands' arguments, plus --images and --n."""
    func = click.option("--n", "n", type=click.IntRange(min=2), default=256,
                        help="images used at most (from --images or the run's own data)")(func)
    func = click.option("--images", type=click.Path(), default=None,
                        help="image folder or .npz; default: the run's training data")(func)
    return inverter_options(func)


def _setup(run_dir: str, inverter: str, inverter_opt, images: str | None, n: int, device: str):
    """The run, the ready inverter, and up to n real images."""
    from gantools import inversion
    from gantools.api import load_run
    from gantools.data import load_images, run_images

    run = load_run(run_dir, device=device)
    inv = inversion.load(run, inverter, inverter_opts(inverter_opt))
    real = load_images(run, images) if images is not None else run_images(run, n)
    return run, inv, real[:n]


def _pick(real, index: tuple[int, int]):
    if max(index) >= len(real) or min(index) < 0:
        raise UserError(f"--pair {index[0]} {index[1]}: there are {len(real)} images (indices 0..{len(real) - 1})")
    return real[list(index)]


@click.group(context_settings=CONTEXT)
def latent() -> None:
    """Explore the latent space through an inverter."""


@latent.command(context_settings=CONTEXT)
@_common
@click.option("--pair", nargs=2, type=int, default=(0, 1), help="indices of the two images (or latents)")
@click.option("--latents", type=click.Path(dir_okay=False), default=None,
              help="interpolate between rows of this .npy (N, z_dim) instead of encoded images")
@click.option("--steps", type=click.IntRange(min=2), default=10, help="points on the path, ends included")
@click.option("--method", type=click.Choice(["lerp", "slerp"]), default="slerp", help="interpolation")
@click.option("--renorm/--no-renorm", default=False,
              help="rescale each point to the median norm of the encoded images")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="grid PNG (an .npz beside it)")
def interpolate(run_dir, inverter, inverter_opt, images, n, device, pair, latents, steps, method, renorm, out):
    """Interpolate between two real images (through their codes) or two latents."""
    import numpy as np
    import torch

    from gantools import inversion, latent as lat
    from gantools.report import save_samples

    run, inv, real = _setup(run_dir, inverter, inverter_opt, images, n, device)
    if latents is not None:
        codes = torch.from_numpy(np.load(latents)).float()
        if codes.dim() != 2 or codes.shape[1] != run.config["z_dim"]:
            raise UserError(f"{latents} must hold an (N, {run.config['z_dim']}) array, got {tuple(codes.shape)}")
        ends = _pick(codes, pair)
    else:
        ends = inversion.encode(inv, _pick(real, pair))
    norm = float(inversion.encode(inv, real).norm(dim=1).median()) if renorm else None
    path = lat.interpolate(ends[0], ends[1], steps, method, norm)
    frames = inversion.decode(run, path)
    save_samples(frames, Path(out), "images", nrow=steps)
    np.savez_compressed(Path(out).with_suffix(".npz"), latents=path.numpy(), images=frames.numpy())
    click.echo(f"wrote {out} ({steps} points, {method}{', renormalised to %.3f' % norm if norm else ''})")


@latent.command(name="walk", context_settings=CONTEXT)
@_common
@click.option("--index", type=click.IntRange(min=0), default=0, help="which image")
@click.option("--multiples", default="-4,-2,-1,0,1,2,4,8", help="comma-separated n of Z' + n*D")
@click.option("--seed", type=int, default=0, help="seed of the random direction")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="grid PNG: along D, then random")
def walk_cmd(run_dir, inverter, inverter_opt, images, n, device, index, multiples, seed, out):
    """Move along D = E(G(E(x))) - E(x) from the re-encoding, against a random direction of equal norm."""
    import torch

    from gantools import inversion, latent as lat
    from gantools.report import save_samples

    try:
        steps = torch.tensor([float(v) for v in multiples.split(",") if v.strip()])
    except ValueError:
        raise UserError(f"--multiples must be comma-separated numbers (got {multiples!r})") from None
    run, inv, real = _setup(run_dir, inverter, inverter_opt, images, n, device)
    if index >= len(real):
        raise UserError(f"--index {index}: there are {len(real)} images")
    result = lat.walk(run, inv, real[index], steps, seed=seed)
    frames = inversion.decode(run, torch.cat([result["along"], result["random"]]))
    save_samples(frames, Path(out), "images", nrow=len(steps))
    click.echo(f"wrote {out}: top row Z' + n*D, bottom row Z' + n*R (|D| = |R| = "
               f"{float(result['direction_norm']):.3f}), n = {multiples}")


@latent.command(context_settings=CONTEXT)
@_common
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="histogram PNG (a .json beside it)")
def norms(run_dir, inverter, inverter_opt, images, n, device, out):
    """Histogram of the norms of encoded images against the prior's."""
    from gantools import latent as lat
    from gantools.report import histogram

    run, inv, real = _setup(run_dir, inverter, inverter_opt, images, n, device)
    result = lat.norms(run, inv, real)
    stats = {k: {"median": float(v.median()), "mean": float(v.mean()), "std": float(v.std())}
             for k, v in result.items()}
    histogram({"encoded images": result["encoded"], f"{run.config['prior']} prior": result["prior"]},
              Path(out), "latent norm", f"z_dim {run.config['z_dim']}, {len(real)} images")
    Path(out).with_suffix(".json").write_text(json.dumps(stats, indent=2) + "\n")
    click.echo(f"median norm: encoded {stats['encoded']['median']:.3f}, prior {stats['prior']['median']:.3f}; "
               f"wrote {out}")


@latent.command(context_settings=CONTEXT)
@_common
@click.option("--iters", type=click.IntRange(min=1), default=20, help="encode -> decode iterations")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="output directory")
def dynamics(run_dir, inverter, inverter_opt, images, n, device, iters, out):
    """Iterate z -> E(G(z)) from encoded images; plot the step size and the drift from z0."""
    import numpy as np

    from gantools import inversion, latent as lat
    from gantools.report import line_plots

    run, inv, real = _setup(run_dir, inverter, inverter_opt, images, n, device)
    z0 = inversion.encode(inv, real)
    result = lat.dynamics(run, inv, z0, iters)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"iteration": k + 1, "step_l1": float(a), "cosine_distance_to_z0": float(b)}
            for k, (a, b) in enumerate(zip(result["step_l1"], result["cosine_distance_to_z0"]))]
    (out_dir / "dynamics.json").write_text(json.dumps(rows, indent=1) + "\n")
    np.save(out_dir / "latents.npy", result["z"].numpy())
    line_plots({"mean L1 |z_k - z_(k-1)|": result["step_l1"],
                "mean cosine distance to z_0": result["cosine_distance_to_z0"]},
               out_dir / "dynamics.png", "iteration")
    click.echo(f"{iters} iterations from {len(real)} codes: last step L1 {rows[-1]['step_l1']:.4f}, "
               f"cosine distance to z0 {rows[-1]['cosine_distance_to_z0']:.4f}; wrote {out_dir}")
