"""Native layer_norm_leaky_relu against the reference: values, layouts, dtypes, gradients to third order."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from gantools.nn import FusedLayerNormLeakyReLU, FusedLeakyReLU, load_unfused_layer_norms
from gantools.ops import gradient_penalty, layer_norm_leaky_relu
from gantools.ops._layout import kernel_memory_format
from gantools.ops.layer_norm_leaky_relu import _ref

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
OPS = torch.ops.gantools


def _layout(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    if kind == "strided":  # every other element of the last dim: not dense in any layout
        return torch.cat([x, x], dim=-1)[..., ::2]
    return x


def _inputs(shape, dtype=torch.float64, device="cpu", layout="contiguous", seed=0, offset=0.0):
    """x (with a per-sample offset, to exercise the centring), weight around 1, bias around 0."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 2 + offset
    w = 1 + 0.5 * torch.randn(shape[1], generator=gen, dtype=torch.float64)
    b = 0.5 * torch.randn(shape[1], generator=gen, dtype=torch.float64)
    return (_layout(x.to(device=device, dtype=dtype), layout), w.to(device=device, dtype=dtype),
            b.to(device=device, dtype=dtype))


def _leaves(*tensors):
    return [t.detach().clone().requires_grad_() for t in tensors]


def _off_kink(x, w, b, margin=1e-3):
    """1 where the activation's input is clear of 0, else 0: an upstream gradient of 0 there keeps
    float32 rounding from putting an element on the other side of the kink in one backend only."""
    z = torch.group_norm(x.double(), 1, w.double(), b.double(), 1e-5)
    return (z.abs() > margin).to(x.dtype)


def _check_against_ref(x, w, b, slope, gain, tol):
    """Forward and first-order gradients (x, weight, bias) of the native op agree with the
    reference run in float64 (in float32, ATen's GroupNorm is the less accurate of the two)."""
    xn, wn, bn = _leaves(x, w, b)
    xr, wr, br = _leaves(x.double(), w.double(), b.double())
    y = layer_norm_leaky_relu(xn, wn, bn, slope, gain)
    ref = _ref(xr, wr, br, slope, gain, 1e-5)
    torch.testing.assert_close(y.double(), ref, atol=tol, rtol=tol)
    assert y.dtype == x.dtype and y.shape == x.shape
    assert y.is_contiguous(memory_format=kernel_memory_format(x))
    gy = torch.randn_like(ref) * _off_kink(x, w, b)
    y.backward(gy.to(y.dtype))
    if x.numel() == 0:  # nothing to reduce: no gradient for weight and bias (GroupNorm gives NaN there)
        assert not wn.grad.any() and not bn.grad.any()
        return
    ref.backward(gy)
    for got, want in [(xn.grad, xr.grad), (wn.grad, wr.grad), (bn.grad, br.grad)]:
        assert got.dtype == x.dtype
        torch.testing.assert_close(got.double(), want, atol=tol * 10, rtol=tol)


SHAPES = [(2, 3, 4, 5), (3, 8), (2, 5, 7), (1, 1, 1, 1), (0, 3, 4, 4), (2, 3, 4, 5, 3), (4, 17, 9, 9),
          (3, 64, 4, 4), (2, 1, 6, 6), (5, 9, 1, 1)]
CASES = [(shape, layout) for shape in SHAPES for layout in ("contiguous", "channels_last", "strided")
         if layout != "channels_last" or len(shape) == 4]


@pytest.mark.parametrize("shape,layout", CASES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_native_matches_reference(native, shape, layout, dtype):
    x, w, b = _inputs(shape, dtype, layout=layout, offset=3.0)
    _check_against_ref(x, w, b, 0.2, math.sqrt(2), 2e-5 if dtype == torch.float32 else 1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_native_matches_reference_random_shapes(native, seed):
    gen = torch.Generator().manual_seed(100 + seed)
    dims = int(torch.randint(2, 6, (1,), generator=gen))
    shape = tuple(int(s) for s in torch.randint(1, 12, (dims,), generator=gen))
    layout = "channels_last" if dims == 4 and seed % 2 else "contiguous"
    slope = float(torch.rand((), generator=gen)) * 1.5 - 0.25  # negative and > 1 slopes too
    gain = float(torch.rand((), generator=gen)) * 3 - 1  # negative gains too
    x, w, b = _inputs(shape, torch.float32, layout=layout, seed=seed)
    _check_against_ref(x, w, b, slope, gain, 2e-5)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_large_samples_and_a_large_mean(native, layout):
    # 80,850 elements per sample (several summing blocks) and a mean far from zero.
    x, w, b = _inputs((3, 70, 33, 35), torch.float32, layout=layout, offset=100.0)
    _check_against_ref(x, w, b, 0.2, 1.0, 1e-4)


def _second_order(fn, x, w, b, cotangents):
    """Gradient of <first-order gradients, cotangents> with respect to (grad, x, weight)."""
    x, w, b = _leaves(x, w, b)
    g = torch.randn_like(x).requires_grad_()
    first = torch.autograd.grad(fn(x, w, b), (x, w, b), g, create_graph=True)
    inner = sum((f * c).sum() for f, c in zip(first, cotangents) if c is not None)
    return torch.autograd.grad(inner, (g, x, w))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("which", ["x", "x,w,b", "w", "b"])
def test_double_backward_matches_reference(native, layout, which):
    x, w, b = _inputs((3, 5, 4, 6), layout=layout, seed=4, offset=1.0)
    gen = torch.Generator().manual_seed(9)
    cot = [torch.randn(t.shape, generator=gen, dtype=t.dtype) if name in which.split(",") else None
           for name, t in zip("xwb", (x, w, b))]
    results = []
    for fn in (lambda x, w, b: layer_norm_leaky_relu(x, w, b, 0.2, 1.3),
               lambda x, w, b: _ref(x, w, b, 0.2, 1.3, 1e-5)):
        torch.manual_seed(0)  # the same upstream gradient g for both
        results.append(_second_order(fn, x, w, b, cot))
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("slope,gain", [(0.2, 1.0), (0.0, 2.0), (-0.3, -1.5)])
def test_gradcheck_and_gradgradcheck(native, layout, slope, gain):
    x, w, b = _inputs((2, 3, 4, 5), layout=layout, seed=3)

    def fn(x, w, b):
        return layer_norm_leaky_relu(x, w, b, slope, gain)

    inputs = tuple(_leaves(x, w, b))
    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)
    # The input alone (a penalty's autograd.grad asks for no parameter gradients).
    assert torch.autograd.gradgradcheck(lambda x: fn(x, w, b), inputs[:1])


def test_gradgradcheck_two_dim_input(native):
    x, w, b = _inputs((4, 7), seed=5)
    assert torch.autograd.gradgradcheck(lambda x, w, b: layer_norm_leaky_relu(x, w, b, 0.1, 1.2),
                                        tuple(_leaves(x, w, b)))


def _op_names(fn) -> set[str]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {event.name for event in prof.events()}


def test_double_backward_stays_fused(native):
    x, w, b = _leaves(*_inputs((2, 3, 4, 4)))
    g = torch.randn_like(x, requires_grad=True)
    gx, = torch.autograd.grad(layer_norm_leaky_relu(x, w, b), x, g, create_graph=True)
    assert gx.grad_fn.name().endswith("LayerNormLeakyReluGradFunction>")
    names = _op_names(lambda: torch.autograd.grad(gx.sum(), (g, x, w)))
    assert "gantools::layer_norm_leaky_relu_double_backward" in names
    assert not any(name in names for name in ("aten::mean", "aten::rsqrt", "aten::where"))


def test_third_order_through_the_composite_double_backward(native):
    # A second backward with create_graph runs the ATen composite, which is differentiable again.
    x, w, b = _inputs((2, 3, 3, 2), seed=7)
    results = []
    for fn in (layer_norm_leaky_relu, lambda x, w, b: _ref(x, w, b, 0.2, 1.0, 1e-5)):
        xs, ws, bs = _leaves(x, w, b)
        g = torch.ones_like(xs, requires_grad=True)
        gx, gw = torch.autograd.grad(fn(xs, ws, bs), (xs, ws), g, create_graph=True)
        d_x, d_g = torch.autograd.grad((gx ** 2).sum() + gw.sum(), (xs, g), create_graph=True)
        results.append(torch.autograd.grad((d_x ** 2).sum() + d_g.sum(), (xs, ws)))
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)
    xs, ws, bs = _leaves(x, w, b)
    assert torch.autograd.gradgradcheck(
        lambda x, g: torch.autograd.grad(layer_norm_leaky_relu(x, ws, bs), x, g, create_graph=True)[0],
        (xs, torch.randn_like(xs, requires_grad=True)))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_opcheck(native, layout):
    x, w, b = _inputs((2, 3, 4, 5), torch.float32, layout=layout)
    opts = (0.2, 1.4, 1e-5)
    torch.library.opcheck(OPS.layer_norm_leaky_relu.default, (x.requires_grad_(), w.requires_grad_(), b, *opts))
    x, w, b = x.detach(), w.detach(), b.detach()
    _, mean, rstd = OPS.layer_norm_leaky_relu(x, w, b, *opts)
    g = torch.randn_like(x)
    for affine in (True, False):
        torch.library.opcheck(OPS.layer_norm_leaky_relu_backward.default,
                              (g.requires_grad_(), x, w, b, mean, rstd, *opts, affine))
    gg, ggw = torch.randn_like(x), torch.randn_like(w)
    for gg_w, gg_b in [(ggw, torch.randn_like(b)), (None, None)]:
        torch.library.opcheck(OPS.layer_norm_leaky_relu_double_backward.default,
                              (gg, gg_w, gg_b, g.detach(), x, w, b, mean, rstd, 0.2, 1.4))


def test_argument_errors_name_the_argument(native):
    x, w, b = _inputs((2, 3, 4, 4), torch.float32)
    forward = OPS.layer_norm_leaky_relu
    with pytest.raises(RuntimeError, match="weight must have shape"):
        forward(x, torch.ones(4), b, 0.2, 1.0, 1e-5)
    with pytest.raises(RuntimeError, match="bias must be a floating-point tensor"):
        forward(x, w, torch.zeros(3, dtype=torch.int64), 0.2, 1.0, 1e-5)
    with pytest.raises(RuntimeError, match="x must have a channel dim"):
        forward(torch.randn(5), torch.ones(5), torch.zeros(5), 0.2, 1.0, 1e-5)
    with pytest.raises(RuntimeError, match="eps must be finite and >= 0"):
        forward(x, w, b, 0.2, 1.0, -1.0)
    _, mean, rstd = forward(x, w, b, 0.2, 1.0, 1e-5)
    backward = OPS.layer_norm_leaky_relu_backward
    with pytest.raises(RuntimeError, match="grad has shape"):
        backward(x[:1], x, w, b, mean, rstd, 0.2, 1.0, 1e-5, True)
    with pytest.raises(RuntimeError, match="rstd must have shape"):
        backward(x, x, w, b, mean, rstd[:1], 0.2, 1.0, 1e-5, True)
    with pytest.raises(RuntimeError, match="mean must be Float"):
        backward(x, x, w, b, mean.double(), rstd, 0.2, 1.0, 1e-5, True)
    with pytest.raises(RuntimeError, match="grad_grad_weight must have shape"):
        OPS.layer_norm_leaky_relu_double_backward(x, torch.ones(2), None, x, x, w, b, mean, rstd, 0.2, 1.0)


def test_cpu_half_and_bfloat16_use_the_reference(native):
    x, w, b = _inputs((2, 3, 4, 4), torch.float32)
    for dtype in (torch.bfloat16, torch.float16):
        y = layer_norm_leaky_relu(x.to(dtype), w.to(dtype), b.to(dtype))
        assert y.dtype == dtype and y.grad_fn is None
        torch.testing.assert_close(y, _ref(x.to(dtype), w.to(dtype), b.to(dtype), 0.2, 1.0, 1e-5))


def test_undefined_gradients_stay_undefined(native):
    # Only grad_weight of the first-order gradients is differentiated: the gradient op's backward
    # gets no gradient for grad_x and grad_bias, and still matches the reference.
    x, w, b = _inputs((3, 4, 5), seed=2)
    results = []
    for fn in (layer_norm_leaky_relu, lambda x, w, b: _ref(x, w, b, 0.2, 1.0, 1e-5)):
        xs, ws, bs = _leaves(x, w, b)
        g = torch.randn_like(xs, generator=torch.Generator().manual_seed(1)).requires_grad_()
        gw, = torch.autograd.grad(fn(xs, ws, bs), ws, g, create_graph=True)
        results.append(torch.autograd.grad((gw ** 2).sum(), (g, xs)))
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)


def test_module_is_group_norm_then_leaky_relu(native):
    layer = FusedLayerNormLeakyReLU(6, negative_slope=0.1, gain=2.0)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    with torch.no_grad():
        layer.weight.uniform_(0.5, 1.5)
        layer.bias.uniform_(-0.5, 0.5)
    x = torch.randn(3, 6, 5, 5)
    y = layer(x)
    torch.testing.assert_close(y, _ref(x, layer.weight, layer.bias, 0.1, 2.0, 1e-5))
    y.sum().backward()
    assert layer.weight.grad.shape == layer.bias.grad.shape == (6,)
    assert "channels=6, negative_slope=0.1, gain=2.0" in repr(layer)


def _unfused_and_fused(slope=0.2):
    unfused = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), FusedLeakyReLU(4, slope), nn.Conv2d(4, 8, 3, bias=False),
                            nn.GroupNorm(1, 8), FusedLeakyReLU(8, slope, bias=False), nn.Dropout(0.0),
                            nn.Conv2d(8, 8, 3, bias=False), nn.GroupNorm(1, 8), FusedLeakyReLU(8, slope, bias=False))
    fused = load_unfused_layer_norms(nn.Sequential(
        nn.Conv2d(3, 4, 3, bias=False), FusedLeakyReLU(4, slope), nn.Conv2d(4, 8, 3, bias=False),
        FusedLayerNormLeakyReLU(8, slope), nn.Dropout(0.0), nn.Conv2d(8, 8, 3, bias=False),
        FusedLayerNormLeakyReLU(8, slope)))
    return unfused, fused


def test_checkpoints_of_the_unfused_layout_load(native):
    torch.manual_seed(0)
    unfused, fused = _unfused_and_fused()
    for module in unfused.modules():
        if isinstance(module, (nn.GroupNorm, FusedLeakyReLU)) and getattr(module, "bias", None) is not None:
            nn.init.normal_(module.bias)
            if isinstance(module, nn.GroupNorm):
                nn.init.normal_(module.weight, 1.0, 0.3)
    wrapped = nn.Sequential(fused)  # the hook acts at any prefix
    wrapped.load_state_dict({f"0.{key}": value for key, value in unfused.state_dict().items()})
    x = torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(fused(x), unfused(x))
    # Its own layout loads as it is; anything else is still refused.
    fused.load_state_dict(fused.state_dict())
    with pytest.raises(RuntimeError, match="Missing key"):
        fused.load_state_dict({key: value for key, value in unfused.state_dict().items() if key != "3.bias"})


def _tiny_critic(seed):
    torch.manual_seed(seed)
    critic = nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1, bias=False), FusedLeakyReLU(8),
                           nn.Conv2d(8, 16, 4, 2, 1, bias=False), FusedLayerNormLeakyReLU(16),
                           nn.Conv2d(16, 16, 3, 1, 1, bias=False), FusedLayerNormLeakyReLU(16),
                           nn.Flatten(), nn.Linear(16 * 2 * 2, 1)).double()
    with torch.no_grad():
        for module in critic:
            if isinstance(module, FusedLayerNormLeakyReLU):
                nn.init.normal_(module.weight, 1.0, 0.3)
                nn.init.normal_(module.bias, 0.0, 0.3)
        critic[-1].weight.mul_(10.0)  # input-gradient norms around 1
    return critic


def _critic_step(monkeypatch, backend, layout):
    monkeypatch.setenv("GANTOOLS_OPS", backend)
    critic = _tiny_critic(0).to(memory_format=layout)
    gen = torch.Generator().manual_seed(3)
    real, fake = (torch.randn(5, 3, 8, 8, generator=gen, dtype=torch.float64).contiguous(memory_format=layout)
                  for _ in range(2))
    torch.manual_seed(1)  # the same interpolation weights for both backends
    scores = critic(torch.cat([real, fake]))
    loss = scores[5:].mean() - scores[:5].mean() + gradient_penalty(critic, real, fake, weight=10.0)
    loss.backward()
    return loss.detach(), [torch.zeros_like(p) if p.grad is None else p.grad for p in critic.parameters()]


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last], ids=["nchw", "nhwc"])
def test_critic_with_gradient_penalty_matches_reference(native, monkeypatch, layout):
    # First order (the scores) and second order (the penalty on the input gradient) together.
    loss_native, grads_native = _critic_step(monkeypatch, "native", layout)
    loss_ref, grads_ref = _critic_step(monkeypatch, "reference", layout)
    torch.testing.assert_close(loss_native, loss_ref, atol=1e-10, rtol=1e-10)
    for got, want in zip(grads_native, grads_ref):
        torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)
    # Every parameter but the head's bias (it cancels between real and fake) gets a gradient.
    assert all(g.abs().sum() > 0 for g in grads_native[:-1])


@CUDA
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("shape,layout", [(s, lay) for s in [(4, 17, 9, 9), (2, 64, 8, 8), (3, 5, 1, 1), (0, 3, 4, 4)]
                                          for lay in ("contiguous", "channels_last", "strided")]
                         + [((7, 33), "contiguous"), ((3, 6, 40), "contiguous"), ((2, 6, 3, 3, 3), "contiguous")],
                         ids=str)
def test_cuda_matches_reference(native, dtype, shape, layout):
    x, w, b = _inputs(shape, dtype, device="cuda", layout=layout, offset=2.0)
    tol = {torch.float16: 1e-2, torch.bfloat16: 5e-2, torch.float32: 2e-5, torch.float64: 1e-10}[dtype]
    _check_against_ref(x, w, b, 0.2, math.sqrt(2), tol)


@CUDA
def test_cuda_double_backward_gradgradcheck_and_opcheck(native):
    x, w, b = _inputs((3, 5, 4, 6), device="cuda", layout="channels_last", seed=4)
    cot = [torch.randn_like(x), torch.randn_like(w), None]
    results = []
    for fn in (layer_norm_leaky_relu, lambda x, w, b: _ref(x, w, b, 0.2, 1.0, 1e-5)):
        torch.manual_seed(0)
        results.append(_second_order(fn, x, w, b, cot))
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)
    inputs = tuple(_leaves(*_inputs((2, 3, 4, 5), device="cuda", seed=3)))
    assert torch.autograd.gradgradcheck(lambda x, w, b: layer_norm_leaky_relu(x, w, b, 0.2, 1.5), inputs)
    torch.library.opcheck(OPS.layer_norm_leaky_relu.default, (*inputs, 0.2, 1.5, 1e-5))


@CUDA
def test_cuda_mixed_precision_weight(native):
    x = torch.randn(4, 8, 5, 5, device="cuda", dtype=torch.bfloat16)
    w = torch.ones(8, device="cuda", requires_grad=True)
    b = torch.zeros(8, device="cuda", requires_grad=True)
    y = layer_norm_leaky_relu(x, w, b)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), _ref(x.float(), w, b, 0.2, 1.0, 1e-5), atol=5e-2, rtol=5e-2)
    y.float().sum().backward()
    assert w.grad.dtype == b.grad.dtype == torch.float32
