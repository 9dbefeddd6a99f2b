"""Nearest training images of generated samples (`gantools neighbours`), in pixel space and in a
feature space, and the memorisation ratio.

Pixel space: Euclidean distance between images as vectors of their [-1, 1] values (C x H x W).
Feature space: the dataset plugin's ``features`` when it has them (digits: its classifier's
penultimate layer), else the run's critic without its output layer (its ``trunk()``).

Memorisation ratio, per space: the mean distance of a sample to its nearest training image over
the mean distance of a training image to its nearest *other* training image. Near 1 or above:
samples sit as far from the training set as training images from one another; well below 1:
samples are closer to training images than those are to each other (copies; 0 for exact ones).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from gantools import fileio, specs, studyplots
from gantools.config import split_dataset
from gantools.data import run_images
from gantools.errors import UserError

Extractor = Callable[[torch.Tensor], torch.Tensor]  # images (B, C, H, W) in [-1, 1] -> (B, F)
FEATURE_BATCH = 256  # images per network call
REFERENCE = 500  # training images whose nearest other training image gives the ratio's baseline
_BLOCK_ELEMENTS = 2 ** 22  # query rows per block: at most this many values (rows x dimension)


# ---- exact k nearest neighbours ---------------------------------------------------------------
def nearest(queries: torch.Tensor, bank: torch.Tensor, k: int, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest rows of ``bank`` (M, D) to each row of ``queries`` (N, D), by Euclidean distance.

    Exact: candidates are chosen with ||q||^2 - 2 q.b + ||b||^2 in float64, over blocks of at most
    ``chunk`` bank rows (so large banks never make an N x M matrix), and the distances returned are
    recomputed as ||q - b|| (an exact duplicate is at distance 0). Rows of more than two dimensions
    are flattened. Ties are ordered by bank index. Runs on the queries' device.

    Returns:
        distances (N, k) float64, ascending along each row, and indices (N, k) into ``bank``.
    """
    q, b = queries.flatten(1), bank.flatten(1).to(queries.device)
    if q.shape[1] != b.shape[1]:
        raise UserError(f"queries have {q.shape[1]} values per row, the bank {b.shape[1]}")
    if not 1 <= k <= len(b):
        raise UserError(f"k must be between 1 and the bank's {len(b)} rows, got {k}")
    if chunk < 1:
        raise UserError(f"chunk must be at least 1, got {chunk}")
    rows = max(1, min(chunk, _BLOCK_ELEMENTS // max(1, q.shape[1])))
    found = [_exact(q[s:s + rows], b, _candidates(q[s:s + rows], b, k, chunk)) for s in range(0, len(q), rows)]
    if not found:
        return torch.empty(0, k, dtype=torch.float64), torch.empty(0, k, dtype=torch.long)
    return torch.cat([d for d, _ in found]), torch.cat([i for _, i in found])


def _candidates(q: torch.Tensor, b: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """(N, k) bank indices of the k smallest squared distances (ties to the lower index), kept while
    scanning the bank in chunks; each row's indices stay ascending."""
    q = q.double()
    q_sq = q.pow(2).sum(1, keepdim=True)
    best_d = torch.empty(len(q), 0, dtype=torch.float64, device=q.device)
    best_i = torch.empty(len(q), 0, dtype=torch.long, device=q.device)
    for start in range(0, len(b), chunk):
        part = b[start:start + chunk].double()
        d = torch.addmm(part.pow(2).sum(1), q, part.T, alpha=-2).add_(q_sq)  # ||q||^2 - 2 q.b + ||b||^2
        d = d.clamp_(min=0).nan_to_num_(nan=float("inf"))
        keep = _smallest(d, min(k, d.shape[1]))
        d, i = torch.cat([best_d, d.gather(1, keep)], 1), torch.cat([best_i, keep + start], 1)
        keep = _smallest(d, min(k, d.shape[1]))  # earlier chunks first: columns stay in index order
        best_d, best_i = d.gather(1, keep), i.gather(1, keep)
    return best_i


def _smallest(d: torch.Tensor, k: int) -> torch.Tensor:
    """Column positions (rows, k) of each row's k smallest values, ties to the lower column, ascending."""
    kth = d.topk(k, dim=1, largest=False).values[:, -1:]
    take = d <= kth
    if bool((take.sum(1) > k).any()):  # ties at the k-th value: the lower columns among them
        less = d < kth
        ties = take & ~less
        take = less | (ties & (ties.cumsum(1) <= k - less.sum(1, keepdim=True)))
    return take.nonzero()[:, 1].view(len(d), k)


def _exact(q: torch.Tensor, b: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """||q - b[idx]|| recomputed directly, rows sorted by (distance, index)."""
    idx = idx.sort(dim=1).values
    q = q.double()
    dist = torch.stack([(q - b[idx[:, j]].double()).norm(dim=1) for j in range(idx.shape[1])], 1)
    dist, order = dist.sort(dim=1, stable=True)
    return dist.cpu(), idx.gather(1, order).cpu()


def nearest_other(bank: torch.Tensor, rows: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """For the bank rows ``rows``, the distance to the nearest OTHER row of the bank (its own match
    left out, by index: an exact duplicate elsewhere still counts, at distance 0)."""
    dist, idx = nearest(bank[rows], bank, 2, chunk)
    own_first = idx[:, 0] == rows.to(idx.device)
    return torch.where(own_first, dist[:, 1], dist[:, 0])


def memorisation(sample_nearest: torch.Tensor, train_nearest: torch.Tensor) -> dict[str, Any]:
    """Mean and median nearest distance of the samples and of the training images (to the rest of
    the training set), and the ratio of the means (None when the training images' mean is 0)."""
    s, t = sample_nearest.double(), train_nearest.double()
    mean_s, mean_t = float(s.mean()), float(t.mean())
    return {"sample_nearest_mean": mean_s, "sample_nearest_median": float(s.median()),
            "train_nearest_mean": mean_t, "train_nearest_median": float(t.median()),
            "reference_images": len(t), "ratio": mean_s / mean_t if mean_t > 0 else None}


# ---- the feature space ------------------------------------------------------------------------
@torch.no_grad()
def _batched(fn: Callable, images: torch.Tensor, device: torch.device | str = "cpu",
             layout: torch.memory_format = torch.preserve_format) -> torch.Tensor:
    """fn over batches of images, flattened to (N, F) float on the CPU."""
    parts = [fn(chunk.to(device, memory_format=layout)).flatten(1).float().cpu()
             for chunk in images.split(FEATURE_BATCH)]
    return torch.cat(parts) if parts else torch.empty(0, 0)


def critic_trunk(run) -> nn.Module:
    """The run's critic without its output layer, (N, C, H, W) -> (N, ...): the architecture
    critic's ``trunk()``, or a conditional critic's trunk; UserError when there is none."""
    critic = run.critic
    if critic is None:
        raise UserError(f"this run has no critic (an autoencoder run, loss {run.config['loss']}) and its dataset "
                        f"'{run.config['dataset']}' offers no features: there is no feature space to compare in")
    trunk = getattr(critic, "trunk", None)
    if isinstance(trunk, nn.Module):  # a conditional critic (gantools.conditional) holds its trunk
        if getattr(critic, "mode", None) == "concat":
            raise UserError("this conditional critic (concat) reads the labels with the images: its trunk "
                            "gives no feature space of images alone")
        return trunk
    if callable(trunk):
        return trunk()
    raise UserError(f"the critic of architecture '{run.config['arch']}' has no trunk() and dataset "
                    f"'{run.config['dataset']}' offers no features: there is no feature space to compare in")


def feature_space(run, registry=None) -> tuple[str, Extractor]:
    """(name, images -> features (N, F) on the CPU): the run's dataset plugin's ``features`` when it
    has them (``specs.DatasetFeatures``), else the critic's trunk (in eval mode, on the run's device)."""
    if run.data_kind != "images":
        raise UserError(f"nearest neighbours compare images; this run's data are {run.data_kind}")
    if registry is None:
        from gantools.registry import default_registry

        registry = default_registry()
    name, _ = split_dataset(run.config["dataset"])
    plugin = registry.create("datasets", name, run.config.get("dataset_opts") or {})
    method = getattr(plugin, "features", None)
    if callable(method):
        label = specs.attribute("datasets", plugin, "features_name") or f"dataset {name}'s features"
        return label, lambda images: _batched(method, images)
    trunk, critic = critic_trunk(run), run.critic

    def extract(images: torch.Tensor) -> torch.Tensor:
        was_training = critic.training
        critic.eval()
        try:
            return _batched(trunk, images, run.device, run.memory_format)
        finally:
            critic.train(was_training)

    return f"critic trunk ({run.config['arch']}, step {run.step})", extract


# ---- the study ----------------------------------------------------------------------------------
def _space(samples: torch.Tensor, bank: torch.Tensor, k: int, reference: torch.Tensor, device) -> dict[str, Any]:
    """Distances and indices of the samples' k nearest bank rows, and the memorisation figures."""
    samples, bank = samples.flatten(1).to(device), bank.flatten(1).to(device)
    dist, idx = nearest(samples, bank, k)
    return {"distances": dist, "indices": idx,
            "memorisation": memorisation(dist[:, 0], nearest_other(bank, reference))}


def neighbours(run, n: int = 16, k: int = 5, seed: int = 0, bank_size: int | None = None, device: str = "cpu",
               registry=None, reference: int = REFERENCE) -> dict[str, Any]:
    """n samples of the run (its sampling generator: the weight average when it has one; latents of
    ``seed``) and their k nearest training images in pixel space and in ``feature_space``.

    Args:
        bank_size: compare with the first ``bank_size`` training images only (default: all).
        device: where the distances are computed (the networks stay on the run's device).
        reference: training images (a seeded random choice) whose nearest other training image
            gives the memorisation baseline.

    Returns:
        {"run", "step", "dataset", "n", "k", "seed", "samples" (n, C, H, W), "bank" (M, C, H, W),
        "spaces": {"pixel": {...}, "feature": {"name", ...}}}, each space with "distances" and
        "indices" (n, k) and "memorisation" (see ``memorisation``).
    """
    for flag, value, least in (("n", n, 1), ("k", k, 1), ("bank", bank_size, 2), ("reference", reference, 1)):
        if value is not None and value < least:
            raise UserError(f"{flag} must be at least {least}, got {value}")
    name, extract = feature_space(run, registry)  # refuses before any work
    bank = run_images(run, bank_size, registry=registry)
    if len(bank) < max(k, 2):
        raise UserError(f"k={k} needs at least {max(k, 2)} training images; there are {len(bank)}")
    samples = run.sample(n, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randperm(len(bank), generator=gen)[:min(reference, len(bank))].sort().values
    spaces = {"pixel": _space(samples, bank, k, rows, device),
              "feature": {"name": name, **_space(extract(samples), extract(bank), k, rows, device)}}
    return {"run": str(run.directory) if run.directory is not None else None, "step": run.step,
            "dataset": run.config["dataset"], "n": n, "k": k, "seed": seed, "samples": samples, "bank": bank,
            "spaces": spaces}


def column_labels(k: int) -> list[str]:
    """The grid's column labels: the sample, then k pixel-space and k feature-space neighbours."""
    return ["sample", *(f"pix {j}" for j in range(1, k + 1)), *(f"feat {j}" for j in range(1, k + 1))]


def save_neighbours(result: dict[str, Any], out: str | Path) -> dict[str, Any]:
    """One grid PNG (a row per sample: the sample, its k nearest training images in pixel space,
    then in feature space) and the JSON of its numbers beside it (same stem); returns the record."""
    out = Path(out)
    pixel, feature = result["spaces"]["pixel"], result["spaces"]["feature"]
    bank = result["bank"]
    tiles = torch.stack([torch.cat([sample[None], bank[pixel["indices"][r]], bank[feature["indices"][r]]])
                         for r, sample in enumerate(result["samples"])])
    labels = column_labels(result["k"])
    layout = studyplots.labelled_grid(tiles, out, col_labels=labels)
    spaces = {name: {**({"name": space["name"]} if "name" in space else {}),
                     "distances": space["distances"].tolist(), "indices": space["indices"].tolist()}
              for name, space in result["spaces"].items()}
    record = {key: result[key] for key in ("run", "step", "dataset", "n", "k", "seed")}
    record.update({"bank": len(bank), "bank_images": f"the first {len(bank)} training images (indices refer to them)",
                   "pixel_metric": "Euclidean over the [-1, 1] pixel values", "png": str(out), "columns": labels,
                   "layout": layout, "spaces": spaces,
                   "memorisation": {name: space["memorisation"] for name, space in result["spaces"].items()}})
    fileio.atomic_write_json(out.with_suffix(".json"), record)
    return record
