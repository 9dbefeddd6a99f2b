// gradient_penalty: CUDA kernels: one read of the gradient at copy bandwidth, then a finishing block.
//
// Forward: a grid of (chunk, sample) blocks sized to fill the device once. The blocks of a sample
// stride through it together in 16-byte packs, kUnroll independent loads in flight per thread, so
// a few large samples keep the whole device busy as well as many small ones. Each block writes one
// partial sum of squares; one finishing block adds each sample's partials in a fixed order (no
// atomics: the result is the same on every run), takes the norms and the penalty.
// Gradient op: the same grid, one scaled copy (16-byte loads and stores, a scale per sample).
// Rows whose start is not 16-byte aligned (odd per-sample sizes, offset views) take their first
// and last few elements one by one; everything between moves in packs.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <tuple>

#include "../common.h"
#include "../gradient_penalty.h"
#include "vec.cuh"

namespace gantools {
namespace {

constexpr int kUnroll = 4;             // independent 16-byte loads in flight per thread
constexpr int64_t kMaxGridY = 65535;   // samples beyond this are looped over
constexpr int kFinishThreads = 1024;   // the finishing block

// One sample's elements as [head | packs x VEC | tail]: the head runs up to the first 16-byte
// aligned address, the tail is what is left after the last whole pack (both < VEC elements).
template <typename scalar_t, int VEC>
struct RowSpan {
  int64_t head, packs, tail_begin;

  __device__ RowSpan(const scalar_t* row, int64_t n) {
    constexpr uintptr_t kBytes = sizeof(scalar_t) * VEC;
    const uintptr_t misaligned = reinterpret_cast<uintptr_t>(row) % kBytes;
    head = misaligned == 0 ? 0 : static_cast<int64_t>((kBytes - misaligned) / sizeof(scalar_t));
    head = head < n ? head : n;
    packs = (n - head) / VEC;
    tail_begin = head + packs * VEC;
  }
};

template <typename opmath_t, typename scalar_t, int VEC>
__device__ __forceinline__ opmath_t squares(const Pack<scalar_t, VEC>& p) {
  opmath_t s = 0;
#pragma unroll
  for (int k = 0; k < VEC; ++k) {
    const opmath_t v = static_cast<opmath_t>(p.v[k]);
    s += v * v;
  }
  return s;
}

// partial[n * gridDim.x + chunk] = sum of squares of the packs of sample n that block `chunk` reads
// (chunk 0 also takes the head and tail elements).
template <typename scalar_t, int VEC>
__global__ void __launch_bounds__(kThreads)
    sum_squares_kernel(const scalar_t* __restrict__ g, at::opmath_type<scalar_t>* __restrict__ partial,
                       int64_t batch, int64_t per_sample) {
  using opmath_t = at::opmath_type<scalar_t>;
  using pack_t = Pack<scalar_t, VEC>;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;  // in packs
  for (int64_t n = blockIdx.y; n < batch; n += gridDim.y) {
    const scalar_t* row = g + n * per_sample;
    const RowSpan<scalar_t, VEC> span(row, per_sample);
    const pack_t* packs = reinterpret_cast<const pack_t*>(row + span.head);
    opmath_t acc = 0;
    int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
    for (; i + (kUnroll - 1) * stride < span.packs; i += kUnroll * stride) {
      pack_t p[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        p[u] = packs[i + u * stride];
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        acc += squares<opmath_t>(p[u]);
      }
    }
    for (; i < span.packs; i += stride) {
      const pack_t p = packs[i];
      acc += squares<opmath_t>(p);
    }
    if (blockIdx.x == 0) {
      if (threadIdx.x < span.head) {
        const opmath_t v = static_cast<opmath_t>(row[threadIdx.x]);
        acc += v * v;
      }
      if (span.tail_begin + threadIdx.x < per_sample) {
        const opmath_t v = static_cast<opmath_t>(row[span.tail_begin + threadIdx.x]);
        acc += v * v;
      }
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) {
      partial[n * gridDim.x + blockIdx.x] = acc;
    }
    __syncthreads();  // block_sum's shared memory is reused by the next sample
  }
}

// One block: `width` lanes (a power of two up to 32) add one sample's `chunks` partials, so many
// samples are finished at once; then norms per sample and weight * mean(gap^2).
template <typename scalar_t>
__global__ void __launch_bounds__(kFinishThreads)
    finish_kernel(const at::opmath_type<scalar_t>* __restrict__ partial, int64_t chunks, int64_t batch,
                  int width, at::opmath_type<scalar_t>* __restrict__ norms, scalar_t* __restrict__ penalty,
                  double weight, double center, bool one_sided) {
  const int lane = threadIdx.x % width;
  const int64_t group = threadIdx.x / width, groups = kFinishThreads / width;
  double total = 0.0;
  // Every thread runs the same number of rounds, so the shuffles below see whole warps.
  for (int64_t first = 0; first < batch; first += groups) {
    const int64_t n = first + group;
    double sq = 0.0;
    if (n < batch) {
      for (int64_t k = lane; k < chunks; k += width) {
        sq += static_cast<double>(partial[n * chunks + k]);
      }
    }
    for (int offset = width / 2; offset > 0; offset /= 2) {
      sq += __shfl_down_sync(0xffffffffu, sq, offset, width);
    }
    if (lane == 0 && n < batch) {
      const double norm = sqrt(sq);
      double gap = norm - center;
      if (one_sided && gap < 0.0) {
        gap = 0.0;
      }
      norms[n] = static_cast<at::opmath_type<scalar_t>>(norm);
      total += gap * gap;
    }
  }
  total = block_sum<double, kFinishThreads>(total);
  if (threadIdx.x == 0) {
    // An empty batch gives NaN, as the mean of nothing does in PyTorch.
    *penalty = static_cast<scalar_t>(weight * (total / static_cast<double>(batch)));
  }
}

template <typename scalar_t, int VEC>
__device__ __forceinline__ Pack<scalar_t, VEC> scaled(const Pack<scalar_t, VEC>& p,
                                                      at::opmath_type<scalar_t> scale) {
  Pack<scalar_t, VEC> r;
#pragma unroll
  for (int k = 0; k < VEC; ++k) {
    r.v[k] = static_cast<scalar_t>(static_cast<at::opmath_type<scalar_t>>(p.v[k]) * scale);
  }
  return r;
}

// out = upstream * factor(norm_n) * g, sample by sample. g and out rows share their alignment
// (checked on the host), so one RowSpan serves both.
template <typename scalar_t, int VEC>
__global__ void __launch_bounds__(kThreads)
    scale_kernel(const scalar_t* __restrict__ g, const at::opmath_type<scalar_t>* __restrict__ norms,
                 const at::opmath_type<scalar_t>* __restrict__ upstream, scalar_t* __restrict__ out,
                 int64_t batch, int64_t per_sample, double weight, double center, bool one_sided) {
  using opmath_t = at::opmath_type<scalar_t>;
  using pack_t = Pack<scalar_t, VEC>;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;  // in packs
  for (int64_t n = blockIdx.y; n < batch; n += gridDim.y) {
    const opmath_t scale =
        *upstream * penalty_factor<opmath_t>(norms[n], static_cast<opmath_t>(weight),
                                             static_cast<opmath_t>(center), one_sided, batch);
    const scalar_t* src = g + n * per_sample;
    scalar_t* dst = out + n * per_sample;
    const RowSpan<scalar_t, VEC> span(src, per_sample);
    const pack_t* in = reinterpret_cast<const pack_t*>(src + span.head);
    pack_t* to = reinterpret_cast<pack_t*>(dst + span.head);
    int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
    for (; i + (kUnroll - 1) * stride < span.packs; i += kUnroll * stride) {
      pack_t p[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        p[u] = in[i + u * stride];
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        to[i + u * stride] = scaled(p[u], scale);
      }
    }
    for (; i < span.packs; i += stride) {
      const pack_t p = in[i];
      to[i] = scaled(p, scale);
    }
    if (blockIdx.x == 0) {
      if (threadIdx.x < span.head) {
        dst[threadIdx.x] = static_cast<scalar_t>(static_cast<opmath_t>(src[threadIdx.x]) * scale);
      }
      const int64_t t = span.tail_begin + threadIdx.x;
      if (t < per_sample) {
        dst[t] = static_cast<scalar_t>(static_cast<opmath_t>(src[t]) * scale);
      }
    }
  }
}

// Blocks of `kernel` that the device holds at once. Read once per kernel (the first call runs
// eagerly, before any CUDA-graph capture); every GPU of a machine is taken to be the same model.
template <typename Kernel>
int64_t resident_blocks(Kernel kernel) {
  int per_sm = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, 0));
  return static_cast<int64_t>(std::max(per_sm, 1)) * at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
}

// (chunks, sample rows): at most one wave of resident blocks while samples are fewer than that (a
// second, partial wave would take as long as the first), every thread with at least one pack.
dim3 tile(int64_t batch, int64_t per_sample, int vec, int64_t resident) {
  const int64_t rows = std::min(std::max<int64_t>(batch, 1), kMaxGridY);
  const int64_t packs = (per_sample + vec - 1) / vec;
  const int64_t most = std::max<int64_t>(1, (packs + kThreads - 1) / kThreads);
  const int64_t chunks = std::min(std::max<int64_t>(1, resident / rows), most);
  return dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(rows));
}

// Lanes per sample in the finishing block: the power of two at or above `chunks`, at most a warp.
int finish_width(int64_t chunks) {
  int width = 1;
  while (width < 32 && width < chunks) {
    width *= 2;
  }
  return width;
}

template <typename scalar_t>
void launch_forward(const at::Tensor& g, at::Tensor& norms, at::Tensor& penalty, double weight, double center,
                    bool one_sided) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int VEC = vec_width<scalar_t>();
  static const int64_t resident = resident_blocks(sum_squares_kernel<scalar_t, VEC>);
  const int64_t batch = g.size(0);
  const int64_t per_sample = batch > 0 ? g.numel() / batch : 0;
  const dim3 grid = tile(batch, per_sample, VEC, resident);
  const auto stream = at::cuda::getCurrentCUDAStream();
  const int64_t n_partial = std::max<int64_t>(batch, 1) * grid.x;
  // Every partial is written unless the samples have no elements at all.
  at::Tensor partial = per_sample > 0 ? at::empty({n_partial}, norms.options())
                                      : at::zeros({n_partial}, norms.options());
  if (batch > 0 && per_sample > 0) {
    sum_squares_kernel<scalar_t, VEC><<<grid, kThreads, 0, stream>>>(
        g.const_data_ptr<scalar_t>(), partial.mutable_data_ptr<opmath_t>(), batch, per_sample);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  finish_kernel<scalar_t><<<1, kFinishThreads, 0, stream>>>(
      partial.const_data_ptr<opmath_t>(), grid.x, batch, finish_width(grid.x), norms.mutable_data_ptr<opmath_t>(),
      penalty.mutable_data_ptr<scalar_t>(), weight, center, one_sided);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

std::tuple<at::Tensor, at::Tensor> gradient_penalty_cuda(const at::Tensor& grad, double weight,
                                                         double center, bool one_sided) {
  const c10::cuda::CUDAGuard guard(grad.device());
  const at::Tensor g = plan_gradient_penalty(grad, weight, center);
  const at::ScalarType opmath = g.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor norms = at::empty({g.size(0)}, g.options().dtype(opmath));
  at::Tensor penalty = at::empty({}, g.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), "gradient_penalty_cuda", [&] {
    launch_forward<scalar_t>(g, norms, penalty, weight, center, one_sided);
  });
  return {penalty, norms};
}

template <typename scalar_t, int VEC>
void launch_scale(const at::Tensor& g, const at::Tensor& norms, const at::Tensor& upstream, at::Tensor& out,
                  double weight, double center, bool one_sided) {
  using opmath_t = at::opmath_type<scalar_t>;
  static const int64_t resident = resident_blocks(scale_kernel<scalar_t, VEC>);
  const int64_t batch = g.size(0);
  const int64_t per_sample = g.numel() / batch;
  scale_kernel<scalar_t, VEC><<<tile(batch, per_sample, VEC, resident), kThreads, 0,
                                at::cuda::getCurrentCUDAStream()>>>(
      g.const_data_ptr<scalar_t>(), norms.const_data_ptr<opmath_t>(), upstream.const_data_ptr<opmath_t>(),
      out.mutable_data_ptr<scalar_t>(), batch, per_sample, weight, center, one_sided);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
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
  // The upstream gradient stays on the device (no host sync), in op-math precision.
  const at::Tensor upstream = grad_output.reshape({}).to(norms.scalar_type());
  const at::Tensor norms_c = norms.contiguous();
  // Packs need g and out rows at the same offset from a 16-byte boundary (out is freshly
  // allocated, so aligned); an input at another offset takes the element-wise path.
  const bool same_offset = reinterpret_cast<uintptr_t>(g.const_data_ptr()) % 16 ==
                           reinterpret_cast<uintptr_t>(out.const_data_ptr()) % 16;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), "gradient_penalty_backward_cuda",
                                  [&] {
    if (same_offset) {
      launch_scale<scalar_t, vec_width<scalar_t>()>(g, norms_c, upstream, out, weight, center, one_sided);
    } else {
      launch_scale<scalar_t, 1>(g, norms_c, upstream, out, weight, center, one_sided);
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gantools, CUDA, m) {
  m.impl("gradient_penalty", &gradient_penalty_cuda);
  m.impl("gradient_penalty_backward", &gradient_penalty_backward_cuda);
}

}  // namespace gantools
