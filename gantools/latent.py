"""Latent-space tools: interpolation, walks along a re-encoding direction, norm statistics, and
the encode -> decode iteration as a dynamical system; and the latent studies built on them (norms
of many datasets on many models, every set through every model, reconstruction cosines,
attribute arithmetic), each a function returning its numbers and a save_* writing its figure
with a JSON beside it. Each works with any inverter."""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from gantools import fileio, inversion, studyplots
from gantools.config import split_dataset
from gantools.data import fetch, load_items
from gantools.errors import UserError
from gantools.models import sample_prior
from gantools.report import progress_bar


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
        raise UserError(f"interpolation method must be lerp or slerp (got {method!r})")
    t = torch.linspace(0.0, 1.0, steps)
    path = (slerp if method == "slerp" else lerp)(z0.float(), z1.float(), t)
    return renormalise(path, norm) if norm is not None else path


def norms(run, inverter: Any, images: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Norms of encoded images and of as many prior samples."""
    encoded = inversion.encode(inverter, images)
    gen = torch.Generator().manual_seed(seed)
    prior = sample_prior(len(images), run.config["z_dim"], run.config["prior"], torch.device("cpu"), gen)
    return {"encoded": encoded.norm(dim=1), "prior": prior.norm(dim=1)}


# ---- image sets -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageSet:
    """Images to study: a folder or an .npz (``path``), or a run's training data (its ``dataset``
    spec NAME[:ARG] and ``options``), loaded at whichever run's resolution it meets."""

    name: str
    path: str | None = None
    dataset: str | None = None
    options: tuple[tuple[str, Any], ...] = ()

    def spec(self) -> tuple[str, str | None, dict]:
        """(dataset plugin, argument, options) that build these images."""
        if self.path is not None:
            return ("npz" if Path(self.path).suffix == ".npz" else "folder"), self.path, {}
        name, arg = split_dataset(self.dataset)
        return name, arg, dict(self.options)

    def load(self, run, n: int | None = None) -> torch.Tensor:
        """The first n images (all by default) at the run's resolution and channel count."""
        name, arg, options = self.spec()
        return load_items(run, name, arg, options, n=n)


def image_set(path: str | Path) -> ImageSet:
    """A folder of images or an .npz file as an ImageSet named after it (folder name, file stem)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"no images at {path}")
    if path.is_file() and path.suffix != ".npz":
        raise UserError(f"{path} is neither an image folder nor an .npz file")
    return ImageSet(path.stem if path.is_file() else path.resolve().name, path=str(path))


def training_set(run) -> ImageSet:
    """A run's own training data, named after its dataset (or its folder / file for folder:PATH)."""
    name, arg = split_dataset(run.config["dataset"])
    options = tuple(sorted((run.config.get("dataset_opts") or {}).items()))
    label = Path(arg).stem or name if arg else name
    if options:
        label += "[" + ",".join(f"{k}={v}" for k, v in options) + "]"
    return ImageSet(label, dataset=run.config["dataset"], options=options)


def run_name(run) -> str:
    """A run's label in figures: its directory's name."""
    return Path(run.directory).resolve().name if run.directory is not None else "run"


def distinct(labels: list[str]) -> list[str]:
    """The labels with repeats told apart: a, a, b -> a, a#2, b."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return out


def _load_set(image_set_: ImageSet, run, n: int) -> torch.Tensor:
    images = image_set_.load(run, n)
    if len(images) == 0:
        raise UserError(f"{image_set_.name} holds no images")
    return images


# ---- numbers --------------------------------------------------------------------------------
def summary(values: torch.Tensor) -> dict[str, Any]:
    """n, median (torch.median: the lower middle value for an even count), mean, std, quartiles
    (linear interpolation), min and max of 1-D values."""
    v = torch.as_tensor(values).double().flatten()
    if len(v) == 0:
        return {"n": 0}
    q1, q3 = torch.quantile(v, torch.tensor([0.25, 0.75], dtype=v.dtype)).tolist()
    return {"n": len(v), "median": float(v.median()), "mean": float(v.mean()),
            "std": float(v.std()) if len(v) > 1 else 0.0, "q1": q1, "q3": q3,
            "min": float(v.min()), "max": float(v.max())}


def finite(x: float) -> float | None:
    """A number for JSON: None in place of NaN and infinities."""
    x = float(x)
    return x if math.isfinite(x) else None


def rounded(values: torch.Tensor, digits: int = 7) -> list:
    """A tensor's values as JSON numbers with ``digits`` significant digits (None if not finite)."""
    return [float(f"{v:.{digits}g}") if math.isfinite(v) else None for v in torch.as_tensor(values).double().tolist()]


def parse_numbers(text: str, flag: str, kind=float) -> list:
    """'0,1,2.5' -> [0.0, 1.0, 2.5]; UserError naming the flag otherwise."""
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise UserError(f"{flag} must be comma-separated numbers (got {text!r})")
    return values


# ---- norms of many datasets on many models --------------------------------------------------
def norm_study(models: list[tuple[Any, Any]], sets: list[ImageSet], n: int, seed: int = 0) -> list[dict]:
    """Norms of the codes of up to n images of every set on every (run, inverter), label D_on_M,
    then n fresh N(0, I) draws per distinct z_dim (label 'N(0,I) d=D'). Returns one box per
    entry: label, kind ('encoded' or 'prior'), data, model, z_dim, sqrt_z_dim, values and
    summary()'s numbers."""
    boxes = []
    names = distinct([run_name(run) for run, _ in models])
    for (run, inverter), model in zip(models, names):
        for s in sets:
            norms_ = inversion.encode(inverter, _load_set(s, run, n)).norm(dim=1)
            boxes.append(_box(f"{s.name}_on_{model}", "encoded", norms_, run.config["z_dim"], s.name, model))
    for z_dim in sorted({run.config["z_dim"] for run, _ in models}):
        draws = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))
        boxes.append(_box(f"N(0,I) d={z_dim}", "prior", draws.norm(dim=1), z_dim, None, None))
    return boxes


def _box(label: str, kind: str, values: torch.Tensor, z_dim: int, data: str | None, model: str | None) -> dict:
    return {"label": label, "kind": kind, "data": data, "model": model, "z_dim": z_dim,
            "sqrt_z_dim": math.sqrt(z_dim), "values": values, **summary(values)}


def save_norm_study(boxes: list[dict], out: Path, title: str = "") -> dict:
    """Boxplots of norm_study's boxes with a dashed line at sqrt(z_dim) per z_dim (out, a PNG) and
    their numbers in a JSON beside it; returns that JSON."""
    z_dims = sorted({box["z_dim"] for box in boxes})
    studyplots.boxplots([(b["label"], b["values"], b) for b in boxes], out, "latent norm |z|", title,
                        hlines=[(math.sqrt(d), f"sqrt({d}) = {math.sqrt(d):.2f}") for d in z_dims])
    record = {"boxes": [{k: v for k, v in b.items() if k != "values"} for b in boxes],
              "sqrt_z_dim": {str(d): math.sqrt(d) for d in z_dims}}
    fileio.atomic_write_json(Path(out).with_suffix(".json"), record)
    return record


# ---- every set through every model ----------------------------------------------------------
def check_same_shape(runs: list) -> tuple[int, ...]:
    """The runs' common image shape; UserError naming each run's shape when they differ."""
    shapes = [tuple(run.data_shape) for run in runs]
    if len(set(shapes)) > 1:
        listed = ", ".join(f"{name} {shape}" for name, shape in zip(distinct([run_name(r) for r in runs]), shapes))
        raise UserError(f"the runs must share one image shape (C, H, W): {listed}")
    return shapes[0]


def crossgrid(models: list[tuple[Any, Any]], sets: list[ImageSet], n: int) -> dict:
    """Per set: its first n images, then G(E(x)) through every (run, inverter). Returns tiles
    (rows, n, C, H, W), the row labels (the set's name, then D_on_M) and per pair the mean MSE
    and mean-subtracted cosine (the set's mean image subtracted, as inversion.evaluate does)."""
    check_same_shape([run for run, _ in models])
    names = distinct([run_name(run) for run, _ in models])
    rows, labels, pairs = [], [], []
    for s in sets:
        x = _load_set(s, models[0][0], n)
        if len(x) < n:
            raise UserError(f"{s.name} has {len(x)} images, fewer than --n {n}")
        rows.append(x)
        labels.append(s.name)
        for (run, inverter), model in zip(models, names):
            rec = inversion.decode(run, inversion.encode(inverter, x))
            rows.append(rec)
            labels.append(f"{s.name}_on_{model}")
            pairs.append({"label": labels[-1], "data": s.name, "model": model, "n": len(x),
                          **_fidelity(x, rec)})
    return {"tiles": torch.stack(rows), "labels": labels, "pairs": pairs}


def _fidelity(x: torch.Tensor, rec: torch.Tensor) -> dict[str, float]:
    cosine = inversion._mean_subtracted_cosine(x, rec, x.mean(0, keepdim=True))
    return {"mse": float((x - rec).pow(2).mean()), "cosine": float(cosine.mean())}


def save_crossgrid(result: dict, out: Path) -> dict:
    """The labelled grid (out, a PNG) and a JSON beside it: row labels, per pair MSE and cosine, layout."""
    layout = studyplots.labelled_grid(result["tiles"], out, row_labels=result["labels"])
    record = {"rows": result["labels"], "pairs": result["pairs"], "layout": layout}
    fileio.atomic_write_json(Path(out).with_suffix(".json"), record)
    return record


# ---- walks ----------------------------------------------------------------------------------
def _walk_from(z: torch.Tensor, z_prime: torch.Tensor, multiples: torch.Tensor,
               gen: torch.Generator) -> dict[str, torch.Tensor]:
    d = (z_prime - z)[0]
    r = torch.randn(d.shape, generator=gen)
    r = r * (d.norm() / r.norm().clamp_min(1e-12))
    return {"along": z_prime + multiples[:, None] * d, "random": z_prime + multiples[:, None] * r,
            "z": z[0], "z_prime": z_prime[0], "direction_norm": d.norm()}


def walk(run, inverter: Any, image: torch.Tensor, multiples: torch.Tensor,
         seed: int = 0) -> dict[str, torch.Tensor]:
    """Displacement along the re-encoding direction against a random one of equal norm.

    Z = E(x), Z' = E(G(Z)), D = Z' - Z. Returns the latents Z' + n * D and Z' + n * R for each
    multiple n, R a random direction with ||R|| = ||D||, and D's norm.
    """
    z = inversion.encode(inverter, image[None])
    z_prime = inversion.encode(inverter, inversion.decode(run, z))
    return _walk_from(z, z_prime, multiples, torch.Generator().manual_seed(seed))


def walk_from_prior(run, inverter: Any, multiples: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """walk() from a prior draw: Z0 = the first latent the run's prior draws with ``seed``,
    Z' = E(G(Z0)), D = Z' - Z0; R comes from the same generator, after Z0."""
    gen = torch.Generator().manual_seed(seed)
    z = sample_prior(1, run.config["z_dim"], run.config["prior"], torch.device("cpu"), gen)
    z_prime = inversion.encode(inverter, inversion.decode(run, z))
    return _walk_from(z, z_prime, multiples, gen)


def walk_record(result: dict, multiples: list[float], start: dict) -> dict:
    """The numbers behind a walk's grid: multiples, |D|, the start and its re-encoding."""
    return {"start": start, "multiples": list(multiples), "direction_norm": float(result["direction_norm"]),
            "z": rounded(result["z"]), "z_prime": rounded(result["z_prime"]),
            "norms_along": rounded(result["along"].norm(dim=1)), "norms_random": rounded(result["random"].norm(dim=1)),
            "rows": ["Z' + n*D", "Z' + n*R"]}


# ---- encode -> decode dynamics --------------------------------------------------------------
def round_trip(run, inverter: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The map z -> E(G(z)) on latents (K, d)."""
    return lambda z: inversion.encode(inverter, inversion.decode(run, z))


def check_snapshots(snapshots, iters: int) -> list[int]:
    """Sorted distinct iterations to keep, each in 0..iters; UserError otherwise."""
    if iters < 1:
        raise UserError(f"iters must be at least 1 (got {iters})")
    wanted = sorted({int(k) for k in snapshots})
    bad = [k for k in wanted if not 0 <= k <= iters]
    if bad:
        raise UserError(f"snapshot iteration(s) {', '.join(map(str, bad))} outside 0..{iters} (--iters {iters})")
    return wanted


def default_snapshots(iters: int) -> list[int]:
    """0, 1, 10, 100, 1000, 5000 up to iters, and iters itself."""
    return sorted({k for k in (0, 1, 10, 100, 1000, 5000) if k <= iters} | {iters})


def iterate(step_fn: Callable[[torch.Tensor], torch.Tensor], z0: torch.Tensor, iters: int,
            snapshots=(), tail: int = 9, progress: bool = False) -> dict[str, Any]:
    """Iterate z_{k+1} = step_fn(z_k) from z0 (K, d), batched over the K trajectories.

    Keeps, per trajectory and iteration k = 1..iters, the L1 step |z_k - z_{k-1}|_1 and the
    cosine distance 1 - cos(z_k, z_0) ((K, iters) each), the latents at the ``snapshots``
    iterations (0 = z0), and the last ``tail`` latents (tail, K, d), oldest first, z_iters last:
    never every latent.
    """
    wanted = set(check_snapshots(snapshots, iters))
    z0 = z = z0.float()
    step_l1, cosine = torch.empty(len(z0), iters), torch.empty(len(z0), iters)
    kept = {0: z0.clone()} if 0 in wanted else {}
    window = deque([z0], maxlen=max(2, tail))
    bar = progress_bar(0, iters) if progress else None
    for k in range(1, iters + 1):
        nxt = step_fn(z).float()
        step_l1[:, k - 1] = (nxt - z).abs().sum(1)
        cosine[:, k - 1] = 1 - torch.nn.functional.cosine_similarity(nxt, z0, dim=1)
        z = nxt
        window.append(z)
        if k in wanted:
            kept[k] = z.clone()
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return {"step_l1": step_l1, "cosine_distance_to_z0": cosine, "snapshots": kept,
            "tail": torch.stack(list(window)), "z": z}


def classify(tail: torch.Tensor, tol: float = 1e-3, max_period: int = 8, blowup: float = 1e6) -> list[dict]:
    """How each trajectory ends, from its last latents ``tail`` (T, K, d), oldest first.

    With z_T the last latent and close meaning an L2 distance <= tol * max(|z_T|, 1):
    'diverged' (z_T not finite, or |z_T| > blowup); 'fixed point' (z_T close to z_{T-1});
    'cycle' with the smallest period p in 2..max_period with z_T close to z_{T-p} (periods
    beyond the tail's length are not looked for); else 'no convergence'. Each entry also holds
    the last step's L2 size and |z_T|.
    """
    _check_classifier(tol, max_period)
    if len(tail) < 2:
        raise ValueError(f"classify needs the last two latents or more (got a tail of {len(tail)})")
    last = tail[-1].double()
    norms = last.norm(dim=1)
    reach = min(max_period, len(tail) - 1)
    back = tail[:-1].double().flip(0)[:reach]  # z_{T-1}, z_{T-2}, ...
    dist = (last[None] - back).norm(dim=2)  # (reach, K): dist[p - 1] = |z_T - z_{T-p}|
    close = dist <= tol * norms.clamp_min(1.0)
    out = []
    for i in range(last.shape[0]):
        entry = {"class": "no convergence", "period": None, "last_step": finite(dist[0, i]), "norm": finite(norms[i])}
        if not bool(torch.isfinite(last[i]).all()) or float(norms[i]) > blowup:
            entry["class"] = "diverged"
        elif bool(close[0, i]):
            entry["class"] = "fixed point"
        else:
            periods = [p for p in range(2, reach + 1) if bool(close[p - 1, i])]
            if periods:
                entry["class"], entry["period"] = "cycle", periods[0]
        out.append(entry)
    return out


CLASSES = ("fixed point", "cycle", "no convergence", "diverged")


def _check_classifier(tol: float, max_period: int) -> None:
    if max_period < 1 or not tol >= 0:
        raise UserError(f"the classifier needs max_period >= 1 and tol >= 0 (got {max_period}, {tol})")


def class_counts(classes: list[dict]) -> dict[str, Any]:
    """How many trajectories end in each class, and the cycles per period."""
    counts: dict[str, Any] = {name: sum(c["class"] == name for c in classes) for name in CLASSES}
    periods = sorted({c["period"] for c in classes if c["class"] == "cycle"})
    counts["periods"] = {str(p): sum(c["period"] == p for c in classes) for p in periods}
    return counts


def start_latents(run, inverter: Any, source: str, k: int, seed: int = 0,
                  images: torch.Tensor | None = None) -> torch.Tensor:
    """K starting latents: the run's prior drawn with ``seed`` ('random') or the codes of the
    first k ``images`` ('image')."""
    if k < 1:
        raise UserError(f"trajectories must be at least 1 (got {k})")
    if source == "random":
        gen = torch.Generator().manual_seed(seed)
        return sample_prior(k, run.config["z_dim"], run.config["prior"], torch.device("cpu"), gen)
    if source != "image":
        raise UserError(f"dynamics start from 'image' or 'random' (got {source!r})")
    if images is None or len(images) == 0:
        raise UserError("dynamics from images needs images")
    return inversion.encode(inverter, images[:k])


def dynamics(run, inverter: Any, z0: torch.Tensor, iters: int) -> dict[str, torch.Tensor]:
    """Iterate z_{k+1} = E(G(z_k)) from z0 (N, d) for ``iters`` steps.

    Returns, per iteration k = 1..iters, the mean L1 distance between z_k and z_{k-1} and the
    mean cosine distance (1 - cosine similarity) between z_k and z_0, plus the final latents.
    (dynamics_study keeps these per trajectory and classifies how each ends.)
    """
    result = iterate(round_trip(run, inverter), z0, iters)
    return {"step_l1": result["step_l1"].mean(0), "cosine_distance_to_z0": result["cosine_distance_to_z0"].mean(0),
            "z": result["z"]}


def dynamics_study(run, inverter: Any, z0: torch.Tensor, iters: int, snapshots=None, tol: float = 1e-3,
                   max_period: int = 8, progress: bool = False) -> dict[str, Any]:
    """iterate() the round trip E(G(z)) from z0 (K, d), keeping the snapshots (default
    default_snapshots(iters)) and a tail long enough to classify() every trajectory's end."""
    _check_classifier(tol, max_period)
    snapshots = default_snapshots(iters) if snapshots is None else snapshots
    result = iterate(round_trip(run, inverter), z0, iters, snapshots, tail=max_period + 1, progress=progress)
    result["classes"] = classify(result["tail"], tol, max_period)
    result["counts"] = class_counts(result["classes"])
    return result


def _trajectory_labels(classes: list[dict]) -> list[str]:
    return [f"{i}: {c['class']}" + (f" {c['period']}" if c["period"] else "") for i, c in enumerate(classes)]


def save_dynamics(run, result: dict, out_dir: Path, settings: dict) -> dict:
    """dynamics.png (L1 step and cosine distance per trajectory), snapshots.png (rows =
    trajectories, columns = G(z_k) at the snapshots), dynamics.json (``settings``, counts,
    per trajectory its class and numbers per iteration), latents.npy (the last latents) and
    snapshots.npz (the snapshot latents, key k_ITER); returns the JSON."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = _trajectory_labels(result["classes"])
    studyplots.trajectory_plot({"L1 step |z_k - z_(k-1)|_1": result["step_l1"],
                                "cosine distance to z_0": result["cosine_distance_to_z0"]},
                               out_dir / "dynamics.png", labels, log_y=("L1 step |z_k - z_(k-1)|_1",))
    snaps = sorted(result["snapshots"])
    images = inversion.decode(run, torch.cat([result["snapshots"][k] for k in snaps]))
    tiles = images.view(len(snaps), -1, *images.shape[1:]).transpose(0, 1)
    layout = studyplots.labelled_grid(tiles, out_dir / "snapshots.png", row_labels=labels,
                                      col_labels=[f"k={k}" for k in snaps])
    np.save(out_dir / "latents.npy", result["z"].numpy())
    np.savez_compressed(out_dir / "snapshots.npz", **{f"k_{k}": result["snapshots"][k].numpy() for k in snaps})
    record = {**settings, "snapshots": snaps, "counts": result["counts"], "snapshot_layout": layout,
              "trajectories": [{"index": i, **c, "step_l1": rounded(result["step_l1"][i]),
                                "cosine_distance_to_z0": rounded(result["cosine_distance_to_z0"][i])}
                               for i, c in enumerate(result["classes"])]}
    fileio.atomic_write_json(out_dir / "dynamics.json", record)
    return record


# ---- reconstruction cosines -----------------------------------------------------------------
def reconstruction_cosines(run, inverter: Any, images: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """The mean-subtracted cosine between each image x and G(E(x)), and between random pairs of
    the images (as inversion.evaluate scores them: the images' mean subtracted)."""
    if len(images) < 2:
        raise UserError(f"cosines need two images or more (got {len(images)})")
    rec = inversion.decode(run, inversion.encode(inverter, images))
    mean = images.mean(0, keepdim=True)
    i, j = inversion._random_pairs(len(images), seed)
    return {"reconstruction": inversion._mean_subtracted_cosine(images, rec, mean),
            "random_pairs": inversion._mean_subtracted_cosine(images[i], images[j], mean),
            "mse": (images - rec).pow(2).flatten(1).mean(1)}


def save_cosines(result: dict, out: Path, title: str = "", bins: int = 40) -> dict:
    """Histograms of both cosines on ``bins`` equal bins over [-1, 1] (out, a PNG; dotted lines at
    the means) and a JSON beside it with each distribution's summary() and the counts."""
    series = {"x vs G(E(x))": result["reconstruction"], "random pairs of images": result["random_pairs"]}
    marks = {f"mean {k}": float(v.mean()) for k, v in series.items()}
    drawn = studyplots.histogram(series, torch.linspace(-1.0, 1.0, bins + 1), out, "mean-subtracted cosine",
                                 title, marks=marks)
    record = {"reconstruction": summary(result["reconstruction"]), "random_pairs": summary(result["random_pairs"]),
              "mse": float(result["mse"].mean()),
              "histogram": {"bins": drawn["bins"], "reconstruction": drawn["counts"]["x vs G(E(x))"],
                            "random_pairs": drawn["counts"]["random pairs of images"]}}
    fileio.atomic_write_json(Path(out).with_suffix(".json"), record)
    return record


# ---- attribute arithmetic -------------------------------------------------------------------
@dataclass
class Labelled:
    """A built dataset with class labels: its name, the Dataset, labels (N,) and class names."""

    name: str
    data: Any
    labels: torch.Tensor
    classes: list[str]

    def images(self, name: str, count: int, skip: int = 0) -> torch.Tensor:
        """Up to ``count`` images of class ``name`` after the first ``skip`` of them."""
        if name not in self.classes:
            raise UserError(f"no class {name!r} in {self.name}; available classes: {self.listing()}")
        index = (self.labels == self.classes.index(name)).nonzero().flatten()[skip:skip + count]
        return fetch(self.data, index).float()

    def listing(self) -> str:
        """The classes with their image counts, for messages."""
        counts = torch.bincount(self.labels, minlength=len(self.classes)).tolist()
        return ", ".join(f"{c} ({k})" for c, k in zip(self.classes, counts))


def labelled_set(run, source: ImageSet | None = None) -> Labelled | None:
    """``source`` (default: the run's training data) built at the run's resolution, with its
    labels (a dataset's ``labels``/``classes``, a folder's class sub-folders or dataset.json);
    None when it has none."""
    from gantools.conditional import labels_of
    from gantools.registry import default_registry

    source = source or training_set(run)
    name, arg, options = source.spec()
    shape = run.data_shape
    data = default_registry().create("datasets", name, options).build(arg, shape[1], shape[0])
    if getattr(data, "labels", None) is None:
        return None
    labels, classes = labels_of(data)
    return Labelled(source.name, data, labels, classes)


def side_images(run, value: str, labelled: Labelled | None, count: int, skip: int = 0) -> torch.Tensor:
    """Images for one side of an attribute vector: those of the folder / .npz at path ``value``,
    else of class ``value`` of ``labelled``; up to ``count`` after the first ``skip``."""
    if Path(value).exists():
        images = image_set(value).load(run, skip + count)[skip:]
    elif labelled is None:
        raise UserError(f"{value!r} is neither an image folder / .npz nor a class: the images have no class "
                        f"labels (a folder of class sub-folders, or a labelled dataset such as digits)")
    else:
        images = labelled.images(value, count, skip)
    if len(images) == 0:
        where = f"; available classes: {labelled.listing()}" if labelled is not None else ""
        aside = f" beyond the {skip} kept aside to apply the vector to" if skip else ""
        raise UserError(f"no images of {value!r}{aside}{where}")
    return images


def attribute_vector(inverter: Any, with_images: torch.Tensor, without_images: torch.Tensor) -> torch.Tensor:
    """v = mean E(images with the attribute) - mean E(images without it), shape (d,)."""
    return inversion.encode(inverter, with_images).mean(0) - inversion.encode(inverter, without_images).mean(0)


def apply_vector(run, inverter: Any, images: torch.Tensor, v: torch.Tensor,
                 strengths: list[float]) -> torch.Tensor:
    """Tiles (n, 1 + S, C, H, W): per image x, x itself then G(E(x) + s v) for each strength s."""
    z = inversion.encode(inverter, images)
    s = torch.tensor(strengths, dtype=z.dtype)
    codes = z[:, None, :] + s[None, :, None] * v[None, None, :]
    generated = inversion.decode(run, codes.flatten(0, 1)).view(len(images), len(strengths), *images.shape[1:])
    return torch.cat([images[:, None], generated], dim=1)


def arithmetic(run, inverter: Any, attribute: str, minus: str, to: str | None = None,
               images: ImageSet | None = None, strengths=(-1, 0, 0.5, 1, 1.5, 2), n: int = 8,
               count: int = 256) -> dict[str, Any]:
    """The attribute study: v = mean E(A) - mean E(B) over up to ``count`` images per side (A, B:
    paths of image folders / .npz files, or classes of ``images``, default the run's training
    data), applied at each strength
    to n other images: the first n of ``to`` (a class or a path), by default the first n of B,
    which B's mean then leaves out. Returns tiles, v and the JSON record."""
    if n < 1 or count < 1:
        raise UserError(f"--n and --count must be at least 1 (got {n}, {count})")
    classes_needed = any(v is not None and not Path(v).exists() for v in (attribute, minus, to))
    labelled = labelled_set(run, images) if classes_needed else None
    aside = n if to is None else 0
    with_a = side_images(run, attribute, labelled, count)
    without = side_images(run, minus, labelled, count, skip=aside)
    targets = side_images(run, to if to is not None else minus, labelled, n)
    v = attribute_vector(inverter, with_a, without)
    tiles = apply_vector(run, inverter, targets, v, list(strengths))
    record = {"attribute": attribute, "minus": minus, "to": to if to is not None else minus,
              "source": labelled.name if labelled is not None else None, "vector_norm": float(v.norm()),
              "counts": {"attribute": len(with_a), "minus": len(without), "targets": len(targets)},
              "strengths": list(strengths), "columns": ["x"] + [f"s={s:g}" for s in strengths]}
    return {"tiles": tiles, "vector": v, "record": record}


def save_arithmetic(result: dict, out: Path) -> dict:
    """The grid (rows = images; columns = x, then G(E(x) + s v) per strength) and the JSON beside it."""
    record = dict(result["record"])
    record["layout"] = studyplots.labelled_grid(result["tiles"], out, col_labels=record["columns"])
    record["vector"] = rounded(result["vector"])
    fileio.atomic_write_json(Path(out).with_suffix(".json"), record)
    return record
