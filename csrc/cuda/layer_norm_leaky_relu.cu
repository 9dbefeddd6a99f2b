// layer_norm_leaky_relu: CUDA kernels. Each op is per-(sample, channel) sums added in a fixed
// order, one thread per sample for the algebra of layer_norm_leaky_relu.h, then an elementwise
// pass; fp16/bf16 are computed in float.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <tuple>

#include "../layer_norm_leaky_relu.h"
#include "vec.cuh"

namespace gantools {
namespace {

constexpr int kWarps = kThreads / 32;
constexpr int64_t kMaxGridY = 65535;

// The layout of LayerNormPlan, passed to the kernels by value.
struct Geometry {
  int64_t batch, channels, run, per_sample;
};

Geometry geometry(const LayerNormPlan& p) {
  return {p.batch, p.channels, p.run, p.per_sample};
}

// xhat, weight and activation slope a(z) of element i (channel c) of sample n.
template <typename scalar_t>
struct Normaliser {
  using opmath_t = at::opmath_type<scalar_t>;
  const scalar_t* x;
  const opmath_t *mean, *rstd, *w, *b;
  opmath_t gain, neg_gain;

  struct Element {
    opmath_t xhat, w, a;
  };

  __device__ Element operator()(int64_t n, int64_t c, int64_t i) const {
    const opmath_t xhat = (static_cast<opmath_t>(x[i]) - mean[n]) * rstd[n];
    const opmath_t z = xhat * w[c] + b[c];
    return {xhat, w[c], z > opmath_t(0) ? gain : neg_gain};
  }
};

// sums[(n * K + k) * C + c] = sum of terms(n, c, i)[k] over the elements i of channel c in sample
// n, in a fixed order. Planes (run > 1): a warp per channel, its lanes striding along the plane.
// Rows (run == 1): 32 channels per block, its warps striding over the rows, added up in order.
template <int K, typename Terms>
__global__ void __launch_bounds__(kThreads)
    channel_sums_kernel(Terms terms, Geometry g, typename Terms::acc_t* __restrict__ sums) {
  using acc_t = typename Terms::acc_t;
  __shared__ acc_t partial[K][kWarps][32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int64_t n = blockIdx.y; n < g.batch; n += gridDim.y) {
    const int64_t base = n * g.per_sample;
    acc_t acc[K] = {};
    if (g.run > 1) {
      const int64_t c = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
      if (c < g.channels) {
        for (int64_t s = lane; s < g.run; s += 32) {
          terms(acc, n, c, base + c * g.run + s);
        }
      }
#pragma unroll
      for (int k = 0; k < K; ++k) {
        for (int offset = 16; offset > 0; offset /= 2) {
          acc[k] += __shfl_down_sync(0xffffffffu, acc[k], offset);
        }
      }
      if (lane == 0 && c < g.channels) {
        for (int k = 0; k < K; ++k) {
          sums[(n * K + k) * g.channels + c] = acc[k];
        }
      }
      continue;
    }
    const int64_t c = static_cast<int64_t>(blockIdx.x) * 32 + lane;
    if (c < g.channels) {
      for (int64_t s = warp; s < g.per_sample / g.channels; s += kWarps) {
        terms(acc, n, c, base + s * g.channels + c);
      }
    }
    for (int k = 0; k < K; ++k) {
      partial[k][warp][lane] = acc[k];
    }
    __syncthreads();
    if (warp == 0 && c < g.channels) {
      for (int k = 0; k < K; ++k) {
        acc_t total = 0;
        for (int w = 0; w < kWarps; ++w) {
          total += partial[k][w][lane];
        }
        sums[(n * K + k) * g.channels + c] = total;
      }
    }
    __syncthreads();  // `partial` is reused for the next sample
  }
}

template <int K, typename Terms>
void launch_channel_sums(const Terms& terms, const Geometry& g, at::Tensor& sums) {
  const int64_t per_block = g.run > 1 ? kWarps : 32;
  const dim3 grid(static_cast<unsigned>((g.channels + per_block - 1) / per_block),
                  static_cast<unsigned>(std::min(g.batch, kMaxGridY)));
  channel_sums_kernel<K><<<grid, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      terms, g, sums.mutable_data_ptr<typename Terms::acc_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// body(n, c, i) for every element i (channel c, sample n).
template <typename Body>
__global__ void __launch_bounds__(kThreads) map_kernel(Body body, Geometry g) {
  const int64_t total = g.batch * g.per_sample;
  const int64_t stride = static_cast<int64_t>(kThreads) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < total; i += stride) {
    const int64_t n = i / g.per_sample;
    const int64_t j = i - n * g.per_sample;
    body(n, g.run > 1 ? j / g.run : j % g.channels, i);
  }
}

template <typename Body>
void launch_map(const Body& body, const Geometry& g) {
  const int64_t blocks = std::min<int64_t>((g.batch * g.per_sample + kThreads - 1) / kThreads, int64_t(1) << 20);
  map_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(body, g);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Launches `kernel` with one thread per sample.
template <typename Kernel, typename... Args>
void launch_per_sample(Kernel kernel, int64_t batch, Args... args) {
  const unsigned blocks = static_cast<unsigned>((batch + kThreads - 1) / kThreads);
  kernel<<<blocks, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(args...);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// ---- forward -------------------------------------------------------------

// Sums of x - x0 and (x - x0)^2, x0 the sample's first element: a shift inside the data keeps
// the variance from cancelling when the mean is large.
template <typename scalar_t>
struct StatsTerms {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t* x;
  int64_t per_sample;

  __device__ void operator()(acc_t (&acc)[2], int64_t n, int64_t, int64_t i) const {
    const acc_t d = static_cast<acc_t>(x[i]) - static_cast<acc_t>(x[n * per_sample]);
    acc[0] += d;
    acc[1] += d * d;
  }
};

template <typename scalar_t>
__global__ void stats_kernel(const scalar_t* x, const at::opmath_type<scalar_t>* sums, Geometry g, double eps,
                             at::opmath_type<scalar_t>* mean, at::opmath_type<scalar_t>* rstd) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (n >= g.batch) {
    return;
  }
  double s1 = 0, s2 = 0;
  for (int64_t c = 0; c < g.channels; ++c) {
    s1 += sums[2 * n * g.channels + c];
    s2 += sums[(2 * n + 1) * g.channels + c];
  }
  const double shift = s1 / static_cast<double>(g.per_sample);
  const double var = fmax(s2 / static_cast<double>(g.per_sample) - shift * shift, 0.0);
  mean[n] = static_cast<at::opmath_type<scalar_t>>(static_cast<double>(x[n * g.per_sample]) + shift);
  rstd[n] = static_cast<at::opmath_type<scalar_t>>(rsqrt(var + eps));
}

template <typename scalar_t>
struct ForwardBody {
  Normaliser<scalar_t> norm;
  scalar_t* y;

  __device__ void operator()(int64_t n, int64_t c, int64_t i) const {
    const auto e = norm(n, c, i);
    y[i] = static_cast<scalar_t>((e.xhat * e.w + norm.b[c]) * e.a);
  }
};

template <typename scalar_t>
Normaliser<scalar_t> normaliser(const LayerNormPlan& p, const at::Tensor& mean, const at::Tensor& rstd,
                                double slope, double gain) {
  using opmath_t = at::opmath_type<scalar_t>;
  return {p.x.const_data_ptr<scalar_t>(), mean.const_data_ptr<opmath_t>(), rstd.const_data_ptr<opmath_t>(),
          p.weight.const_data_ptr<opmath_t>(), p.bias.const_data_ptr<opmath_t>(), static_cast<opmath_t>(gain),
          static_cast<opmath_t>(slope * gain)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> forward_cuda(const at::Tensor& x, const at::Tensor& weight,
                                                            const at::Tensor& bias, double slope, double gain,
                                                            double eps) {
  const c10::cuda::CUDAGuard guard(x.device());
  const ForwardPlan f = plan_forward(x, weight, bias, eps);
  const LayerNormPlan& p = f.p;
  if (f.y.numel() == 0) {
    return {f.y, f.mean, f.rstd};
  }
  const Geometry g = geometry(p);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "layer_norm_leaky_relu_cuda", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    at::Tensor sums = at::empty({p.batch, 2, p.channels}, p.weight.options());
    launch_channel_sums<2>(StatsTerms<scalar_t>{p.x.const_data_ptr<scalar_t>(), p.per_sample}, g, sums);
    launch_per_sample(stats_kernel<scalar_t>, p.batch, p.x.const_data_ptr<scalar_t>(),
                      sums.const_data_ptr<opmath_t>(), g, eps, f.mean.mutable_data_ptr<opmath_t>(),
                      f.rstd.mutable_data_ptr<opmath_t>());
    launch_map(ForwardBody<scalar_t>{normaliser<scalar_t>(p, f.mean, f.rstd, slope, gain),
                                     f.y.mutable_data_ptr<scalar_t>()},
               g);
  });
  return {f.y, f.mean, f.rstd};
}

// ---- backward ------------------------------------------------------------

template <typename scalar_t>
struct BackwardTerms {
  using acc_t = at::opmath_type<scalar_t>;
  Normaliser<scalar_t> norm;
  const scalar_t* g;

  __device__ void operator()(acc_t (&acc)[kBackwardSums], int64_t n, int64_t c, int64_t i) const {
    const auto e = norm(n, c, i);
    const acc_t h = static_cast<acc_t>(g[i]) * e.a;
    acc[0] += h * e.xhat;
    acc[1] += h;
  }
};

template <typename T>
__global__ void backward_coeffs_kernel(const T* sums, const T* w, const T* rstd, Geometry g, T* coeffs) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (n < g.batch) {
    const BackwardCoeffs<T> k =
        backward_coeffs(sums + n * kBackwardSums * g.channels, w, rstd[n], g.channels, g.per_sample);
    coeffs[2 * n] = k.k_xhat;
    coeffs[2 * n + 1] = k.k_one;
  }
}

template <typename scalar_t>
struct BackwardBody {
  using opmath_t = at::opmath_type<scalar_t>;
  Normaliser<scalar_t> norm;
  const scalar_t* g;
  const opmath_t* coeffs;  // (N, 2): k_xhat, k_one
  scalar_t* gx;

  __device__ void operator()(int64_t n, int64_t c, int64_t i) const {
    const auto e = norm(n, c, i);
    const opmath_t h = static_cast<opmath_t>(g[i]) * e.a;
    gx[i] = static_cast<scalar_t>(norm.rstd[n] * e.w * h + coeffs[2 * n] * e.xhat + coeffs[2 * n + 1]);
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> backward_cuda(const at::Tensor& grad, const at::Tensor& x,
                                                             const at::Tensor& weight, const at::Tensor& bias,
                                                             const at::Tensor& mean, const at::Tensor& rstd,
                                                             double slope, double gain, double /*eps*/,
                                                             bool grad_affine) {
  const c10::cuda::CUDAGuard guard(x.device());
  const GradPlan plan = plan_backward(grad, x, weight, bias, mean, rstd);
  const LayerNormPlan& p = plan.p;
  at::Tensor gx = at::empty_like(p.x, p.format);
  at::Tensor sums = at::zeros({p.batch, kBackwardSums, p.channels}, p.weight.options());
  if (gx.numel() > 0) {
    const Geometry geo = geometry(p);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "layer_norm_leaky_relu_backward_cuda",
                                    [&] {
      using opmath_t = at::opmath_type<scalar_t>;
      const Normaliser<scalar_t> norm = normaliser<scalar_t>(p, mean, rstd, slope, gain);
      const scalar_t* g = plan.grad.const_data_ptr<scalar_t>();
      launch_channel_sums<kBackwardSums>(BackwardTerms<scalar_t>{norm, g}, geo, sums);
      at::Tensor coeffs = at::empty({p.batch, 2}, p.weight.options());
      launch_per_sample(backward_coeffs_kernel<opmath_t>, p.batch, sums.const_data_ptr<opmath_t>(),
                        p.weight.const_data_ptr<opmath_t>(), rstd.const_data_ptr<opmath_t>(), geo,
                        coeffs.mutable_data_ptr<opmath_t>());
      launch_map(BackwardBody<scalar_t>{norm, g, coeffs.const_data_ptr<opmath_t>(), gx.mutable_data_ptr<scalar_t>()},
                 geo);
    });
  }
  if (!grad_affine) {
    return {gx, at::Tensor(), at::Tensor()};
  }
  auto [gw, gb] = affine_grads(sums, weight, bias);
  return {gx, gw, gb};
}

// ---- double backward -----------------------------------------------------

template <typename scalar_t>
struct DoubleTerms {
  using acc_t = at::opmath_type<scalar_t>;
  Normaliser<scalar_t> norm;
  const scalar_t *g, *gg;

  __device__ void operator()(acc_t (&acc)[kDoubleSums], int64_t n, int64_t c, int64_t i) const {
    const auto e = norm(n, c, i);
    const acc_t h = static_cast<acc_t>(g[i]) * e.a;
    const acc_t gam = static_cast<acc_t>(gg[i]);
    acc[0] += h * e.xhat;
    acc[1] += h;
    acc[2] += gam * h;
    acc[3] += gam;
    acc[4] += gam * e.xhat;
  }
};

template <typename T>
__global__ void double_coeffs_kernel(const T* sums, const T* w, const T* gg_w, const T* gg_b, const T* rstd,
                                     Geometry g, T* chan, T* share, T* coeffs) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (n < g.batch) {
    const int64_t C = g.channels;
    const DoubleCoeffs<T> k = double_coeffs(sums + n * kDoubleSums * C, w, gg_w, gg_b, rstd[n], C, g.per_sample,
                                            chan + n * 2 * C, share + n * C);
    coeffs[3 * n] = k.k_gg;
    coeffs[3 * n + 1] = k.k_xhat;
    coeffs[3 * n + 2] = k.k_one;
  }
}

template <typename scalar_t>
struct DoubleBody {
  using opmath_t = at::opmath_type<scalar_t>;
  Normaliser<scalar_t> norm;
  const scalar_t *g, *gg;
  const opmath_t* chan;    // (N, 2, C): t_xhat, t_one
  const opmath_t* coeffs;  // (N, 3): k_gg, k_xhat, k_one
  int64_t channels;
  scalar_t *d_g, *d_x;

  __device__ void operator()(int64_t n, int64_t c, int64_t i) const {
    const auto e = norm(n, c, i);
    const opmath_t r = norm.rstd[n];
    const opmath_t gam = static_cast<opmath_t>(gg[i]);
    const opmath_t t_xhat = chan[2 * n * channels + c], t_one = chan[(2 * n + 1) * channels + c];
    const opmath_t* k = coeffs + 3 * n;
    d_g[i] = static_cast<scalar_t>(e.a * (r * e.w * gam + t_xhat * e.xhat + t_one));
    d_x[i] = static_cast<scalar_t>(k[0] * gam + r * t_xhat * static_cast<opmath_t>(g[i]) * e.a + k[1] * e.xhat + k[2]);
  }
};

template <typename T>
const T* optional_ptr(const at::Tensor& t) {
  return t.defined() ? t.const_data_ptr<T>() : nullptr;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> double_backward_cuda(
    const at::Tensor& gg_x, const std::optional<at::Tensor>& gg_w, const std::optional<at::Tensor>& gg_b,
    const at::Tensor& grad, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
    const at::Tensor& mean, const at::Tensor& rstd, double slope, double gain) {
  const c10::cuda::CUDAGuard guard(x.device());
  const GradPlan plan = plan_double_backward(gg_x, gg_w, gg_b, grad, x, weight, bias, mean, rstd);
  const LayerNormPlan& p = plan.p;
  at::Tensor d_g = at::empty_like(p.x, p.format);
  at::Tensor d_x = at::empty_like(p.x, p.format);
  at::Tensor share = at::zeros({p.batch, p.channels}, p.weight.options());  // per-sample parts of d weight
  if (d_x.numel() > 0) {
    const Geometry geo = geometry(p);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(),
                                    "layer_norm_leaky_relu_double_backward_cuda", [&] {
      using opmath_t = at::opmath_type<scalar_t>;
      const Normaliser<scalar_t> norm = normaliser<scalar_t>(p, mean, rstd, slope, gain);
      const scalar_t* gp = plan.grad.const_data_ptr<scalar_t>();
      const scalar_t* ggp = plan.gg_x.const_data_ptr<scalar_t>();
      at::Tensor sums = at::empty({p.batch, kDoubleSums, p.channels}, p.weight.options());
      launch_channel_sums<kDoubleSums>(DoubleTerms<scalar_t>{norm, gp, ggp}, geo, sums);
      at::Tensor chan = at::empty({p.batch, 2, p.channels}, p.weight.options());
      at::Tensor coeffs = at::empty({p.batch, 3}, p.weight.options());
      launch_per_sample(double_coeffs_kernel<opmath_t>, p.batch, sums.const_data_ptr<opmath_t>(),
                        p.weight.const_data_ptr<opmath_t>(), optional_ptr<opmath_t>(plan.gg_w),
                        optional_ptr<opmath_t>(plan.gg_b), rstd.const_data_ptr<opmath_t>(), geo,
                        chan.mutable_data_ptr<opmath_t>(), share.mutable_data_ptr<opmath_t>(),
                        coeffs.mutable_data_ptr<opmath_t>());
      launch_map(DoubleBody<scalar_t>{norm, gp, ggp, chan.const_data_ptr<opmath_t>(), coeffs.const_data_ptr<opmath_t>(),
                                      p.channels, d_g.mutable_data_ptr<scalar_t>(), d_x.mutable_data_ptr<scalar_t>()},
                 geo);
    });
  }
  return {d_g, d_x, share.sum(0).to(weight.scalar_type())};
}

}  // namespace

TORCH_LIBRARY_IMPL(gantools, CUDA, m) {
  m.impl("layer_norm_leaky_relu", &forward_cuda);
  m.impl("layer_norm_leaky_relu_backward", &backward_cuda);
  m.impl("layer_norm_leaky_relu_double_backward", &double_backward_cuda);
}

}  // namespace gantools
