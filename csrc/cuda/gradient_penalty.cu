// gradient_penalty: CUDA kernels; per-sample sums of squares by (chunk, sample) blocks, then one finishing block.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <tuple>

#include "../common.h"
#include "../gradient_penalty.h"
#include "vec.cuh"

namespace gantools {
namespace {

// Packs per thread per block: each block covers kThreads * kPacks * VEC elements of one sample.
constexpr int kPacks = 4;
constexpr int kMaxGridY = 65535;

// partial[n * chunks + chunk] = sum of squares of that chunk of sample n.
template <typename scalar_t, int VEC>
__global__ void __launch_bounds__(kThreads)
    sum_squares_kernel(const scalar_t* __restrict__ g, float* __restrict__ partial_f,
                       double* __restrict__ partial_d, int64_t batch, int64_t per_sample,
                       int64_t chunk_elems) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t chunks = gridDim.x;
  for (int64_t n = blockIdx.y; n < batch; n += gridDim.y) {
    const scalar_t* row = g + n * per_sample;
    const int64_t begin = blockIdx.x * chunk_elems;
    const int64_t end = begin + chunk_elems < per_sample ? begin + chunk_elems : per_sample;
    opmath_t acc = 0;
    if (VEC > 1) {
      // per_sample % VEC == 0 here, so packs never straddle samples.
      for (int64_t i = begin + threadIdx.x * VEC; i < end; i += kThreads * VEC) {
        const Pack<scalar_t, VEC> p = *reinterpret_cast<const Pack<scalar_t, VEC>*>(row + i);
#pragma unroll
        for (int k = 0; k < VEC; ++k) {
          const opmath_t v = static_cast<opmath_t>(p.v[k]);
          acc += v * v;
        }
      }
    } else {
      for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
        const opmath_t v = static_cast<opmath_t>(row[i]);
        acc += v * v;
      }
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) {
      if (partial_d) {
        partial_d[n * chunks + blockIdx.x] = acc;
      } else {
        partial_f[n * chunks + blockIdx.x] = acc;
      }
    }
    __syncthreads();  // block_sum's shared memory is reused by the next sample
  }
}

// One block: norms per sample, then weight * mean(gap^2). Partials are added
// in a fixed order, so the result is deterministic.
template <typename scalar_t, typename partial_t>
__global__ void __launch_bounds__(kThreads)
    finish_kernel(const partial_t* __restrict__ partial, int64_t chunks, int64_t batch,
                  at::opmath_type<scalar_t>* __restrict__ norms, scalar_t* __restrict__ penalty,
                  double weight, double center, bool one_sided) {
  double total = 0.0;
  for (int64_t n = threadIdx.x; n < batch; n += kThreads) {
    double sq = 0.0;
    for (int64_t k = 0; k < chunks; ++k) {
      sq += partial[n * chunks + k];
    }
    const double norm = sqrt(sq);
    double gap = norm - center;
    if (one_sided && gap < 0.0) {
      gap = 0.0;
    }
    norms[n] = static_cast<at::opmath_type<scalar_t>>(norm);
    total += gap * gap;
  }
  total = block_sum(total);
  if (threadIdx.x == 0) {
    *penalty = static_cast<scalar_t>(weight * (total / static_cast<double>(batch)));
  }
}

template <typename scalar_t, int VEC>
__global__ void __launch_bounds__(kThreads)
    scale_kernel(const scalar_t* __restrict__ g, const at::opmath_type<scalar_t>* __restrict__ norms,
                 const at::opmath_type<scalar_t>* __restrict__ upstream, scalar_t* __restrict__ out,
                 int64_t batch, int64_t per_sample, int64_t chunk_elems, double weight, double center,
                 bool one_sided) {
  using opmath_t = at::opmath_type<scalar_t>;
  for (int64_t n = blockIdx.y; n < batch; n += gridDim.y) {
    const opmath_t scale =
        *upstream * penalty_factor<opmath_t>(norms[n], static_cast<opmath_t>(weight),
                                             static_cast<opmath_t>(center), one_sided, batch);
    const int64_t base = n * per_sample;
    const int64_t begin = blockIdx.x * chunk_elems;
    const int64_t end = begin + chunk_elems < per_sample ? begin + chunk_elems : per_sample;
    if (VEC > 1) {
      for (int64_t i = begin + threadIdx.x * VEC; i < end; i += kThreads * VEC) {
        const Pack<scalar_t, VEC> p = *reinterpret_cast<const Pack<scalar_t, VEC>*>(g + base + i);
        Pack<scalar_t, VEC> r;
#pragma unroll
        for (int k = 0; k < VEC; ++k) {
          r.v[k] = static_cast<scalar_t>(static_cast<opmath_t>(p.v[k]) * scale);
        }
        *reinterpret_cast<Pack<scalar_t, VEC>*>(out + base + i) = r;
      }
    } else {
      for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
        out[base + i] = static_cast<scalar_t>(static_cast<opmath_t>(g[base + i]) * scale);
      }
    }
  }
}

// Grid over (chunks of a sample, samples) and the elements each block covers.
struct Tiling {
  dim3 grid;
  int64_t chunk_elems;
};

Tiling tile(int64_t batch, int64_t per_sample, int vec) {
  const int64_t chunk_elems = static_cast<int64_t>(kThreads) * kPacks * vec;
  const int64_t chunks = std::max<int64_t>(1, (per_sample + chunk_elems - 1) / chunk_elems);
  return {dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(std::min<int64_t>(batch, kMaxGridY))),
          chunk_elems};
}

template <typename scalar_t>
bool can_vectorize(int64_t per_sample, std::initializer_list<const void*> ptrs) {
  bool ok = per_sample % vec_width<scalar_t>() == 0;
  for (const void* p : ptrs) {
    ok = ok && aligned16(p);
  }
  return ok;
}

std::tuple<at::Tensor, at::Tensor> gradient_penalty_cuda(const at::Tensor& grad, double weight,
                                                         double center, bool one_sided) {
  const c10::cuda::CUDAGuard guard(grad.device());
  const at::Tensor g = plan_gradient_penalty(grad, weight, center);
  const int64_t batch = g.size(0);
  const int64_t per_sample = batch > 0 ? g.numel() / batch : 0;
  const at::ScalarType opmath = g.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor norms = at::empty({batch}, g.options().dtype(opmath));
  at::Tensor penalty = at::empty({}, g.options());
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), "gradient_penalty_cuda", [&] {
    constexpr int VEC = vec_width<scalar_t>();
    const bool vec = can_vectorize<scalar_t>(per_sample, {g.const_data_ptr()});
    const Tiling t = tile(std::max<int64_t>(batch, 1), per_sample, vec ? VEC : 1);
    // Sums of float32-or-smaller data are kept in float, of float64 in double.
    const bool wide = opmath == at::kDouble;
    // Every partial is written unless a sample has no elements at all.
    const int64_t n_partial = std::max<int64_t>(batch, 1) * t.grid.x;
    at::Tensor partial = per_sample > 0 ? at::empty({n_partial}, g.options().dtype(opmath))
                                        : at::zeros({n_partial}, g.options().dtype(opmath));
    if (batch > 0 && per_sample > 0) {
      auto kernel = vec ? sum_squares_kernel<scalar_t, VEC> : sum_squares_kernel<scalar_t, 1>;
      kernel<<<t.grid, kThreads, 0, stream>>>(
          g.const_data_ptr<scalar_t>(), wide ? nullptr : partial.mutable_data_ptr<float>(),
          wide ? partial.mutable_data_ptr<double>() : nullptr, batch, per_sample, t.chunk_elems);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    using opmath_t = at::opmath_type<scalar_t>;
    finish_kernel<scalar_t, opmath_t><<<1, kThreads, 0, stream>>>(
        partial.const_data_ptr<opmath_t>(), t.grid.x, batch, norms.mutable_data_ptr<opmath_t>(),
        penalty.mutable_data_ptr<scalar_t>(), weight, center, one_sided);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {penalty, norms};
}

at::Tensor gradient_penalty_backward_cuda(const at::Tensor& grad_output, const at::Tensor& grad,
                                          const at::Tensor& norms, double weight, double center,
                                          bool one_sided) {
  const c10::cuda::CUDAGuard guard(grad.device());
  const at::Tensor g = plan_gradient_penalty_backward(grad_output, grad, norms, weight, center);
  at::Tensor out = at::empty_like(g, kernel_format(g));
  if (out.numel() == 0) {
    return out;
  }
  const int64_t batch = g.size(0);
  const int64_t per_sample = g.numel() / batch;
  // The upstream gradient stays on the device (no host sync), in op-math precision.
  const at::Tensor upstream = grad_output.reshape({}).to(norms.scalar_type());
  const at::Tensor norms_c = norms.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), "gradient_penalty_backward_cuda",
                                  [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    constexpr int VEC = vec_width<scalar_t>();
    const bool vec = can_vectorize<scalar_t>(per_sample, {g.const_data_ptr(), out.const_data_ptr()});
    const Tiling t = tile(batch, per_sample, vec ? VEC : 1);
    auto kernel = vec ? scale_kernel<scalar_t, VEC> : scale_kernel<scalar_t, 1>;
    kernel<<<t.grid, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        g.const_data_ptr<scalar_t>(), norms_c.const_data_ptr<opmath_t>(), upstream.const_data_ptr<opmath_t>(),
        out.mutable_data_ptr<scalar_t>(), batch, per_sample, t.chunk_elems, weight, center, one_sided);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gantools, CUDA, m) {
  m.impl("gradient_penalty", &gradient_penalty_cuda);
  m.impl("gradient_penalty_backward", &gradient_penalty_backward_cuda);
}

}  // namespace gantools
