"""Native gradient-penalty reduction against the reference: values, layouts, gradients to second order."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gantools.nn import FusedLeakyReLU
from gantools.ops import gradient_penalty, penalty_from_grad
from gantools.ops.gradient_penalty import _penalty_ref

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _grad(shape, dtype=torch.float64, device="cpu", layout="contiguous", scale=0.3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    g = (torch.randn(shape, generator=gen, dtype=torch.float64) * scale).to(device=device, dtype=dtype)
    if layout == "channels_last":
        g = g.contiguous(memory_format=torch.channels_last)
    elif layout == "strided":
        g = g.transpose(0, -1).contiguous().transpose(0, -1)  # batch dim innermost
    return g


def _check(g, weight, center, one_sided, tol):
    gn, gr = g.detach().clone().requires_grad_(), g.detach().clone().requires_grad_()
    p = penalty_from_grad(gn, weight, center, one_sided)
    ref = _penalty_ref(gr, weight, center, one_sided)
    assert p.shape == () and p.dtype == g.dtype
    torch.testing.assert_close(p, ref, atol=tol, rtol=tol, equal_nan=True)
    if g.shape[0]:
        p.backward()
        ref.backward()
        torch.testing.assert_close(gn.grad, gr.grad, atol=tol, rtol=tol)
        assert gn.grad.stride() == torch.empty_like(gr.grad).stride() or not g.is_contiguous()


CASES = [((1, 3, 4, 4), "contiguous"), ((5, 7), "contiguous"), ((3, 1), "contiguous"),
         ((2, 3, 5, 5), "channels_last"), ((4, 3, 6, 5), "strided"), ((0, 3), "contiguous"),
         ((3, 0), "contiguous"), ((2, 100003), "contiguous"), ((64, 3, 16, 16), "channels_last")]


@pytest.mark.parametrize("shape,layout", CASES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("center,one_sided", [(1.0, False), (0.0, False), (1.0, True)],
                         ids=["wgan-gp", "zero-centred", "one-sided"])
def test_native_matches_reference(native, shape, layout, dtype, center, one_sided):
    g = _grad(shape, dtype, layout=layout)
    _check(g, 10.0, center, one_sided, 1e-5 if dtype == torch.float32 else 1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_native_matches_reference_random_shapes(native, seed):
    gen = torch.Generator().manual_seed(200 + seed)
    dims = int(torch.randint(1, 5, (1,), generator=gen))
    shape = tuple(int(s) for s in torch.randint(1, 9, (dims,), generator=gen))
    scale = float(torch.rand((), generator=gen)) * 2
    _check(_grad(shape, scale=scale, seed=seed), float(torch.rand((), generator=gen)) * 20, 1.0, bool(seed % 2),
           1e-12)


def test_zero_gradient_rows(native):
    g = _grad((3, 2, 2, 2))
    g[1] = 0
    _check(g, 10.0, 1.0, False, 1e-12)
    _check(g, 10.0, 0.0, False, 1e-12)


@pytest.mark.parametrize("center,one_sided,scale", [(1.0, False, 0.3), (0.0, False, 0.3), (1.0, True, 0.3),
                                                    (1.0, True, 0.05)], ids=["wgan-gp", "zero", "one-sided", "inactive"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_gradcheck_and_gradgradcheck(native, center, one_sided, scale, layout):
    g = _grad((3, 2, 3, 2), scale=scale, layout=layout).requires_grad_()

    def fn(g):
        return penalty_from_grad(g, 7.0, center, one_sided)

    assert torch.autograd.gradcheck(fn, (g,))
    assert torch.autograd.gradgradcheck(fn, (g,))


def test_opcheck(native):
    for layout in ("contiguous", "channels_last", "strided"):
        g = _grad((4, 3, 5, 6), torch.float32, layout=layout)
        torch.library.opcheck(torch.ops.gantools.gradient_penalty.default, (g.requires_grad_(), 10.0, 1.0, False))
        _, norms = torch.ops.gantools.gradient_penalty(g.detach(), 10.0, 1.0, True)
        torch.library.opcheck(torch.ops.gantools.gradient_penalty_backward.default,
                              (torch.tensor(1.5, requires_grad=True), g.detach().requires_grad_(), norms, 10.0, 1.0,
                               True))


def test_argument_errors_name_the_argument(native):
    with pytest.raises(RuntimeError, match="grad must have a batch dim"):
        torch.ops.gantools.gradient_penalty(torch.tensor(1.0), 10.0, 1.0, False)
    with pytest.raises(RuntimeError, match="weight must be finite"):
        torch.ops.gantools.gradient_penalty(torch.randn(2, 3), float("inf"), 1.0, False)
    g = torch.randn(2, 3)
    with pytest.raises(RuntimeError, match="norms must have shape"):
        torch.ops.gantools.gradient_penalty_backward(torch.tensor(1.0), g, torch.ones(3), 10.0, 1.0, False)
    with pytest.raises(RuntimeError, match="grad_output must hold one element"):
        torch.ops.gantools.gradient_penalty_backward(torch.ones(2), g, torch.ones(2), 10.0, 1.0, False)


def _critic(seed):
    torch.manual_seed(seed)
    critic = nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1, bias=False), FusedLeakyReLU(8),
                         nn.Conv2d(8, 16, 4, 2, 1, bias=False), FusedLeakyReLU(16),
                         nn.Flatten(), nn.Linear(16 * 2 * 2, 1)).double()
    with torch.no_grad():
        critic[-1].weight.mul_(40.0)  # input-gradient norms around 1, so both sides of the gap occur
    return critic


def _penalty_and_grads(monkeypatch, backend, one_sided):
    monkeypatch.setenv("GANTOOLS_OPS", backend)
    critic = _critic(0)
    real, fake = torch.randn(5, 3, 8, 8, dtype=torch.float64), torch.randn(5, 3, 8, 8, dtype=torch.float64)
    torch.manual_seed(1)  # the same interpolation weights for both backends
    penalty = gradient_penalty(critic, real, fake, weight=10.0, center=1.0, one_sided=one_sided)
    penalty.backward()
    return penalty.detach(), [p.grad for p in critic.parameters()]


@pytest.mark.parametrize("one_sided", [False, True])
def test_gradient_penalty_native_matches_reference_through_a_critic(native, monkeypatch, one_sided):
    p_native, g_native = _penalty_and_grads(monkeypatch, "native", one_sided)
    p_ref, g_ref = _penalty_and_grads(monkeypatch, "reference", one_sided)
    torch.testing.assert_close(p_native, p_ref, atol=1e-12, rtol=1e-12)
    assert p_native > 0
    # The head's bias leaves the input gradient unchanged: no gradient on either backend.
    assert g_native[-1] is None and g_ref[-1] is None
    # The fused activations' biases only move the kinks, so the penalty's gradient for them
    # is zero: the reference materialises the zeros, the native op leaves them out.
    params = list(_critic(0).parameters())
    for a, b, p in zip(g_native[:-1], g_ref[:-1], params[:-1]):
        a = torch.zeros_like(p) if a is None else a
        b = torch.zeros_like(p) if b is None else b
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)
    # Parameters: conv, fused bias, conv, fused bias, linear weight, linear bias.
    assert g_native[1] is None and g_native[3] is None
    assert not g_ref[1].any() and not g_ref[3].any()


class _CountGrads(torch.autograd.Function):
    """Identity that counts the gradients reaching it (None when there is none)."""
    seen: list = []

    @staticmethod
    def forward(ctx, x):
        ctx.set_materialize_grads(False)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        _CountGrads.seen.append(grad)
        return grad


class _Probe(nn.Module):
    def forward(self, x):
        return _CountGrads.apply(x)


@pytest.mark.parametrize("backend,zeros_sent", [("native", False), ("reference", True)])
def test_second_backward_sends_no_zeros_through_the_forward_activations(native, monkeypatch,
                                                                       backend, zeros_sent):
    # The input gradient depends on the forward activations only through the leaky ReLU's
    # kinks (derivative zero). The native op says "no gradient" there, so the penalty's
    # backward runs no pass of zeros back through the critic's convolutions; the reference
    # (PyTorch's own leaky_relu_backward) sends explicit zeros.
    monkeypatch.setenv("GANTOOLS_OPS", backend)
    critic = _critic(0)
    critic.insert(2, _Probe())  # between the first activation and the second convolution
    real, fake = torch.randn(3, 3, 8, 8, dtype=torch.float64), torch.randn(3, 3, 8, 8, dtype=torch.float64)
    _CountGrads.seen = []
    gradient_penalty(critic, real, fake).backward()
    first_order, *second = _CountGrads.seen  # autograd.grad reaches the probe once
    assert first_order is not None and first_order.abs().sum() > 0
    defined = [g for g in second if g is not None]
    if zeros_sent:
        assert defined and all(not g.any() for g in defined)
    else:
        assert not defined


@CUDA
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("shape,layout", [((64, 3, 64, 64), "contiguous"), ((3, 5, 7, 9), "channels_last"),
                                          ((1, 1000001), "contiguous"), ((7, 3), "strided"), ((0, 4), "contiguous")],
                         ids=str)
def test_cuda_matches_reference(native, dtype, shape, layout):
    g = _grad(shape, dtype, device="cuda", layout=layout, scale=0.5 / max(1, shape[-1]) ** 0.5)
    gn = g.detach().clone().requires_grad_()
    p = penalty_from_grad(gn, 10.0, 1.0, False)
    ref = _penalty_ref(g.double(), 10.0, 1.0, False)
    tol = {torch.float16: 1e-2, torch.bfloat16: 3e-2, torch.float32: 1e-5, torch.float64: 1e-12}[dtype]
    torch.testing.assert_close(p.double(), ref, atol=tol, rtol=tol, equal_nan=True)
    if shape[0]:
        p.backward()
        gr = g.double().requires_grad_()
        _penalty_ref(gr, 10.0, 1.0, False).backward()
        torch.testing.assert_close(gn.grad.double(), gr.grad, atol=tol, rtol=tol)


@CUDA
def test_cuda_gradgradcheck_and_opcheck(native):
    g = _grad((3, 2, 3, 2), device="cuda", layout="channels_last").requires_grad_()
    assert torch.autograd.gradcheck(lambda g: penalty_from_grad(g, 7.0, 1.0, True), (g,))
    assert torch.autograd.gradgradcheck(lambda g: penalty_from_grad(g, 7.0, 1.0, False), (g,))
    torch.library.opcheck(torch.ops.gantools.gradient_penalty.default, (g, 10.0, 1.0, False))


# The CUDA kernels' paths: several blocks per sample (few large samples), per-sample sizes that
# are not a multiple of a 16-byte pack (rows then start off a 16-byte boundary: element-wise head
# and tail), one element too few for a pack, more samples than a grid's y limit (looped over),
# channels_last, and inputs that start one element past their allocation ("offset": the
# gradient op then runs element-wise, as its output is aligned).
CUDA_PATHS = [((2, 3, 256, 256), "contiguous"), ((2, 1 << 22), "contiguous"), ((3, 100003), "contiguous"),
              ((4, 5, 33, 31), "channels_last"), ((64, 64, 16, 16), "channels_last"), ((1, 7), "contiguous"),
              ((70000, 5), "contiguous"), ((4, 3, 17, 19), "offset"), ((16, 1000), "offset")]


def _cuda_grad(shape, dtype, layout):
    """Per-sample norms spread over 0.5..1.5 (so the gap has both signs), one sample all zeros."""
    per_sample = math.prod(shape[1:])
    g = _grad(shape, torch.float64, scale=1.0 / per_sample ** 0.5)
    g = g * torch.linspace(0.5, 1.5, shape[0], dtype=torch.float64).view(-1, *[1] * (len(shape) - 1))
    if shape[0] > 2:
        g[1] = 0
    g = g.to(device="cuda", dtype=dtype)
    if layout == "channels_last":
        return g.contiguous(memory_format=torch.channels_last)
    if layout == "offset":
        buf = torch.empty(g.numel() + 1, device="cuda", dtype=dtype)
        return buf[1:].view(shape).copy_(g)
    return g


@CUDA
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("shape,layout", CUDA_PATHS, ids=str)
def test_cuda_kernel_paths_match_reference(native, dtype, shape, layout):
    g = _cuda_grad(shape, dtype, layout)
    assert layout != "offset" or g.data_ptr() % 16
    penalty, norms = torch.ops.gantools.gradient_penalty(g, 10.0, 1.0, False)
    ref_norms = g.double().flatten(1).norm(dim=1)
    wide = dtype == torch.float64
    torch.testing.assert_close(norms.double(), ref_norms, rtol=1e-12 if wide else 1e-5, atol=1e-12 if wide else 1e-6)
    tol = {torch.float16: 1e-2, torch.bfloat16: 3e-2, torch.float32: 1e-5, torch.float64: 1e-12}[dtype]
    torch.testing.assert_close(penalty.double(), _penalty_ref(g.double(), 10.0, 1.0, False), atol=tol, rtol=tol)
    upstream = torch.tensor(0.7, device="cuda", dtype=dtype)
    out = torch.ops.gantools.gradient_penalty_backward(upstream, g, norms, 10.0, 1.0, False)
    gr = g.double().requires_grad_()
    (_penalty_ref(gr, 10.0, 1.0, False) * upstream.double()).backward()
    assert out.dtype == dtype and out.shape == g.shape
    torch.testing.assert_close(out.double(), gr.grad, atol=tol, rtol=tol)


@CUDA
def test_cuda_graph_replay_matches_the_reference(native):
    # The trainer's --cuda-graphs captures the penalty's forward and backward: nothing in them may
    # wait for the host, and a replay must compute on whatever the static input then holds.
    static = _grad((8, 3, 32, 32), torch.float32, device="cuda").requires_grad_()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            torch.autograd.grad(penalty_from_grad(static), static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        penalty = penalty_from_grad(static)
        (d_static,) = torch.autograd.grad(penalty, static)
    fresh = _grad((8, 3, 32, 32), torch.float32, device="cuda", scale=0.1, seed=5)
    with torch.no_grad():
        static.copy_(fresh)
    graph.replay()
    ref_g = fresh.clone().requires_grad_()
    ref = _penalty_ref(ref_g, 10.0, 1.0, False)
    ref.backward()
    torch.testing.assert_close(penalty, ref.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(d_static, ref_g.grad, atol=1e-5, rtol=1e-5)
