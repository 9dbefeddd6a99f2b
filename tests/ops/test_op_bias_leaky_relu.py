"""Native bias_leaky_relu against the reference: values, layouts, dtypes, gradients to second order."""
from __future__ import annotations

import math

import pytest
import torch

from gantools.nn import FusedLeakyReLU
from gantools.ops import bias_leaky_relu
from gantools.ops._layout import kernel_memory_format
from gantools.ops.bias_leaky_relu import _ref

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _layout(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    if kind == "strided":  # every other element of the last dim: not dense in any layout
        return torch.cat([x, x], dim=-1)[..., ::2]
    return x


def _inputs(shape, dtype, device="cpu", bias=True, layout="contiguous", seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
    b = torch.randn(shape[1], generator=gen, dtype=torch.float64).to(device=device, dtype=dtype) if bias else None
    return _layout(x, layout), b


def _check_against_ref(x, b, slope, gain, atol, rtol):
    xn, xr = x.detach().clone().requires_grad_(), x.detach().clone().requires_grad_()
    bn = None if b is None else b.detach().clone().requires_grad_()
    br = None if b is None else b.detach().clone().requires_grad_()
    y = bias_leaky_relu(xn, bn, slope, gain)
    ref = _ref(xr, br, slope, gain)
    torch.testing.assert_close(y, ref.to(y.dtype), atol=atol, rtol=rtol)
    assert y.dtype == x.dtype and y.shape == x.shape
    assert y.is_contiguous(memory_format=kernel_memory_format(x))
    if y.numel():
        gy = torch.randn_like(ref)
        y.backward(gy.to(y.dtype))
        ref.backward(gy)
        torch.testing.assert_close(xn.grad, xr.grad, atol=atol, rtol=rtol)
        if b is not None:
            torch.testing.assert_close(bn.grad, br.grad, atol=atol * 10, rtol=rtol)


SHAPES = [(1, 3, 5, 7), (2, 4), (3, 5, 1, 1), (0, 3, 4, 4), (2, 0, 3, 3), (2, 3, 4, 5, 6), (1, 1, 1, 1),
          (4, 17, 9, 9), (2, 33)]


# channels_last is a 4-D layout: only 4-D shapes take it.
CASES = [(shape, layout) for shape in SHAPES for layout in ("contiguous", "channels_last", "strided")
         if layout != "channels_last" or len(shape) == 4]


@pytest.mark.parametrize("shape,layout", CASES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_native_matches_reference(native, shape, layout, dtype, bias):
    x, b = _inputs(shape, dtype, bias=bias, layout=layout)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    _check_against_ref(x, b, 0.2, math.sqrt(2), tol, tol)


@pytest.mark.parametrize("seed", range(6))
def test_native_matches_reference_random_shapes(native, seed):
    gen = torch.Generator().manual_seed(100 + seed)
    dims = int(torch.randint(2, 6, (1,), generator=gen))
    shape = tuple(int(s) for s in torch.randint(1, 12, (dims,), generator=gen))
    layout = "channels_last" if dims == 4 and seed % 2 else "contiguous"
    slope = float(torch.rand((), generator=gen))
    gain = float(torch.rand((), generator=gen)) * 3 - 1  # negative gains too
    x, b = _inputs(shape, torch.float32, layout=layout, seed=seed)
    _check_against_ref(x, b, slope, gain, 1e-5, 1e-5)


@pytest.mark.parametrize("slope", [0.0, 0.2, 1.0])
def test_slopes_including_relu(native, slope):
    x, b = _inputs((3, 8, 6, 6), torch.float64)
    _check_against_ref(x, b, slope, 1.0, 1e-12, 1e-12)


def test_large_tensor_spans_parallel_chunks(native):
    x, b = _inputs((3, 70, 33, 35), torch.float32)
    _check_against_ref(x, b, 0.2, 1.0, 1e-5, 1e-5)
    x, b = _inputs((3, 70, 33, 35), torch.float32, layout="channels_last")
    _check_against_ref(x, b, 0.2, 1.0, 1e-5, 1e-5)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("slope", [0.0, 0.2])
def test_gradcheck_and_gradgradcheck(native, layout, bias, slope):
    x, b = _inputs((2, 3, 4, 5), torch.float64, bias=bias, layout=layout, seed=3)
    inputs = (x.requires_grad_(),) + ((b.requires_grad_(),) if bias else ())

    def fn(x, b=None):
        return bias_leaky_relu(x, b, slope, 1.5)

    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


def test_double_backward_stays_fused(native):
    x, b = _inputs((2, 3, 4, 4), torch.float64)
    x.requires_grad_()
    y = bias_leaky_relu(x, b)
    v = torch.ones_like(y, requires_grad=True)
    (gx,) = torch.autograd.grad(y, x, v, create_graph=True)
    assert gx.grad_fn.name().endswith("gantools::(anonymous namespace)::BiasLeakyReluGradFunction>")
    # Its gradient (here in the upstream gradient v) is the same fused op, to any order.
    (gv,) = torch.autograd.grad(gx, v, torch.full_like(gx, 2.0), create_graph=True)
    assert gv.grad_fn.name() == gx.grad_fn.name()
    torch.testing.assert_close(gv, 2.0 * torch.where(y > 0, 1.0, 0.2).double())


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_opcheck(native, layout):
    x, b = _inputs((2, 3, 4, 5), torch.float32, layout=layout)
    torch.library.opcheck(torch.ops.gantools.bias_leaky_relu.default,
                          (x.requires_grad_(), b.requires_grad_(), 0.2, 1.4))
    torch.library.opcheck(torch.ops.gantools.bias_leaky_relu.default, (x, None, 0.0, 1.0))
    out = torch.ops.gantools.bias_leaky_relu(x.detach(), b.detach(), 0.2, 1.4)
    torch.library.opcheck(torch.ops.gantools.bias_leaky_relu_backward.default,
                          (torch.randn_like(out).requires_grad_(), out, 0.2, 1.4))


def test_argument_errors_name_the_argument(native):
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(RuntimeError, match="bias must have shape"):
        torch.ops.gantools.bias_leaky_relu(x, torch.zeros(4), 0.2, 1.0)
    with pytest.raises(RuntimeError, match="negative_slope must be >= 0"):
        torch.ops.gantools.bias_leaky_relu(x, None, -0.1, 1.0)
    with pytest.raises(RuntimeError, match="x must have a channel dim"):
        torch.ops.gantools.bias_leaky_relu(torch.randn(5), torch.zeros(5), 0.2, 1.0)
    with pytest.raises(RuntimeError, match="out has shape"):
        torch.ops.gantools.bias_leaky_relu_backward(torch.randn(2, 3), torch.randn(3, 2), 0.2, 1.0)


def test_negative_slope_and_cpu_half_use_the_reference(native):
    x, b = _inputs((2, 3, 4, 4), torch.float32)
    torch.testing.assert_close(bias_leaky_relu(x, b, -0.3), _ref(x, b, -0.3, 1.0))
    for dtype in (torch.bfloat16, torch.float16):
        y = bias_leaky_relu(x.to(dtype), b.to(dtype))
        assert y.dtype == dtype
        torch.testing.assert_close(y, _ref(x.to(dtype), b.to(dtype), 0.2, 1.0))


def test_fused_leaky_relu_module(native):
    layer = FusedLeakyReLU(3, negative_slope=0.1, gain=2.0)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.5, -1.0, 0.0]))
    x = torch.randn(2, 3, 4, 4)
    y = layer(x)
    torch.testing.assert_close(y, _ref(x, layer.bias, 0.1, 2.0))
    y.sum().backward()
    assert layer.bias.grad is not None and layer.bias.grad.shape == (3,)
    assert "channels=3" in repr(layer) and FusedLeakyReLU(4, bias=False).bias is None


@CUDA
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("shape,layout", [(s, lay) for s in [(4, 17, 9, 9), (1, 64, 8, 8), (3, 5, 1, 1), (0, 3, 4, 4)]
                                          for lay in ("contiguous", "channels_last", "strided")]
                         + [((7, 33), "contiguous"), ((7, 33), "strided"), ((2, 6, 3, 3, 3), "contiguous")], ids=str)
def test_cuda_matches_reference(native, dtype, layout, shape):
    x, b = _inputs(shape, dtype, device="cuda", layout=layout)
    tol = {torch.float16: 2e-3, torch.bfloat16: 2e-2, torch.float32: 1e-5, torch.float64: 1e-12}[dtype]
    # The kernel rounds once from float; the reference rounds after each step, so
    # compare with the reference run in float64.
    xn = x.detach().clone().requires_grad_()
    y = bias_leaky_relu(xn, b, 0.2, math.sqrt(2))
    ref = _ref(x.double(), b.double(), 0.2, math.sqrt(2))
    torch.testing.assert_close(y.double(), ref, atol=tol, rtol=tol)
    assert y.is_contiguous(memory_format=kernel_memory_format(x))
    if y.numel():
        gy = torch.randn_like(y)
        y.backward(gy)
        factor = torch.where(ref > 0, torch.ones_like(ref), torch.full_like(ref, 0.2)) * math.sqrt(2)
        torch.testing.assert_close(xn.grad.double(), gy.double() * factor, atol=tol, rtol=tol)


@CUDA
def test_cuda_mixed_precision_bias(native):
    x = torch.randn(4, 8, 5, 5, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8, device="cuda", requires_grad=True)
    y = bias_leaky_relu(x, b)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), _ref(x.float(), b, 0.2, 1.0), atol=2e-2, rtol=2e-2)
    y.float().sum().backward()
    assert b.grad.dtype == torch.float32


@CUDA
def test_cuda_gradcheck_and_opcheck(native):
    x, b = _inputs((2, 3, 4, 5), torch.float64, device="cuda", layout="channels_last")
    inputs = (x.requires_grad_(), b.requires_grad_())
    assert torch.autograd.gradcheck(lambda x, b: bias_leaky_relu(x, b, 0.2, 1.5), inputs)
    assert torch.autograd.gradgradcheck(lambda x, b: bias_leaky_relu(x, b, 0.2, 1.5), inputs)
    torch.library.opcheck(torch.ops.gantools.bias_leaky_relu.default, (x, b, 0.2, 1.4))
