"""Augmentations of what the critic sees: parsing, each op's effect, the draws, gradients, layouts, ranks."""
from __future__ import annotations

import pytest
import torch

from gantools import augment
from gantools.distributed import DataParallel
from gantools.errors import UserError

OPS = [augment.flip, augment.brightness, augment.saturation, augment.contrast, augment.translation,
       augment.cutout, augment.diff_augment]


def images(n=4, c=3, h=8, w=8, seed=0, dtype=torch.float32):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2 - 1


def seeded(fn, seed=0):
    """``fn`` with torch's global RNG reseeded at each call, so its draws are fixed."""
    def call(*args):
        torch.manual_seed(seed)
        return fn(*args)
    return call


@pytest.mark.parametrize("spec, expected", [
    ("", ()), ("none", ()), (" None ", ()), ("flip", ("flip",)), ("diffaugment", ("diffaugment",)),
    ("diffaugment,flip", ("flip", "diffaugment")), ("flip, DiffAugment,flip,", ("flip", "diffaugment")),
])
def test_parse(spec, expected):
    assert augment.parse(spec) == expected


@pytest.mark.parametrize("spec", ["flip,colour", "translation", "none,flip"])
def test_parse_rejects_unknown_names_listing_the_known_ones(spec):
    with pytest.raises(UserError, match="known: flip, diffaugment") as error:
        augment.parse(spec)
    assert spec.split(",")[-1] in str(error.value)


def test_no_policy_is_the_identity_and_draws_nothing():
    x = images()
    torch.manual_seed(0)
    state = torch.get_rng_state()
    for policy in ["", "none", (), ["none"]]:
        assert augment.augment_real(x, policy) is x and augment.augment_fake(x, policy) is x
    assert augment.augment_fake(x, "flip") is x  # fakes are never flipped
    assert torch.equal(torch.get_rng_state(), state)


def test_points_are_refused_with_a_user_error():
    with pytest.raises(UserError, match=r"\(N, C, H, W\)"):
        augment.augment_fake(torch.zeros(8, 2), "diffaugment")
    points = torch.zeros(8, 2)
    assert augment.augment_real(points, "none") is points


def test_flip_mirrors_exactly_the_rows_the_draw_picks():
    x = images(n=64)
    torch.manual_seed(5)
    picked = torch.rand(64) < 0.5
    assert 0 < picked.sum() < 64
    out = seeded(augment.flip, 5)(x)
    assert torch.equal(out[picked], x[picked].flip(3)) and torch.equal(out[~picked], x[~picked])
    assert torch.equal(seeded(augment.flip, 5)(out), x)  # the same seed flips the same rows back
    assert torch.equal(augment.flip(x, picked), out)


def test_augment_real_flips_then_diffaugments_and_augment_fake_only_diffaugments():
    x = images()
    torch.manual_seed(1)
    expected = augment.diff_augment(augment.flip(x))
    assert torch.equal(seeded(augment.augment_real, 1)(x, "diffaugment,flip"), expected)
    assert torch.equal(seeded(augment.augment_real, 1)(x, ("flip",)), seeded(augment.flip, 1)(x))
    assert torch.equal(seeded(augment.augment_fake, 1)(x, "flip,diffaugment"), seeded(augment.diff_augment, 1)(x))


def test_brightness_shifts_each_image_by_its_draw_in_the_reference_range():
    x = images(n=256)
    torch.manual_seed(2)
    shift = torch.rand(256) - 0.5
    out = seeded(augment.brightness, 2)(x)
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)) - x.mean(dim=(1, 2, 3)), shift)
    torch.testing.assert_close(out - x, shift.view(-1, 1, 1, 1).expand_as(x))
    assert shift.min() >= -0.5 and shift.max() < 0.5 and shift.max() - shift.min() > 0.9


def test_saturation_scales_each_pixels_deviation_from_its_channel_mean():
    x = images(n=256)
    torch.manual_seed(3)
    factor = torch.rand(256) * 2
    out = seeded(augment.saturation, 3)(x)
    mean = x.mean(dim=1, keepdim=True)
    torch.testing.assert_close(out, mean + (x - mean) * factor.view(-1, 1, 1, 1))
    torch.testing.assert_close(out.mean(dim=1), x.mean(dim=1))  # grey stays grey
    assert factor.min() >= 0 and factor.max() < 2 and factor.max() - factor.min() > 1.8
    grey = augment.saturation(x, torch.zeros(256))  # factor 0: every channel is the pixel's mean
    torch.testing.assert_close(grey, mean.expand_as(x))


def test_contrast_scales_each_images_deviation_from_its_mean():
    x = images(n=256)
    torch.manual_seed(4)
    factor = torch.rand(256) + 0.5
    out = seeded(augment.contrast, 4)(x)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(out, mean + (x - mean) * factor.view(-1, 1, 1, 1))
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)))
    assert factor.min() >= 0.5 and factor.max() < 1.5 and factor.max() - factor.min() > 0.9


def test_translation_moves_a_bright_pixel_by_the_drawn_offset():
    n, h, w = 200, 16, 24
    x = torch.zeros(n, 2, h, w)
    x[:, :, 7, 11] = 1.0
    torch.manual_seed(6)
    dy, dx = torch.randint(-2, 3, (n,)), torch.randint(-3, 4, (n,))  # H//8 = 2, W//8 = 3
    out = seeded(augment.translation, 6)(x)
    for i in range(n):
        expected = torch.zeros(2, h, w)
        expected[:, 7 + dy[i], 11 + dx[i]] = 1.0
        assert torch.equal(out[i], expected), i
    assert set(dy.tolist()) == set(range(-2, 3)) and set(dx.tolist()) == set(range(-3, 4))


@pytest.mark.parametrize("dy, dx", [(2, -1), (-2, 3), (0, 0)])
def test_translation_fills_what_it_uncovers_with_zeros(dy, dx):
    x = images(n=1, c=2, h=16, w=24)
    out = augment.translation(x, torch.tensor([[dy, dx]]))
    expected = torch.zeros_like(x)
    expected[..., max(dy, 0):16 + min(dy, 0), max(dx, 0):24 + min(dx, 0)] = \
        x[..., max(-dy, 0):16 - max(dy, 0), max(-dx, 0):24 - max(dx, 0)]
    assert torch.equal(out, expected)


@pytest.mark.parametrize("centre, rows, cols", [
    ((4, 4), (2, 6), (2, 6)),  # inside: the whole 4 x 4 square
    ((0, 8), (0, 2), (6, 8)),  # at a corner: clipped to the image
    ((7, 1), (5, 8), (0, 3)),
])
def test_cutout_zeroes_exactly_a_square_of_half_the_size(centre, rows, cols):
    x = images(n=1, h=8, w=8) + 3  # no zeros of its own
    out = augment.cutout(x, torch.tensor([centre]))
    expected = x.clone()
    expected[..., rows[0]:rows[1], cols[0]:cols[1]] = 0
    assert torch.equal(out, expected)


def test_cutout_draws_centres_over_the_whole_image():
    n, h, w = 400, 8, 6  # a 4 x 3 rectangle: centre rows in [0, 8], columns in [0, 5] (odd width)
    torch.manual_seed(7)
    rows, cols = torch.randint(0, 9, (n,)), torch.randint(0, 6, (n,))
    out = seeded(augment.cutout, 7)(torch.ones(n, 1, h, w))
    assert torch.equal(out, augment.cutout(torch.ones(n, 1, h, w), torch.stack([rows, cols], 1)))
    assert set(rows.tolist()) == set(range(9)) and set(cols.tolist()) == set(range(6))
    zeroed = (out == 0).sum(dim=(1, 2, 3))
    assert zeroed.max() == 12 and zeroed.min() > 0


def test_diff_augment_draws_color_translation_cutout_in_order_from_the_global_rng():
    n, h, w = 6, 16, 8
    x = images(n=n, h=h, w=w)
    torch.manual_seed(8)
    shift, saturation, contrast = torch.rand(n) - 0.5, torch.rand(n) * 2, torch.rand(n) + 0.5
    offset = torch.stack([torch.randint(-2, 3, (n,)), torch.randint(-1, 2, (n,))], 1)
    centre = torch.stack([torch.randint(0, 17, (n,)), torch.randint(0, 9, (n,))], 1)
    after = torch.get_rng_state()
    expected = augment.contrast(augment.saturation(augment.brightness(x, shift), saturation), contrast)
    expected = augment.cutout(augment.translation(expected, offset), centre)
    torch.manual_seed(8)
    assert torch.equal(augment.diff_augment(x), expected)
    assert torch.equal(torch.get_rng_state(), after)  # those draws and no others
    assert not torch.equal(seeded(augment.diff_augment, 9)(x), expected)


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.__name__)
def test_gradients_flow_to_the_input(op):
    x = images(n=3, c=2, h=8, w=8, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(seeded(op, 10), (x,))


@pytest.mark.parametrize("op", OPS + [lambda x: augment.augment_real(x, "flip,diffaugment")],
                         ids=lambda op: op.__name__)
def test_channels_last_gives_the_values_of_contiguous_and_stays_channels_last(op):
    x = images(n=5, h=16, w=16)
    plain = seeded(op, 11)(x)
    last = seeded(op, 11)(x.contiguous(memory_format=torch.channels_last))
    assert torch.equal(last, plain)
    assert last.is_contiguous(memory_format=torch.channels_last) and plain.is_contiguous()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_keep_their_dtype_and_the_fp32_values(dtype):
    x = images(n=4, h=16, w=16)
    expected = seeded(augment.augment_real, 12)(x, "flip,diffaugment")
    low = x.to(dtype).requires_grad_(True)
    out = seeded(augment.augment_real, 12)(low, "flip,diffaugment")  # the same draws: float32 whatever x
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), expected, atol=0.05, rtol=0.02)
    out.float().sum().backward()
    assert low.grad.dtype == dtype and low.grad.abs().sum() > 0


@pytest.mark.parametrize("world", [2, 4])
def test_ranks_of_a_data_parallel_step_make_the_single_process_output(world):
    x = images(n=8, h=16, w=16)
    whole = seeded(augment.augment_real, 13)(x, "flip,diffaugment")
    parts = []
    for rank, rows in enumerate(x.chunk(world)):
        with DataParallel(rank=rank, world=world).sharding():
            parts.append(seeded(augment.augment_real, 13)(rows, "flip,diffaugment"))
    assert torch.equal(torch.cat(parts), whole)
    unsharded = seeded(augment.augment_real, 13)(x.chunk(world)[-1], "flip,diffaugment")  # draws as rank 0
    assert not torch.equal(unsharded, parts[-1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cuda_matches_the_ops_on_cpu_and_never_waits_for_the_host(dtype):
    x = images(n=8, h=16, w=16)
    params = dict(shift=torch.rand(8) - 0.5, saturation=torch.rand(8) * 2, contrast=torch.rand(8) + 0.5,
                  offset=torch.randint(-2, 3, (8, 2)), centre=torch.randint(0, 17, (8, 2)))

    def explicit(x, device):
        p = {k: v.to(device) for k, v in params.items()}
        x = augment.contrast(augment.saturation(augment.brightness(x, p["shift"]), p["saturation"]), p["contrast"])
        return augment.cutout(augment.translation(x, p["offset"]), p["centre"])

    cuda = x.to("cuda", dtype).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    tolerance = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=0.05, rtol=0.02)
    torch.testing.assert_close(explicit(cuda, "cuda").float().cpu(), explicit(x, "cpu"), **tolerance)
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = seeded(augment.augment_real, 14)(cuda, "flip,diffaugment")
        out.float().square().sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.dtype == dtype and out.is_contiguous(memory_format=torch.channels_last)
    assert cuda.grad.abs().sum() > 0
    parts = []
    for rank, rows in enumerate(cuda.detach().chunk(2)):
        with DataParallel(rank=rank, world=2).sharding():
            parts.append(seeded(augment.augment_real, 14)(rows, "flip,diffaugment"))
    # The same draws; only the CUDA reductions' order may depend on the batch size.
    torch.testing.assert_close(torch.cat(parts), out.detach(), **tolerance)
