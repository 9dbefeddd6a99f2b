// bias_leaky_relu: CUDA kernels (16-byte vector accesses; fp16/bf16 computed in float).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <type_traits>

#include "../bias_leaky_relu.h"
#include "../common.h"
#include "vec.cuh"

namespace gantools {
namespace {

// Each thread maps VEC consecutive elements. The channel of element i is
// (i / run) % channels; it is computed once per pack and stepped from there,
// which covers both layouts (run = spatial size, or 1 for channels-last).
template <typename scalar_t, int VEC, typename index_t>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(const scalar_t* __restrict__ x, const at::opmath_type<scalar_t>* __restrict__ bias,
                   scalar_t* __restrict__ y, index_t numel, index_t run, index_t channels,
                   at::opmath_type<scalar_t> gain, at::opmath_type<scalar_t> neg_gain) {
  using opmath_t = at::opmath_type<scalar_t>;
  const index_t start = (static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x) * VEC;
  if (start >= numel) {
    return;
  }
  index_t chunk = start / run;
  index_t offset = start - chunk * run;
  index_t c = bias ? chunk % channels : 0;
  if (start + VEC <= numel) {
    const Pack<scalar_t, VEC> in = *reinterpret_cast<const Pack<scalar_t, VEC>*>(x + start);
    Pack<scalar_t, VEC> out;
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const opmath_t v = static_cast<opmath_t>(in.v[k]) + (bias ? bias[c] : opmath_t(0));
      out.v[k] = static_cast<scalar_t>(v * (v > opmath_t(0) ? gain : neg_gain));
      if (++offset == run) {
        offset = 0;
        c = c + 1 == channels ? 0 : c + 1;
      }
    }
    *reinterpret_cast<Pack<scalar_t, VEC>*>(y + start) = out;
    return;
  }
  for (index_t i = start; i < numel; ++i) {  // the last, partial pack
    const opmath_t v = static_cast<opmath_t>(x[i]) + (bias ? bias[c] : opmath_t(0));
    y[i] = static_cast<scalar_t>(v * (v > opmath_t(0) ? gain : neg_gain));
    if (++offset == run) {
      offset = 0;
      c = c + 1 == channels ? 0 : c + 1;
    }
  }
}

template <typename scalar_t, int VEC, typename index_t>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(const scalar_t* __restrict__ grad, const scalar_t* __restrict__ out,
                    scalar_t* __restrict__ dx, index_t numel, at::opmath_type<scalar_t> gain,
                    at::opmath_type<scalar_t> neg_gain, at::opmath_type<scalar_t> sign) {
  using opmath_t = at::opmath_type<scalar_t>;
  const index_t start = (static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x) * VEC;
  if (start + VEC <= numel) {
    const Pack<scalar_t, VEC> g = *reinterpret_cast<const Pack<scalar_t, VEC>*>(grad + start);
    const Pack<scalar_t, VEC> o = *reinterpret_cast<const Pack<scalar_t, VEC>*>(out + start);
    Pack<scalar_t, VEC> r;
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const bool active = static_cast<opmath_t>(o.v[k]) * sign > opmath_t(0);
      r.v[k] = static_cast<scalar_t>(static_cast<opmath_t>(g.v[k]) * (active ? gain : neg_gain));
    }
    *reinterpret_cast<Pack<scalar_t, VEC>*>(dx + start) = r;
    return;
  }
  for (index_t i = start; i < numel; ++i) {
    const bool active = static_cast<opmath_t>(out[i]) * sign > opmath_t(0);
    dx[i] = static_cast<scalar_t>(static_cast<opmath_t>(grad[i]) * (active ? gain : neg_gain));
  }
}

// Blocks for `numel` elements at VEC per thread.
inline unsigned blocks_for(int64_t numel, int vec) {
  return static_cast<unsigned>((numel + static_cast<int64_t>(kThreads) * vec - 1) / (kThreads * vec));
}

template <typename scalar_t, int VEC, typename index_t>
void launch_forward(const BiasLeakyReluPlan& plan, at::Tensor& y, double slope, double gain) {
  using opmath_t = at::opmath_type<scalar_t>;
  const opmath_t* bias = plan.bias.defined() ? plan.bias.const_data_ptr<opmath_t>() : nullptr;
  forward_kernel<scalar_t, VEC, index_t><<<blocks_for(y.numel(), VEC), kThreads, 0,
                                           at::cuda::getCurrentCUDAStream()>>>(
      plan.x.const_data_ptr<scalar_t>(), bias, y.mutable_data_ptr<scalar_t>(),
      static_cast<index_t>(y.numel()), static_cast<index_t>(plan.run),
      static_cast<index_t>(plan.channels), static_cast<opmath_t>(gain),
      static_cast<opmath_t>(slope * gain));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t, int VEC, typename index_t>
void launch_backward(const at::Tensor& grad, const at::Tensor& out, at::Tensor& dx, double slope,
                     double gain) {
  using opmath_t = at::opmath_type<scalar_t>;
  backward_kernel<scalar_t, VEC, index_t><<<blocks_for(dx.numel(), VEC), kThreads, 0,
                                            at::cuda::getCurrentCUDAStream()>>>(
      grad.const_data_ptr<scalar_t>(), out.const_data_ptr<scalar_t>(),
      dx.mutable_data_ptr<scalar_t>(), static_cast<index_t>(dx.numel()),
      static_cast<opmath_t>(gain), static_cast<opmath_t>(slope * gain),
      static_cast<opmath_t>(gain < 0 ? -1 : 1));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Picks 16-byte packs when every pointer allows them, and 32-bit indices when
// the tensor is small enough (the per-pack division is then much cheaper).
template <typename scalar_t, typename Launch>
void with_vec_and_index(int64_t numel, std::initializer_list<const void*> ptrs, Launch&& launch) {
  bool vec_ok = true;
  for (const void* p : ptrs) {
    vec_ok = vec_ok && aligned16(p);
  }
  constexpr int VEC = vec_width<scalar_t>();
  const bool small = numel + static_cast<int64_t>(kThreads) * VEC < (int64_t(1) << 31);
  if (vec_ok && small) {
    launch(std::integral_constant<int, VEC>{}, uint32_t{});
  } else if (vec_ok) {
    launch(std::integral_constant<int, VEC>{}, int64_t{});
  } else if (small) {
    launch(std::integral_constant<int, 1>{}, uint32_t{});
  } else {
    launch(std::integral_constant<int, 1>{}, int64_t{});
  }
}

at::Tensor bias_leaky_relu_cuda(const at::Tensor& x, const std::optional<at::Tensor>& bias,
                                double negative_slope, double gain) {
  const c10::cuda::CUDAGuard guard(x.device());
  const BiasLeakyReluPlan plan = plan_bias_leaky_relu(x, bias, negative_slope);
  at::Tensor y = at::empty_like(plan.x, plan.format);
  if (y.numel() == 0) {
    return y;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "bias_leaky_relu_cuda", [&] {
    with_vec_and_index<scalar_t>(y.numel(), {plan.x.const_data_ptr(), y.const_data_ptr()},
                                 [&](auto vec, auto index) {
                                   launch_forward<scalar_t, decltype(vec)::value, decltype(index)>(
                                       plan, y, negative_slope, gain);
                                 });
  });
  return y;
}

at::Tensor bias_leaky_relu_backward_cuda(const at::Tensor& grad, const at::Tensor& out,
                                         double negative_slope, double gain) {
  const c10::cuda::CUDAGuard guard(out.device());
  auto [g, o] = plan_bias_leaky_relu_backward(grad, out, negative_slope);
  at::Tensor dx = at::empty_like(o, kernel_format(o));
  if (dx.numel() == 0) {
    return dx;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, out.scalar_type(),
                                  "bias_leaky_relu_backward_cuda", [&] {
    with_vec_and_index<scalar_t>(dx.numel(), {g.const_data_ptr(), o.const_data_ptr(), dx.const_data_ptr()},
                                 [&](auto vec, auto index) {
                                   launch_backward<scalar_t, decltype(vec)::value, decltype(index)>(
                                       g, o, dx, negative_slope, gain);
                                 });
  });
  return dx;
}

}  // namespace

TORCH_LIBRARY_IMPL(gantools, CUDA, m) {
  m.impl("bias_leaky_relu", &bias_leaky_relu_cuda);
  m.impl("bias_leaky_relu_backward", &bias_leaky_relu_backward_cuda);
}

}  // namespace gantools
