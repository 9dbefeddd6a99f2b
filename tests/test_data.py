"""gantools.data: batch streams (determinism, epochs, resume, ranks), fetch, and a run's real items."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from gantools.data import BatchStream, fetch, held_out_digits, load_images, load_items, run_images
from gantools.errors import UserError
from gantools.metrics import EvalContext
from gantools.registry import default_registry


class Indexed:
    """Item i is the float i (shape (1,)); counts how items are fetched."""

    def __init__(self, n: int, batched: bool):
        self.n, self.calls = n, []
        if batched:
            self.get_batch = self._get_batch

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        self.calls.append(("item", i))
        return torch.tensor([float(i)])

    def _get_batch(self, indices: torch.Tensor) -> torch.Tensor:
        self.calls.append(("batch", indices.tolist()))
        return indices.float()[:, None]


def _ids(batch: torch.Tensor) -> list[int]:
    return batch[:, 0].long().tolist()


def _run(dataset: str, opts: dict | None = None, shape=(1, 8, 8)):
    """All that the data functions read from a run."""
    return SimpleNamespace(config={"dataset": dataset, "dataset_opts": opts or {}}, data_shape=shape)


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's digits at their own 8x8 size, scaled to [-1, 1]: (1797, 1, 8, 8)."""
    from sklearn.datasets import load_digits

    return torch.from_numpy(load_digits().images.astype(np.float32) / 16 * 2 - 1)[:, None]


@pytest.mark.parametrize("batched", [False, True])
def test_fetch_with_and_without_get_batch(batched):
    data = Indexed(10, batched)
    out = fetch(data, torch.tensor([7, 2, 5]))
    assert out.shape == (3, 1) and _ids(out) == [7, 2, 5]
    assert data.calls == ([("batch", [7, 2, 5])] if batched else [("item", 7), ("item", 2), ("item", 5)])


def test_stream_is_determined_by_the_seed():
    first = [_ids(BatchStream(Indexed(20, True), 4, seed=3).next()) for _ in range(2)]
    assert first[0] == first[1]
    a, b = BatchStream(Indexed(20, True), 4, seed=3), BatchStream(Indexed(20, True), 4, seed=4)
    assert [_ids(a.next()) for _ in range(5)] != [_ids(b.next()) for _ in range(5)]


def test_epochs_cover_the_data_and_drop_the_partial_batch():
    stream = BatchStream(Indexed(10, True), 4, seed=0)
    epoch0 = _ids(stream.next()) + _ids(stream.next())
    assert len(set(epoch0)) == 8 and stream.state_dict() == {"epoch": 0, "pos": 8}
    epoch1 = _ids(stream.next())  # 2 items left: a new epoch with a new permutation starts
    assert stream.state_dict() == {"epoch": 1, "pos": 4}
    epoch1 += _ids(stream.next())
    assert len(set(epoch1)) == 8 and epoch1 != epoch0


def test_resume_from_state_continues_the_same_sequence():
    whole = BatchStream(Indexed(10, True), 4, seed=7)
    expected = [_ids(whole.next()) for _ in range(7)]
    first = BatchStream(Indexed(10, True), 4, seed=7)
    head = [_ids(first.next()) for _ in range(3)]
    resumed = BatchStream(Indexed(10, True), 4, seed=7)
    resumed.load_state_dict(first.state_dict())
    assert head + [_ids(resumed.next()) for _ in range(4)] == expected


@pytest.mark.parametrize("world", [2, 4])
def test_ranks_concatenate_to_the_one_process_batch(world):
    single = BatchStream(Indexed(20, True), 8, seed=1)
    ranks = [BatchStream(Indexed(20, True), 8, seed=1, rank=r, world=world) for r in range(world)]
    for _ in range(5):  # crosses epochs (2 batches per epoch)
        parts = [stream.next() for stream in ranks]
        assert all(len(part) == 8 // world for part in parts)
        assert torch.equal(torch.cat(parts), single.next())
        assert all(stream.state_dict() == single.state_dict() for stream in ranks)


def test_stream_refuses_a_batch_larger_than_the_data():
    with pytest.raises(UserError, match="3 items, fewer than the batch size 4"):
        BatchStream(Indexed(3, False), 4, seed=0)


def test_load_images_from_a_folder_in_sorted_path_order(tmp_path):
    # Constant gray images: value 10 * i for the i-th path in sorted order (two sub-folders).
    values = {}
    for i, name in enumerate(["a/0.png", "a/1.png", "b/0.png", "b/1.png", "b/2.png"]):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.fromarray(np.full((20, 12, 3), 10 * i, dtype=np.uint8)).save(tmp_path / name)
        values[name] = 10 * i
    x = load_images(_run("digits", shape=(1, 4, 4)), tmp_path)
    assert x.shape == (5, 1, 4, 4) and x.dtype == torch.float32
    expected = torch.tensor([v / 127.5 - 1 for v in values.values()])
    torch.testing.assert_close(x.flatten(1), expected[:, None].expand(5, 16), atol=1e-6, rtol=0)


def test_load_images_from_npz_resized_to_the_run(tmp_path):
    images = np.stack([np.full((16, 16), 30 * i, dtype=np.uint8) for i in range(6)])
    images[2, :8] = 255  # top half white: stays brighter on top after resizing
    np.savez(tmp_path / "x.npz", images=images)
    x = load_images(_run("digits", shape=(3, 8, 8)), tmp_path / "x.npz")
    assert x.shape == (6, 3, 8, 8)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])  # gray replicated to RGB
    for i in (0, 1, 3, 4, 5):
        torch.testing.assert_close(x[i], torch.full((3, 8, 8), 30 * i / 127.5 - 1), atol=1e-5, rtol=0)
    assert x[2, 0, 0, 0] == pytest.approx(1.0) and x[2, 0, -1, 0] == pytest.approx(60 / 127.5 - 1, abs=1e-5)


def test_load_images_user_errors(tmp_path):
    run = _run("digits")
    with pytest.raises(UserError, match="no images at"):
        load_images(run, tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="neither an image folder nor an .npz"):
        load_images(run, tmp_path / "notes.txt")


def test_run_images_are_the_first_items_of_the_runs_data(digits):
    x = run_images(_run("digits", {"split": "all"}), 5)
    torch.testing.assert_close(x, digits[:5])
    points = run_images(_run("toy:8gaussians", {"n": 64}, shape=(2,)), 10)
    assert points.shape == (10, 2)
    assert torch.equal(points, run_images(_run("toy:8gaussians", {"n": 64}, shape=(2,)), 64)[:10])


def test_held_out_digits_only_for_the_train_split():
    held = held_out_digits(_run("digits", {"split": "train"}))
    assert held is not None
    images, source = held
    assert images.shape == (297, 1, 8, 8) and source == "digits:split=test (held out)"
    test_split = load_items(_run("digits"), "digits", None, {"split": "test"})
    assert torch.equal(images, test_split)
    for other in (_run("digits", {"split": "all"}), _run("digits", {"split": "test"}), _run("digits"),
                  _run("toy:8gaussians", shape=(2,))):
        assert held_out_digits(other) is None


def test_eval_context_real_is_a_seeded_order_of_the_whole_data(digits):
    run = _run("digits", {"split": "all"})
    real = EvalContext(run, default_registry(), n=10, seed=3).real()
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(real, digits[order])
    assert torch.equal(EvalContext(run, default_registry(), n=10, seed=3).real(10), real[:10])
    other = EvalContext(run, default_registry(), n=10, seed=4).real(10)
    assert not torch.equal(other, real[:10])
