"""Animations: a run's timelapse of fixed-latent grids (`gantools animate`) and the animated
latent interpolation (`gantools latent interpolate --out FILE.gif`)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import gantools
from gantools import animation
from gantools.cli import main
from gantools.errors import UserError

STEPS = [0, 5, 10, 20, 40]  # written out of order below; frames must come back by step
SIZE = (30, 22)  # (width, height) of the synthetic grids


def _grey(step: int) -> int:
    return 40 + 4 * step


@pytest.fixture
def fake_run(tmp_path):
    """A run directory whose samples/ holds solid grey step grids (grey level from the step),
    samples/latest.png and a stray file that are not step grids."""
    samples = tmp_path / "run" / "samples"
    samples.mkdir(parents=True)
    for step in reversed(STEPS):
        Image.new("L", SIZE, _grey(step)).save(samples / f"step_{step:07d}.png")
    Image.new("L", SIZE, 255).save(samples / "latest.png")
    (samples / "step_notes.png").write_bytes(b"not an image")
    return tmp_path / "run"


def _frames(path):
    """[(RGB array, duration ms)] of every frame of an animation, read back with Pillow."""
    out = []
    with Image.open(path) as image:
        for k in range(image.n_frames):
            image.seek(k)
            out.append((np.asarray(image.convert("RGB")).astype(int), image.info["duration"]))
    return out


@pytest.mark.parametrize("every,expected", [(1, STEPS), (2, [0, 10, 40]), (3, [0, 20, 40]), (4, [0, 40]),
                                            (9, [0, 40])])
def test_run_frames_by_step_every_kth_and_the_last(fake_run, every, expected):
    frames = animation.run_frames(fake_run, every)
    assert [step for step, _ in frames] == expected
    for step, image in frames:
        assert image.size == (SIZE[0], SIZE[1] + animation.LABEL_HEIGHT) and image.mode == "L"
        pixels = np.asarray(image)
        assert (pixels[:SIZE[1]] == _grey(step)).all()  # the grid untouched above the strip
        assert pixels[SIZE[1]:].min() < 100 and pixels[SIZE[1]:].max() == 255  # black text on white


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_timelapse_frames_durations_and_pixels(fake_run, tmp_path, suffix):
    out = tmp_path / f"anim{suffix}"
    steps = animation.timelapse(fake_run, out, fps=5, every=2, hold_last=1.5)
    assert steps == [0, 10, 40]
    frames = _frames(out)
    assert [d for _, d in frames] == [200, 200, 1500]
    assert all(p.shape == (SIZE[1] + animation.LABEL_HEIGHT, SIZE[0], 3) for p, _ in frames)
    for (pixels, _), step in zip(frames, steps):  # solid greys survive the GIF palette exactly
        assert (pixels[:SIZE[1]] == _grey(step)).all()
    expected = np.asarray(animation.run_frames(fake_run, 2)[0][1].convert("RGB")).astype(int)
    assert np.abs(frames[0][0] - expected).max() == 0  # the label strip too


def test_colour_grids_and_sizes_that_differ(tmp_path):
    """RGB grids (the GIF quantises them: compared with a tolerance) and a grid a few pixels larger
    (drawn with a tight bounding box) on one canvas."""
    rng = np.random.default_rng(0)
    samples = tmp_path / "run" / "samples"
    samples.mkdir(parents=True)
    grids = [rng.integers(0, 256, (16, 20, 3), dtype=np.uint8) for _ in range(2)]
    Image.fromarray(grids[0]).save(samples / "step_0000001.png")
    Image.fromarray(np.pad(grids[1], ((0, 2), (0, 3), (0, 0)))).save(samples / "step_0000002.png")
    animation.timelapse(tmp_path / "run", tmp_path / "a.gif", fps=10, hold_last=0)
    frames = _frames(tmp_path / "a.gif")
    assert len(frames) == 2 and [d for _, d in frames] == [100, 100]
    assert frames[0][0].shape == (18 + animation.LABEL_HEIGHT, 23, 3)
    assert np.abs(frames[0][0][:16, :20] - grids[0]).mean() < 12  # palette quantisation only
    assert (frames[0][0][:16, 20:] == 255).all()  # white around the smaller grid


def test_frame_ms_and_pingpong():
    assert [animation.frame_ms(f) for f in (4, 5, 8, 30, 50)] == [250, 200, 120, 30, 20]
    assert animation.pingpong([0, 1, 2, 3]) == [0, 1, 2, 3, 2, 1]
    assert animation.pingpong([0, 1]) == [0, 1]
    assert animation.pick_every([1, 2, 3, 4, 5, 6], 5) == [1, 6]


def test_core_errors(fake_run, tmp_path):
    with pytest.raises(UserError, match="must end in .gif or .webp"):
        animation.timelapse(fake_run, tmp_path / "a.mp4")
    with pytest.raises(UserError, match="no fixed-latent grids"):
        animation.timelapse(tmp_path / "nothing", tmp_path / "a.gif")
    assert not (tmp_path / "a.gif").exists()


def test_cli_animate(fake_run, tmp_path, capsys):
    out = tmp_path / "t.webp"
    with pytest.raises(SystemExit) as info:
        main(["animate", str(fake_run), "--out", str(out), "--every", "3", "--fps", "4", "--hold", "1"])
    assert info.value.code == 0
    assert "3 frames, steps 0..40, 250 ms a frame" in capsys.readouterr().out
    assert [d for _, d in _frames(out)] == [250, 250, 1000]


@pytest.mark.parametrize("args,message", [
    (["--out", "x.mp4"], "must end in .gif or .webp (got '.mp4')"),
    (["--out", "x.gif", "--every", "0"], "--every"),
    (["--out", "x.gif", "--fps", "0"], "--fps"),
])
def test_cli_animate_errors(fake_run, cli_error, args, message):
    assert message in cli_error(["animate", str(fake_run), *args])


def test_cli_animate_without_grids(tmp_path, cli_error):
    (tmp_path / "run" / "samples").mkdir(parents=True)
    assert "no fixed-latent grids (samples/step_N.png)" in cli_error(["animate", str(tmp_path / "run"),
                                                                      "--out", str(tmp_path / "x.gif")])


# ---- gantools latent interpolate --out FILE.gif ----------------------------------------------
@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("anim") / "run"
    gantools.train(out=out, arch="dcgan", loss="wgan-gp", dataset="digits", arch_opts={"width": 8}, z_dim=6,
                   batch_size=16, steps=1, n_critic=1, ema=0.0)
    return gantools.load_run(out)


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_interpolation_animation_frames_are_the_path(digits_run, tmp_path, capsys, suffix):
    np.save(tmp_path / "z.npy", 2 * np.eye(6, dtype=np.float32))
    out = tmp_path / f"i{suffix}"
    with pytest.raises(SystemExit) as info:
        main(["latent", "interpolate", str(digits_run.directory), "--inverter", "gradient", "--inverter-opt",
              "steps=1", "--n", "4", "--latents", str(tmp_path / "z.npy"), "--pair", "0", "3", "--method", "lerp",
              "--steps", "4", "--fps", "10", "--out", str(out)])
    assert info.value.code == 0 and "6 frames forth and back" in capsys.readouterr().out
    saved = np.load(tmp_path / "i.npz")  # the path and its images, beside the animation as before
    path = torch.from_numpy(saved["latents"])
    torch.testing.assert_close(path[1], torch.tensor([4 / 3, 0, 0, 2 / 3, 0, 0]))
    frames = _frames(out)
    assert len(frames) == 2 * 4 - 2 and all(d == 100 for _, d in frames)
    for k, (pixels, _) in enumerate(frames):  # frame k shows G(path[k]) there and G(path[6 - k]) back
        index = k if k < 4 else 6 - k
        expected = animation.tensor_frames(digits_run.generate(path[index:index + 1]))[0]
        assert pixels.shape[:2] == (expected.height, expected.width) and expected.width >= 128
        assert np.abs(pixels - np.asarray(expected.convert("RGB")).astype(int)).max() <= 1


def test_interpolate_refuses_an_unknown_suffix(digits_run, cli_error):
    err = cli_error(["latent", "interpolate", str(digits_run.directory), "--inverter", "gradient", "--out", "x.mp4"])
    assert "--out must name a .png grid or a .gif/.webp animation (got x.mp4)" in err
