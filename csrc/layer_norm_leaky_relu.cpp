// layer_norm_leaky_relu: schema, argument checks, CPU kernels and autograd of
// y = leaky_relu(w[c] (x - mean_n) rstd_n + b[c], slope) * gain, the statistics over all non-batch
// dims of each sample (GroupNorm with one group, then the activation).
//
//   layer_norm_leaky_relu(x, weight, bias, slope, gain, eps) -> (y, mean, rstd)
//   layer_norm_leaky_relu_backward(grad, x, weight, bias, mean, rstd, slope, gain, eps, grad_affine)
//       -> (grad_x, grad_weight, grad_bias)       (the last two undefined unless grad_affine)
//   layer_norm_leaky_relu_double_backward(gg_x, gg_weight?, gg_bias?, grad, x, weight, bias, mean,
//       rstd, slope, gain) -> (d grad, d x, d weight)
//
// The forward saves x, mean and rstd (neither the output nor xhat): each backward recomputes xhat
// and the activation's side from them. The gradient op's gradient is the fused double backward;
// where that must be differentiable in turn (create_graph in a second backward), it is composed
// of ATen ops instead. The math is in layer_norm_leaky_relu.h.
//
// CPU: one sample per task; each kernel makes a pass of sums over the sample, then an
// elementwise pass while the sample is still in cache.
#include "layer_norm_leaky_relu.h"

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <array>
#include <cmath>
#include <limits>
#include <tuple>
#include <type_traits>
#include <vector>

#include "common.h"

namespace gantools {

namespace {

constexpr const char* kForward = "layer_norm_leaky_relu";
constexpr const char* kBackward = "layer_norm_leaky_relu_backward";
constexpr const char* kDouble = "layer_norm_leaky_relu_double_backward";

// Checks an optional (C,) tensor (argument `name`); returns it contiguous in the op-math dtype,
// or undefined.
at::Tensor plan_channel_vector(const char* op, const char* name, const std::optional<at::Tensor>& t,
                               const LayerNormPlan& plan) {
  if (!t.has_value() || !t->defined()) {
    return at::Tensor();
  }
  TORCH_CHECK(t->dim() == 1 && t->size(0) == plan.channels, op, ": ", name, " must have shape (",
              plan.channels, ",) to match x.size(1), got ", t->sizes());
  TORCH_CHECK(t->device() == plan.x.device(), op, ": ", name, " is on ", t->device(), " but x is on ",
              plan.x.device());
  TORCH_CHECK(at::isFloatingType(t->scalar_type()), op, ": ", name,
              " must be a floating-point tensor, got ", t->scalar_type());
  // The arithmetic runs in op-math precision: a float32 weight beside a bfloat16 x (autocast)
  // is used as it is.
  return t->to(opmath_type(plan.x.scalar_type())).contiguous();
}

LayerNormPlan plan_layer_norm(const char* op, const at::Tensor& x, const at::Tensor& weight,
                              const at::Tensor& bias) {
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), op, ": x must be a floating-point tensor, got ",
              x.scalar_type());
  TORCH_CHECK(x.dim() >= 2, op, ": x must have a channel dim (N, C, ...), got shape ", x.sizes());
  LayerNormPlan plan;
  plan.format = kernel_format(x);
  plan.x = x.contiguous(plan.format);
  plan.batch = x.size(0);
  plan.channels = x.size(1);
  plan.run = channel_run(x, plan.format);
  plan.per_sample = plan.channels * channel_run(x, at::MemoryFormat::Contiguous);
  plan.weight = plan_channel_vector(op, "weight", weight, plan);
  plan.bias = plan_channel_vector(op, "bias", bias, plan);
  return plan;
}

// Checks that `t` (argument `name`) matches x's shape, dtype and device; returns it dense in x's layout.
at::Tensor plan_like_x(const char* op, const char* name, const at::Tensor& t, const LayerNormPlan& plan) {
  TORCH_CHECK(t.sizes() == plan.x.sizes(), op, ": ", name, " has shape ", t.sizes(), " but x has shape ",
              plan.x.sizes());
  TORCH_CHECK(t.scalar_type() == plan.x.scalar_type(), op, ": ", name, " is ", t.scalar_type(),
              " but x is ", plan.x.scalar_type());
  TORCH_CHECK(t.device() == plan.x.device(), op, ": ", name, " is on ", t.device(), " but x is on ",
              plan.x.device());
  return t.contiguous(plan.format);
}

// The forward's per-sample statistics: (N,) in the op-math dtype, on x's device.
void check_stats(const char* op, const at::Tensor& mean, const at::Tensor& rstd, const LayerNormPlan& plan) {
  const at::ScalarType opmath = opmath_type(plan.x.scalar_type());
  const auto check = [&](const char* name, const at::Tensor& t) {
    TORCH_CHECK(t.dim() == 1 && t.size(0) == plan.batch, op, ": ", name, " must have shape (", plan.batch,
                ",), got ", t.sizes());
    TORCH_CHECK(t.scalar_type() == opmath, op, ": ", name, " must be ", opmath, " for a ",
                plan.x.scalar_type(), " x, got ", t.scalar_type());
    TORCH_CHECK(t.device() == plan.x.device(), op, ": ", name, " is on ", t.device(), " but x is on ",
                plan.x.device());
  };
  check("mean", mean);
  check("rstd", rstd);
}

}  // namespace

std::pair<at::Tensor, at::Tensor> affine_grads(const at::Tensor& sums, const at::Tensor& weight,
                                               const at::Tensor& bias) {
  // Two separate sums: the op's outputs must not alias.
  return {sums.select(1, 0).sum(0).to(weight.scalar_type()), sums.select(1, 1).sum(0).to(bias.scalar_type())};
}

ForwardPlan plan_forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps) {
  TORCH_CHECK(std::isfinite(eps) && eps >= 0.0, kForward, ": eps must be finite and >= 0, got ", eps);
  ForwardPlan f{plan_layer_norm(kForward, x, weight, bias)};
  f.y = at::empty_like(f.p.x, f.p.format);
  f.mean = at::empty({f.p.batch}, f.p.weight.options());
  f.rstd = at::empty({f.p.batch}, f.p.weight.options());
  if (f.p.per_sample == 0) {
    f.mean.fill_(std::numeric_limits<double>::quiet_NaN());
    f.rstd.fill_(std::numeric_limits<double>::quiet_NaN());
  }
  return f;
}

GradPlan plan_backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& weight,
                       const at::Tensor& bias, const at::Tensor& mean, const at::Tensor& rstd) {
  GradPlan g{plan_layer_norm(kBackward, x, weight, bias)};
  g.grad = plan_like_x(kBackward, "grad", grad, g.p);
  check_stats(kBackward, mean, rstd, g.p);
  return g;
}

GradPlan plan_double_backward(const at::Tensor& gg_x, const std::optional<at::Tensor>& gg_w,
                              const std::optional<at::Tensor>& gg_b, const at::Tensor& grad, const at::Tensor& x,
                              const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& mean,
                              const at::Tensor& rstd) {
  GradPlan g{plan_layer_norm(kDouble, x, weight, bias)};
  g.grad = plan_like_x(kDouble, "grad", grad, g.p);
  g.gg_x = plan_like_x(kDouble, "grad_grad_x", gg_x, g.p);
  g.gg_w = plan_channel_vector(kDouble, "grad_grad_weight", gg_w, g.p);
  g.gg_b = plan_channel_vector(kDouble, "grad_grad_bias", gg_b, g.p);
  check_stats(kDouble, mean, rstd, g.p);
  return g;
}

namespace {

// ---- CPU kernels ---------------------------------------------------------

template <typename T>
using Vec = at::vec::Vectorized<T>;

// The element math is written once for V = Vec<T> (a pack) and V = T (one element, the tails).
template <typename V, typename T>
V load(const T* p) {
  if constexpr (std::is_same_v<V, T>) {
    return *p;
  } else {
    return V::loadu(p);
  }
}

template <typename T>
void store(T v, T* p) {
  *p = v;
}

template <typename T>
void store(const Vec<T>& v, T* p) {
  v.store(p);
}

template <typename T>
T where_positive(T z, T pos, T neg) {
  return z > T(0) ? pos : neg;
}

template <typename T>
Vec<T> where_positive(const Vec<T>& z, const Vec<T>& pos, const Vec<T>& neg) {
  return Vec<T>::blendv(neg, pos, z > Vec<T>(T(0)));
}

template <typename T>
T lane_sum(const Vec<T>& v) {
  return at::vec::vec_reduce_all<T>([](const Vec<T>& a, const Vec<T>& b) { return a + b; }, v);
}

// Where a pack's per-channel values are: one channel for a whole plane (contiguous layout), or
// channels j, j + 1, ... (channels innermost).
struct PlaneChannel {
  int64_t c;
};
struct RowChannel {
  int64_t j;
};

template <typename V, typename T>
V channel(const PlaneChannel& where, const T* values) {
  return V(values[where.c]);
}

template <typename V, typename T>
V channel(const RowChannel& where, const T* values) {
  return load<V>(values + where.j);
}

// Calls body.template operator()<V>(i, where) over the elements i of one sample: V = Vec<T> for
// whole packs, T for the rest; `where` says where their channel values are.
template <typename T, typename Body>
void map_sample(const LayerNormPlan& p, const Body& body) {
  constexpr int64_t L = Vec<T>::size();
  if (p.run > 1) {
    for (int64_t c = 0; c < p.channels; ++c) {
      const int64_t end = (c + 1) * p.run;
      int64_t i = c * p.run;
      for (; i + L <= end; i += L) {
        body.template operator()<Vec<T>>(i, PlaneChannel{c});
      }
      for (; i < end; ++i) {
        body.template operator()<T>(i, PlaneChannel{c});
      }
    }
    return;
  }
  for (int64_t row = 0; row < p.per_sample; row += p.channels) {
    int64_t j = 0;
    for (; j + L <= p.channels; j += L) {
      body.template operator()<Vec<T>>(row + j, RowChannel{j});
    }
    for (; j < p.channels; ++j) {
      body.template operator()<T>(row + j, RowChannel{j});
    }
  }
}

// As map_sample, for a body returning K per-channel terms (std::array<V, K>): their sums over
// the sample go to sums[k * C + c]. A plane is summed in pack lanes and reduced once; rows add
// a pack of channels at a time.
template <typename T, int K, typename Body>
void reduce_sample(const LayerNormPlan& p, T* sums, const Body& body) {
  using V = Vec<T>;
  constexpr int64_t L = V::size();
  const int64_t C = p.channels;
  std::fill(sums, sums + K * C, T(0));
  if (p.run > 1) {
    for (int64_t c = 0; c < C; ++c) {
      std::array<V, K> lanes;
      lanes.fill(V(T(0)));
      std::array<T, K> tail{};
      const int64_t end = (c + 1) * p.run;
      int64_t i = c * p.run;
      for (; i + L <= end; i += L) {
        const std::array<V, K> t = body.template operator()<V>(i, PlaneChannel{c});
        for (int k = 0; k < K; ++k) {
          lanes[k] = lanes[k] + t[k];
        }
      }
      for (; i < end; ++i) {
        const std::array<T, K> t = body.template operator()<T>(i, PlaneChannel{c});
        for (int k = 0; k < K; ++k) {
          tail[k] += t[k];
        }
      }
      for (int k = 0; k < K; ++k) {
        sums[k * C + c] = lane_sum(lanes[k]) + tail[k];
      }
    }
    return;
  }
  for (int64_t row = 0; row < p.per_sample; row += C) {
    int64_t j = 0;
    for (; j + L <= C; j += L) {
      const std::array<V, K> t = body.template operator()<V>(row + j, RowChannel{j});
      for (int k = 0; k < K; ++k) {
        (V::loadu(sums + k * C + j) + t[k]).store(sums + k * C + j);
      }
    }
    for (; j < C; ++j) {
      const std::array<T, K> t = body.template operator()<T>(row + j, RowChannel{j});
      for (int k = 0; k < K; ++k) {
        sums[k * C + j] += t[k];
      }
    }
  }
}

// Sum of f over p[0, n): packs of T, added into a double every kBlock elements.
template <typename T, typename F>
double sum_over(const T* p, int64_t n, const F& f) {
  constexpr int64_t L = Vec<T>::size();
  constexpr int64_t kBlock = 4096;
  double total = 0;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t end = std::min(n, start + kBlock);
    Vec<T> lanes(T(0));
    T tail = 0;
    int64_t i = start;
    for (; i + L <= end; i += L) {
      lanes = lanes + f(Vec<T>::loadu(p + i));
    }
    for (; i < end; ++i) {
      tail += f(p[i]);
    }
    total += static_cast<double>(lane_sum(lanes)) + static_cast<double>(tail);
  }
  return total;
}

// What every pass knows of one sample, and what it recomputes per element from x.
template <typename T>
struct Sample {
  const T* w;
  const T* b;
  T mean, rstd, gain, neg_gain;

  template <typename V>
  struct Element {
    V xhat, w, a;  // normalised input, weight, activation slope a(z) (gain or slope * gain)
  };

  template <typename V, typename Where>
  Element<V> element(const T* x, int64_t i, const Where& where) const {
    const V xhat = (load<V>(x + i) - V(mean)) * V(rstd);
    const V wc = channel<V>(where, w);
    const V z = xhat * wc + channel<V>(where, b);
    return {xhat, wc, where_positive(z, V(gain), V(neg_gain))};
  }
};

template <typename T>
Sample<T> sample_of(const LayerNormPlan& p, T mean, T rstd, double slope, double gain) {
  return {p.weight.const_data_ptr<T>(), p.bias.const_data_ptr<T>(), mean, rstd, static_cast<T>(gain),
          static_cast<T>(slope * gain)};
}

template <typename T>
void forward_sample(const LayerNormPlan& p, const T* x, T* y, T* mean, T* rstd, double slope, double gain,
                    double eps) {
  const int64_t D = p.per_sample;
  const double mu = sum_over(x, D, [](auto v) { return v; }) / static_cast<double>(D);
  const T m = static_cast<T>(mu);
  const double var = sum_over(x, D, [m](auto v) {
    const auto d = v - decltype(v)(m);
    return d * d;
  }) / static_cast<double>(D);
  *mean = m;
  *rstd = static_cast<T>(1.0 / std::sqrt(var + eps));
  const Sample<T> s = sample_of(p, *mean, *rstd, slope, gain);
  map_sample<T>(p, [=]<typename V>(int64_t i, const auto& where) {
    const auto e = s.template element<V>(x, i, where);
    store((e.xhat * e.w + channel<V>(where, s.b)) * e.a, y + i);
  });
}

template <typename T>
void backward_sample(const LayerNormPlan& p, const Sample<T>& s, const T* g, const T* x, T* sums, T* gx) {
  reduce_sample<T, kBackwardSums>(p, sums, [=]<typename V>(int64_t i, const auto& where) {
    const auto e = s.template element<V>(x, i, where);
    const V h = load<V>(g + i) * e.a;
    return std::array<V, kBackwardSums>{h * e.xhat, h};
  });
  const BackwardCoeffs<T> k = backward_coeffs(sums, s.w, s.rstd, p.channels, p.per_sample);
  map_sample<T>(p, [=]<typename V>(int64_t i, const auto& where) {
    const auto e = s.template element<V>(x, i, where);
    const V h = load<V>(g + i) * e.a;
    store(V(s.rstd) * e.w * h + V(k.k_xhat) * e.xhat + V(k.k_one), gx + i);
  });
}

// Pointers of the double backward's tensors for one sample (gg_w and gg_b may be null).
template <typename T>
struct DoubleArgs {
  const T *gg, *g, *x, *gg_w, *gg_b;
  T *d_g, *d_x;
};

template <typename T>
void double_sample(const LayerNormPlan& p, const Sample<T>& s, const DoubleArgs<T>& a, T* sums, T* chan,
                   T* d_w) {
  reduce_sample<T, kDoubleSums>(p, sums, [=]<typename V>(int64_t i, const auto& where) {
    const auto e = s.template element<V>(a.x, i, where);
    const V h = load<V>(a.g + i) * e.a;
    const V gg = load<V>(a.gg + i);
    return std::array<V, kDoubleSums>{h * e.xhat, h, gg * h, gg, gg * e.xhat};
  });
  const DoubleCoeffs<T> k =
      double_coeffs(sums, s.w, a.gg_w, a.gg_b, s.rstd, p.channels, p.per_sample, chan, d_w);
  const T* t_xhat = chan;
  const T* t_one = chan + p.channels;
  map_sample<T>(p, [=]<typename V>(int64_t i, const auto& where) {
    const auto e = s.template element<V>(a.x, i, where);
    const V gg = load<V>(a.gg + i);
    const V t = channel<V>(where, t_xhat);
    store(e.a * (V(s.rstd) * e.w * gg + t * e.xhat + channel<V>(where, t_one)), a.d_g + i);
    store(V(k.k_gg) * gg + V(s.rstd) * t * (load<V>(a.g + i) * e.a) + V(k.k_xhat) * e.xhat + V(k.k_one),
          a.d_x + i);
  });
}

// Samples per task: at least kGrain elements, so that small inputs do not wake the thread pool.
int64_t sample_grain(const LayerNormPlan& p) {
  constexpr int64_t kGrain = 32768;
  return std::max<int64_t>(1, kGrain / std::max<int64_t>(1, p.per_sample));
}

void check_cpu(const char* op, const at::Tensor& x) {
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
              ": the CPU kernel takes float32 or float64, got ", x.scalar_type());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> forward_cpu(const at::Tensor& x, const at::Tensor& weight,
                                                           const at::Tensor& bias, double slope, double gain,
                                                           double eps) {
  check_cpu(kForward, x);
  const ForwardPlan f = plan_forward(x, weight, bias, eps);
  const LayerNormPlan& p = f.p;
  if (p.per_sample > 0) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "layer_norm_leaky_relu_cpu", [&] {
      const scalar_t* in = p.x.const_data_ptr<scalar_t>();
      scalar_t* out = f.y.mutable_data_ptr<scalar_t>();
      scalar_t* mu = f.mean.mutable_data_ptr<scalar_t>();
      scalar_t* rs = f.rstd.mutable_data_ptr<scalar_t>();
      at::parallel_for(0, p.batch, sample_grain(p), [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; ++n) {
          const int64_t offset = n * p.per_sample;
          forward_sample<scalar_t>(p, in + offset, out + offset, mu + n, rs + n, slope, gain, eps);
        }
      });
    });
  }
  return {f.y, f.mean, f.rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> backward_cpu(const at::Tensor& grad, const at::Tensor& x,
                                                            const at::Tensor& weight, const at::Tensor& bias,
                                                            const at::Tensor& mean, const at::Tensor& rstd,
                                                            double slope, double gain, double /*eps*/,
                                                            bool grad_affine) {
  check_cpu(kBackward, x);
  const GradPlan plan = plan_backward(grad, x, weight, bias, mean, rstd);
  const LayerNormPlan& p = plan.p;
  at::Tensor gx = at::empty_like(p.x, p.format);
  at::Tensor sums = at::zeros({p.batch, kBackwardSums, p.channels}, p.weight.options());
  if (p.per_sample > 0) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "layer_norm_leaky_relu_backward_cpu", [&] {
      const scalar_t* in = p.x.const_data_ptr<scalar_t>();
      const scalar_t* gin = plan.grad.const_data_ptr<scalar_t>();
      const scalar_t* mu = mean.const_data_ptr<scalar_t>();
      const scalar_t* rs = rstd.const_data_ptr<scalar_t>();
      scalar_t* out = gx.mutable_data_ptr<scalar_t>();
      scalar_t* partial = sums.mutable_data_ptr<scalar_t>();
      at::parallel_for(0, p.batch, sample_grain(p), [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; ++n) {
          const int64_t offset = n * p.per_sample;
          backward_sample<scalar_t>(p, sample_of(p, mu[n], rs[n], slope, gain), gin + offset, in + offset,
                                    partial + n * kBackwardSums * p.channels, out + offset);
        }
      });
    });
  }
  if (!grad_affine) {
    return {gx, at::Tensor(), at::Tensor()};
  }
  auto [gw, gb] = affine_grads(sums, weight, bias);
  return {gx, gw, gb};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> double_backward_cpu(
    const at::Tensor& gg_x, const std::optional<at::Tensor>& gg_w, const std::optional<at::Tensor>& gg_b,
    const at::Tensor& grad, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
    const at::Tensor& mean, const at::Tensor& rstd, double slope, double gain) {
  check_cpu(kDouble, x);
  const GradPlan plan = plan_double_backward(gg_x, gg_w, gg_b, grad, x, weight, bias, mean, rstd);
  const LayerNormPlan& p = plan.p;
  at::Tensor d_g = at::empty_like(p.x, p.format);
  at::Tensor d_x = at::empty_like(p.x, p.format);
  at::Tensor d_w = at::zeros({p.batch, p.channels}, p.weight.options());  // per-sample shares
  if (p.per_sample > 0) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "layer_norm_leaky_relu_double_backward_cpu", [&] {
      const scalar_t* mu = mean.const_data_ptr<scalar_t>();
      const scalar_t* rs = rstd.const_data_ptr<scalar_t>();
      scalar_t* share = d_w.mutable_data_ptr<scalar_t>();
      const auto ptr = [](const at::Tensor& t) { return t.defined() ? t.const_data_ptr<scalar_t>() : nullptr; };
      const DoubleArgs<scalar_t> base{ptr(plan.gg_x), ptr(plan.grad), ptr(p.x), ptr(plan.gg_w), ptr(plan.gg_b),
                                      d_g.mutable_data_ptr<scalar_t>(), d_x.mutable_data_ptr<scalar_t>()};
      at::parallel_for(0, p.batch, sample_grain(p), [&](int64_t n0, int64_t n1) {
        std::vector<scalar_t> sums(kDoubleSums * p.channels), chan(2 * p.channels);
        for (int64_t n = n0; n < n1; ++n) {
          const int64_t o = n * p.per_sample;
          const DoubleArgs<scalar_t> a{base.gg + o, base.g + o, base.x + o, base.gg_w, base.gg_b, base.d_g + o,
                                       base.d_x + o};
          double_sample<scalar_t>(p, sample_of(p, mu[n], rs[n], slope, gain), a, sums.data(), chan.data(),
                                  share + n * p.channels);
        }
      });
    });
  }
  return {d_g, d_x, d_w.sum(0).to(weight.scalar_type())};
}

// ---- Autograd ------------------------------------------------------------

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Calls below the Autograd key (the caller holds AutoDispatchBelowADInplaceOrView).
std::tuple<at::Tensor, at::Tensor, at::Tensor> call_forward(const at::Tensor& x, const at::Tensor& weight,
                                                            const at::Tensor& bias, double slope,
                                                            double gain, double eps) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("gantools::layer_norm_leaky_relu", "")
          .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                                const at::Tensor&, double, double, double)>();
  return op.call(x, weight, bias, slope, gain, eps);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> call_backward(const variable_list& saved, const at::Tensor& grad,
                                                             double slope, double gain, double eps,
                                                             bool grad_affine) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("gantools::layer_norm_leaky_relu_backward", "")
          .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
              const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
              const at::Tensor&, double, double, double, bool)>();
  return op.call(grad, saved[0], saved[1], saved[2], saved[3], saved[4], slope, gain, eps, grad_affine);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> call_double_backward(
    const at::Tensor& gg_x, const std::optional<at::Tensor>& gg_w, const std::optional<at::Tensor>& gg_b,
    const variable_list& saved, double slope, double gain) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("gantools::layer_norm_leaky_relu_double_backward", "")
          .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
              const at::Tensor&, const std::optional<at::Tensor>&, const std::optional<at::Tensor>&,
              const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
              const at::Tensor&, double, double)>();
  return op.call(gg_x, gg_w, gg_b, saved[0], saved[1], saved[2], saved[3], saved[4], saved[5], slope, gain);
}

void save_options(AutogradContext* ctx, double slope, double gain, double eps) {
  ctx->saved_data["slope"] = slope;
  ctx->saved_data["gain"] = gain;
  ctx->saved_data["eps"] = eps;
}

// The double backward as differentiable ATen ops (the algebra of double_coeffs), for a second
// backward that is itself differentiated: mean and rstd are recomputed from x, so that their
// dependence on x is part of the graph. Returns (d grad, d x, d weight).
variable_list composite_double_backward(const variable_list& grads, const variable_list& saved, double slope,
                                        double gain, double eps) {
  const at::Tensor &g = saved[0], &x = saved[1], &w = saved[2], &b = saved[3];
  std::vector<int64_t> dims, channel_dims{0}, view(x.dim(), 1);
  for (int64_t d = 1; d < x.dim(); ++d) {
    dims.push_back(d);
    if (d > 1) {
      channel_dims.push_back(d);
    }
  }
  view[1] = x.size(1);
  const auto mean = [&](const at::Tensor& t) { return t.mean(dims, /*keepdim=*/true); };
  const at::Tensor xc = x - mean(x);
  const at::Tensor r = (mean(xc * xc) + eps).rsqrt();
  const at::Tensor xhat = xc * r;
  const at::Tensor wv = w.view(view);
  // a(z) is piecewise constant: no gradient flows through it.
  const at::Tensor a = (xhat * wv + b.view(view) > 0).to(x.scalar_type()) * (gain - slope * gain) + slope * gain;
  const at::Tensor h = a * g, u = wv * h;
  const at::Tensor gg = grads[0].defined() ? grads[0] : at::zeros_like(x);
  const at::Tensor A = mean(u), B = mean(u * xhat), g1 = mean(gg), g2 = mean(gg * xhat);
  const at::Tensor v = r * (gg - g1 - xhat * g2);
  at::Tensor d_g = wv * v;
  at::Tensor q = -r * (gg * B + g2 * u);
  if (grads[1].defined()) {
    d_g = d_g + grads[1].view(view) * xhat;
    q = q + grads[1].view(view) * h;
  }
  if (grads[2].defined()) {
    d_g = d_g + grads[2].view(view);
  }
  const at::Tensor t = mean(gg * (u - A - xhat * B));
  const at::Tensor d_x = r * (q - mean(q) - xhat * (mean(q * xhat) + r * t));
  return {(a * d_g).to(g.scalar_type()), d_x.to(x.scalar_type()), (v * h).sum(channel_dims).to(w.scalar_type())};
}

// The gradient op, (grad, x, weight, bias, mean, rstd) -> (grad_x, grad_weight, grad_bias).
// mean and rstd are x's statistics, so its x-gradient includes their dependence on x.
class LayerNormLeakyReluGradFunction : public torch::autograd::Function<LayerNormLeakyReluGradFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& grad, const at::Tensor& x,
                               const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& mean,
                               const at::Tensor& rstd, double slope, double gain, double eps, bool grad_affine) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    ctx->set_materialize_grads(false);  // undefined incoming gradients stay undefined
    save_options(ctx, slope, gain, eps);
    ctx->save_for_backward({grad, x, weight, bias, mean, rstd});
    auto [gx, gw, gb] = call_backward({x, weight, bias, mean, rstd}, grad, slope, gain, eps, grad_affine);
    // Autograd takes no undefined outputs: without the affine gradients there is one output.
    return grad_affine ? variable_list{gx, gw, gb} : variable_list{gx};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list out(10);  // one per forward argument
    grads.resize(3);          // undefined gradients for the affine outputs when there are none
    if (!grads[0].defined() && !grads[1].defined() && !grads[2].defined()) {
      return out;
    }
    const variable_list saved = ctx->get_saved_variables();
    const double slope = ctx->saved_data["slope"].toDouble(), gain = ctx->saved_data["gain"].toDouble();
    if (at::GradMode::is_enabled()) {  // create_graph: this gradient will be differentiated too
      const variable_list d = composite_double_backward(grads, saved, slope, gain, ctx->saved_data["eps"].toDouble());
      std::copy(d.begin(), d.end(), out.begin());
      return out;
    }
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    const at::Tensor gg = grads[0].defined() ? grads[0] : at::zeros_like(saved[1]);
    const auto optional = [](const at::Tensor& t) { return t.defined() ? std::optional<at::Tensor>(t) : std::nullopt; };
    std::tie(out[0], out[1], out[2]) =
        call_double_backward(gg, optional(grads[1]), optional(grads[2]), saved, slope, gain);
    return out;
  }
};

class LayerNormLeakyReluFunction : public torch::autograd::Function<LayerNormLeakyReluFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                               const at::Tensor& bias, double slope, double gain, double eps) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    ctx->set_materialize_grads(false);
    save_options(ctx, slope, gain, eps);
    auto [y, mean, rstd] = call_forward(x, weight, bias, slope, gain, eps);
    ctx->mark_non_differentiable({mean, rstd});
    ctx->save_for_backward({x, weight, bias, mean, rstd});
    return {y, mean, rstd};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list out(6);
    if (!grads[0].defined()) {
      return out;
    }
    // A penalty's input gradient asks for no parameter gradients: the gradient op skips their sums.
    const bool affine = ctx->needs_input_grad(1) || ctx->needs_input_grad(2);
    const variable_list s = ctx->get_saved_variables();
    const variable_list d = LayerNormLeakyReluGradFunction::apply(
        grads[0], s[0], s[1], s[2], s[3], s[4], ctx->saved_data["slope"].toDouble(),
        ctx->saved_data["gain"].toDouble(), ctx->saved_data["eps"].toDouble(), affine);
    out[0] = d[0];
    if (ctx->needs_input_grad(1)) {
      out[1] = d[1];
    }
    if (ctx->needs_input_grad(2)) {
      out[2] = d[2];
    }
    return out;
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> forward_autograd(const at::Tensor& x, const at::Tensor& weight,
                                                                const at::Tensor& bias, double slope, double gain,
                                                                double eps) {
  const variable_list out = LayerNormLeakyReluFunction::apply(x, weight, bias, slope, gain, eps);
  return {out[0], out[1], out[2]};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> backward_autograd(const at::Tensor& grad, const at::Tensor& x,
                                                                 const at::Tensor& weight, const at::Tensor& bias,
                                                                 const at::Tensor& mean, const at::Tensor& rstd,
                                                                 double slope, double gain, double eps,
                                                                 bool grad_affine) {
  const variable_list out =
      LayerNormLeakyReluGradFunction::apply(grad, x, weight, bias, mean, rstd, slope, gain, eps, grad_affine);
  return {out[0], grad_affine ? out[1] : at::Tensor(), grad_affine ? out[2] : at::Tensor()};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(gantools, m) {
  m.def("layer_norm_leaky_relu(Tensor x, Tensor weight, Tensor bias, float negative_slope, float gain, "
        "float eps) -> (Tensor, Tensor, Tensor)");
  m.def("layer_norm_leaky_relu_backward(Tensor grad, Tensor x, Tensor weight, Tensor bias, Tensor mean, "
        "Tensor rstd, float negative_slope, float gain, float eps, bool grad_affine) -> (Tensor, Tensor, Tensor)");
  m.def("layer_norm_leaky_relu_double_backward(Tensor grad_grad_x, Tensor? grad_grad_weight, "
        "Tensor? grad_grad_bias, Tensor grad, Tensor x, Tensor weight, Tensor bias, Tensor mean, Tensor rstd, "
        "float negative_slope, float gain) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(gantools, CPU, m) {
  m.impl("layer_norm_leaky_relu", &forward_cpu);
  m.impl("layer_norm_leaky_relu_backward", &backward_cpu);
  m.impl("layer_norm_leaky_relu_double_backward", &double_backward_cpu);
}

// The double backward has no Autograd kernel: it runs only where no graph is recorded (see
// LayerNormLeakyReluGradFunction::backward).
TORCH_LIBRARY_IMPL(gantools, Autograd, m) {
  m.impl("layer_norm_leaky_relu", &forward_autograd);
  m.impl("layer_norm_leaky_relu_backward", &backward_autograd);
}

}  // namespace gantools
