"""The training step's context: explicit, nested, restored; rows of the global draw."""
from __future__ import annotations

import pytest
import torch

from gantools import stepcontext


def test_default_outside_a_step_and_restored_after_one():
    assert stepcontext.current() == stepcontext.StepContext(rank=0, world=1, loss_scale=None)
    with stepcontext.step(rank=1, world=2) as outer:
        assert outer is stepcontext.current() and (outer.rank, outer.world, outer.loss_scale) == (1, 2, None)
        with stepcontext.step(loss_scale=1024.0) as inner:  # nested: only the named fields change
            assert (inner.rank, inner.world, inner.loss_scale) == (1, 2, 1024.0)
        assert stepcontext.current().loss_scale is None
    assert stepcontext.current() == stepcontext.StepContext()


def test_restored_when_the_step_raises():
    with pytest.raises(RuntimeError):
        with stepcontext.step(loss_scale=8.0):
            raise RuntimeError("boom")
    assert stepcontext.current().loss_scale is None


@pytest.mark.parametrize("world", [2, 4])
def test_rows_of_every_rank_make_the_single_process_draw(world):
    draw = lambda n: torch.randn(n, 2)  # noqa: E731
    torch.manual_seed(3)
    whole = draw(12)
    parts = []
    for rank in range(world):
        torch.manual_seed(3)
        parts.append(stepcontext.StepContext(rank=rank, world=world).rows(draw, 12 // world))
    assert torch.equal(torch.cat(parts), whole)  # exact: the same generator makes the same draws


def test_penalty_reads_the_loss_scale_of_the_context():
    from gantools import ops

    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    real, fake, eps = torch.randn(5, 3), torch.randn(5, 3), torch.rand(5)
    plain = ops.gradient_penalty(critic, real, fake, eps=eps)
    with stepcontext.step(loss_scale=2.0 ** 10):  # fp32: scaling and unscaling leave the value
        scaled = ops.gradient_penalty(critic, real, fake, eps=eps)
    torch.testing.assert_close(scaled, plain)
    x_hat = torch.lerp(real, fake, eps[:, None]).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat)
    torch.testing.assert_close(plain, 10.0 * (grad.norm(dim=1) - 1).pow(2).mean())
