"""`gantools latent`: interpolate, walk, norms, dynamics, crossgrid, cosines and arithmetic in runs'
latent spaces. Each command parses its flags and calls gantools.latent, where the work is."""
from __future__ import annotations

import sys
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


def _runs_options(func):
    """inverter_options with one RUN or more (RUN_DIRS) in place of one RUN_DIR."""
    func = inverter_options(func)
    func.__click_params__ = [p for p in func.__click_params__ if p.name != "run_dir"]
    return click.argument("run_dirs", nargs=-1, required=True, type=click.Path())(func)


def _sets_option(required: bool):
    return click.option("--images", "image_sets", multiple=True, type=click.Path(), required=required,
                        help="image folder or .npz (repeatable)" + ("" if required else
                                                                    "; default: the runs' own training data"))


def _load(run_dir: str, inverter: str, inverter_opt, device: str):
    """The run and its ready inverter."""
    from gantools import inversion
    from gantools.api import load_run

    run = load_run(run_dir, device=device)
    return run, inversion.load(run, inverter, inverter_opts(inverter_opt))


def _images(run, images: str | None, n: int):
    """Up to n images of --images (a folder or .npz), else of the run's training data."""
    from gantools import latent as lat

    chosen = lat.image_set(images) if images is not None else lat.training_set(run)
    real = chosen.load(run, n)
    if len(real) == 0:
        raise UserError(f"{chosen.name} holds no images")
    return real


def _setup(run_dir: str, inverter: str, inverter_opt, images: str | None, n: int, device: str):
    """The run, the ready inverter, and up to n real images."""
    run, inv = _load(run_dir, inverter, inverter_opt, device)
    return run, inv, _images(run, images, n)


def _pick(real, index: tuple[int, int]):
    if max(index) >= len(real) or min(index) < 0:
        raise UserError(f"--pair {index[0]} {index[1]}: there are {len(real)} images (indices 0..{len(real) - 1})")
    return real[list(index)]


def _out_png(out: str) -> Path:
    path = Path(out)
    if path.suffix.lower() != ".png":
        raise UserError(f"--out must name a .png file (got {out})")
    return path


@click.group(context_settings=CONTEXT)
def latent() -> None:
    """Explore latent spaces through an inverter."""


@latent.command(context_settings=CONTEXT)
@_common
@click.option("--pair", nargs=2, type=int, default=(0, 1), help="indices of the two images (or latents)")
@click.option("--latents", type=click.Path(dir_okay=False), default=None,
              help="interpolate between rows of this .npy (N, z_dim) instead of encoded images")
@click.option("--steps", type=click.IntRange(min=2), default=10, help="points on the path, ends included")
@click.option("--method", type=click.Choice(["lerp", "slerp"]), default="slerp", help="interpolation")
@click.option("--renorm/--no-renorm", default=False,
              help="rescale each point to the median norm of the encoded images")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="grid PNG, or an animation of the path (.gif or .webp, forth and back); an .npz beside it")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True, max=50), default=8.0, show_default=True,
              help="frames a second of a .gif/.webp --out")
def interpolate(run_dir, inverter, inverter_opt, images, n, device, pair, latents, steps, method, renorm, out, fps):
    """Interpolate between two real images (through their codes) or two latents; a .gif or .webp
    --out animates the path, one frame per point, forth and back."""
    import numpy as np
    import torch

    from gantools import animation, inversion, latent as lat
    from gantools.report import save_samples

    animated = Path(out).suffix.lower() in animation.FORMATS
    if not animated and Path(out).suffix.lower() != ".png":
        raise UserError(f"--out must name a .png grid or a .gif/.webp animation (got {out})")
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
    if animated:
        animation.save_animation(animation.pingpong(animation.tensor_frames(frames)), out, fps)
    else:
        save_samples(frames, Path(out), "images", nrow=steps)
    np.savez_compressed(Path(out).with_suffix(".npz"), latents=path.numpy(), images=frames.numpy())
    shown = f"{2 * steps - 2} frames forth and back" if animated else f"{steps} points"
    click.echo(f"wrote {out} ({shown}, {method}{', renormalised to %.3f' % norm if norm else ''})")


@latent.command(name="walk", context_settings=CONTEXT)
@_common
@click.option("--from", "start", type=click.Choice(["image", "random"]), default="image",
              help="start at the code of image --index, or at the prior's draw of --seed")
@click.option("--index", type=click.IntRange(min=0), default=0, help="which image (--from image)")
@click.option("--multiples", default="-4,-2,-1,0,1,2,4,8", help="comma-separated n of Z' + n*D")
@click.option("--seed", type=int, default=0, help="seed of the random direction (and of Z0 with --from random)")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="grid PNG: along D, then random (a .json beside it)")
def walk_cmd(run_dir, inverter, inverter_opt, images, n, device, start, index, multiples, seed, out):
    """Move along D = Z' - Z, Z' = E(G(Z)), from Z = E(x) (--from image) or a prior draw (--from
    random), against a random direction of equal norm."""
    import torch

    from gantools import fileio, inversion, latent as lat
    from gantools.report import save_samples

    values = lat.parse_numbers(multiples, "--multiples")
    steps = torch.tensor(values)
    run, inv = _load(run_dir, inverter, inverter_opt, device)
    if start == "random":
        result, where = lat.walk_from_prior(run, inv, steps, seed=seed), {"from": "random", "seed": seed}
    else:
        real = _images(run, images, n)
        if index >= len(real):
            raise UserError(f"--index {index}: there are {len(real)} images")
        result, where = lat.walk(run, inv, real[index], steps, seed=seed), {"from": "image", "index": index}
    frames = inversion.decode(run, torch.cat([result["along"], result["random"]]))
    save_samples(frames, Path(out), "images", nrow=len(steps))
    fileio.atomic_write_json(Path(out).with_suffix(".json"), lat.walk_record(result, values, {**where, "seed": seed}))
    click.echo(f"wrote {out}: top row Z' + n*D, bottom row Z' + n*R (|D| = |R| = "
               f"{float(result['direction_norm']):.3f}), n = {multiples}")


@latent.command(context_settings=CONTEXT)
@_runs_options
@_sets_option(required=False)
@click.option("--n", "n", type=click.IntRange(min=2), default=256, help="images per set at most; prior draws per z_dim")
@click.option("--seed", type=int, default=0, help="seed of the N(0, I) draws")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="boxplot PNG (a .json beside it)")
def norms(run_dirs, inverter, inverter_opt, device, image_sets, n, seed, out):
    """Boxplots of latent norms: every image set encoded by every run (D_on_M), beside fresh
    N(0, I) draws per z_dim and a line at sqrt(z_dim). Without --images, the runs' own
    training sets, each on every run."""
    from gantools import latent as lat

    out = _out_png(out)
    models = [_load(d, inverter, inverter_opt, device) for d in run_dirs]
    sets = _image_sets(image_sets, [run for run, _ in models])
    boxes = lat.norm_study(models, sets, n, seed)
    lat.save_norm_study(boxes, out, f"inverter {inverter}, up to {n} images per set")
    for box in boxes:
        click.echo(f"{box['label']}: median {box['median']:.3f} (q1 {box['q1']:.3f}, q3 {box['q3']:.3f}, "
                   f"n {box['n']}); sqrt(z_dim) {box['sqrt_z_dim']:.3f}")
    click.echo(f"wrote {out} and {out.with_suffix('.json')}")


def _image_sets(paths, runs) -> list:
    """ImageSets of --images, else the runs' distinct training sets."""
    from gantools import latent as lat

    if paths:
        sets = [lat.image_set(p) for p in paths]
    else:
        found = {}
        for run in runs:  # one set per distinct dataset spec and options
            s = lat.training_set(run)
            found.setdefault((s.dataset, repr(s.options)), s)
        sets = list(found.values())
    names = lat.distinct([s.name for s in sets])
    return [lat.ImageSet(name, s.path, s.dataset, s.options) for name, s in zip(names, sets)]


@latent.command(context_settings=CONTEXT)
@_runs_options
@_sets_option(required=True)
@click.option("--n", "n", type=click.IntRange(min=1), default=8, help="images per set (tiles per row)")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="grid PNG (a .json beside it)")
def crossgrid(run_dirs, inverter, inverter_opt, device, image_sets, n, out):
    """Every image set through every run: per set a row of originals, then a row of G(E(x)) per run."""
    from gantools import latent as lat

    out = _out_png(out)
    models = [_load(d, inverter, inverter_opt, device) for d in run_dirs]
    lat.check_same_shape([run for run, _ in models])
    record = lat.save_crossgrid(lat.crossgrid(models, _image_sets(image_sets, []), n), out)
    for pair in record["pairs"]:
        click.echo(f"{pair['label']}: MSE {pair['mse']:.4f}, mean-subtracted cosine {pair['cosine']:.3f}")
    click.echo(f"wrote {out} ({len(record['rows'])} rows of {n}) and {out.with_suffix('.json')}")


@latent.command(context_settings=CONTEXT)
@_common
@click.option("--iters", type=int, default=5000, help="encode -> decode iterations")
@click.option("--trajectories", type=int, default=8, help="trajectories iterated together")
@click.option("--from", "start", type=click.Choice(["image", "random"]), default="image",
              help="z_0: codes of the first images, or draws of the run's prior with --seed")
@click.option("--seed", type=int, default=0, help="seed of the prior draws (--from random)")
@click.option("--snapshots", default=None, help="iterations shown in snapshots.png [default: 0,1,10,100,1000,5000 "
                                                 "up to --iters, and --iters]")
@click.option("--tol", type=float, default=1e-3, help="closeness relative to max(|z|, 1) for fixed points and cycles")
@click.option("--max-period", type=int, default=8, help="longest cycle looked for")
@click.option("--progress/--no-progress", default=None, help="progress bar [default: when stderr is a terminal]")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="output directory")
def dynamics(run_dir, inverter, inverter_opt, images, n, device, iters, trajectories, start, seed, snapshots,
             tol, max_period, progress, out):
    """Iterate z -> E(G(z)) per trajectory; plot the L1 step and the cosine distance to z_0, show
    G(z_k) at snapshots, and classify each end (fixed point, cycle, no convergence, diverged)."""
    from gantools import latent as lat

    wanted = None if snapshots is None else lat.parse_numbers(snapshots, "--snapshots", int)
    lat.check_snapshots(wanted or [], iters)
    if trajectories < 1:
        raise UserError(f"--trajectories must be at least 1 (got {trajectories})")
    run, inv = _load(run_dir, inverter, inverter_opt, device)
    real = _images(run, images, min(n, trajectories)) if start == "image" else None
    z0 = lat.start_latents(run, inv, start, trajectories, seed, real)
    result = lat.dynamics_study(run, inv, z0, iters, wanted, tol, max_period,
                                progress=sys.stderr.isatty() if progress is None else progress)
    settings = {"inverter": inverter, "from": start, "seed": seed if start == "random" else None, "iters": iters,
                "tol": tol, "max_period": max_period}
    record = lat.save_dynamics(run, result, Path(out), settings)
    counts = ", ".join(f"{k} {record['counts'][k]}" for k in lat.CLASSES)
    click.echo(f"{iters} iterations from {len(z0)} codes ({start}): {counts}; wrote {out}")


@latent.command(context_settings=CONTEXT)
@_common
@click.option("--seed", type=int, default=0, help="seed of the random pairs")
@click.option("--bins", type=click.IntRange(min=2), default=40, help="histogram bins over [-1, 1]")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="histogram PNG (a .json beside it)")
def cosines(run_dir, inverter, inverter_opt, images, n, device, seed, bins, out):
    """Histogram of the mean-subtracted cosines between x and G(E(x)), against random pairs of real images."""
    from gantools import latent as lat

    out = _out_png(out)
    run, inv, real = _setup(run_dir, inverter, inverter_opt, images, n, device)
    result = lat.reconstruction_cosines(run, inv, real, seed)
    name = lat.image_set(images).name if images is not None else lat.training_set(run).name
    record = lat.save_cosines(result, out, f"{name} on {lat.run_name(run)}, inverter {inverter}, {len(real)} images",
                              bins)
    r, p = record["reconstruction"], record["random_pairs"]
    click.echo(f"mean-subtracted cosine: x vs G(E(x)) median {r['median']:.3f} (mean {r['mean']:.3f}); "
               f"random pairs median {p['median']:.3f} (mean {p['mean']:.3f}); wrote {out}")


@latent.command(context_settings=CONTEXT)
@inverter_options
@click.option("--attribute", required=True, help="class name (of --images or the run's data) or image folder/.npz")
@click.option("--minus", required=True, help="the class or images without the attribute")
@click.option("--images", type=click.Path(), default=None,
              help="labelled images (a folder of class sub-folders); default: the run's training data")
@click.option("--to", "to", default=None, help="class or path of the images to edit [default: images of --minus "
                                               "left out of its mean]")
@click.option("--strengths", default="-1,0,0.5,1,1.5,2", help="comma-separated s of G(E(x) + s v)")
@click.option("--n", "n", type=click.IntRange(min=1), default=8, help="images edited (rows)")
@click.option("--count", type=click.IntRange(min=1), default=256, help="images per side of the vector at most")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="grid PNG (a .json beside it)")
def arithmetic(run_dir, inverter, inverter_opt, device, attribute, minus, images, to, strengths, n, count, out):
    """Attribute vector v = mean E(A) - mean E(B), added at each strength to other images' codes."""
    from gantools import latent as lat

    out = _out_png(out)
    values = lat.parse_numbers(strengths, "--strengths")
    run, inv = _load(run_dir, inverter, inverter_opt, device)
    source = lat.image_set(images) if images is not None else None
    result = lat.arithmetic(run, inv, attribute, minus, to, source, values, n, count)
    record = lat.save_arithmetic(result, out)
    c = record["counts"]
    click.echo(f"|v| = {record['vector_norm']:.3f} from {c['attribute']} images of {attribute} and {c['minus']} of "
               f"{minus}; applied to {c['targets']} images of {record['to']} at s = {strengths}; wrote {out}")
