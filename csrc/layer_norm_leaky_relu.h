// Argument checks and the per-sample algebra of layer_norm_leaky_relu, shared by the CPU and CUDA kernels.
//
// Per sample n (D elements over all non-batch dims), with a(z) = gain * (z > 0 ? 1 : slope):
//   forward    xhat = (x - mean) * rstd,  z = w[c] xhat + b[c],  y = a(z) z
//   backward   h = a(z) g,  gx = rstd (w[c] h - A - xhat B),  A = mean(w h),  B = mean(w h xhat),
//              gw[c] = sum h xhat,  gb[c] = sum h   (sums over the batch and the channel's positions)
// The double backward, for incoming gradients (gg_x, gg_w, gg_b) of (gx, gw, gb), is in double_coeffs.
#pragma once

#include <ATen/ATen.h>
#include <c10/macros/Macros.h>

#include <optional>

namespace gantools {

// One sample of x is a dense block of `per_sample` elements: `channels` planes of `run`
// elements each (contiguous layout), or rows of `channels` elements (run == 1: channels_last,
// or an (N, C) input).
struct LayerNormPlan {
  at::Tensor x;             // dense in `format`
  at::Tensor weight, bias;  // (C,) contiguous, in the op-math dtype
  at::MemoryFormat format;
  int64_t batch, channels, run, per_sample;
};

// The forward after its checks, with its outputs: y dense in x's layout; mean and rstd (N,) in the
// op-math dtype, NaN for samples without elements (as torch's mean of nothing).
struct ForwardPlan {
  LayerNormPlan p;
  at::Tensor y, mean, rstd;
};

ForwardPlan plan_forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps);

// The gradient ops' arguments after their checks, dense in x's layout; gg_* are the double
// backward's (gg_w and gg_b undefined when not given).
struct GradPlan {
  LayerNormPlan p;
  at::Tensor grad, gg_x, gg_w, gg_b;
};

GradPlan plan_backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& weight,
                       const at::Tensor& bias, const at::Tensor& mean, const at::Tensor& rstd);

GradPlan plan_double_backward(const at::Tensor& gg_x, const std::optional<at::Tensor>& gg_w,
                              const std::optional<at::Tensor>& gg_b, const at::Tensor& grad, const at::Tensor& x,
                              const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& mean,
                              const at::Tensor& rstd);

// grad_weight and grad_bias (in weight's and bias's dtypes) from the backward's per-sample sums
// (N, kBackwardSums, C), added over the samples in order.
std::pair<at::Tensor, at::Tensor> affine_grads(const at::Tensor& sums, const at::Tensor& weight,
                                               const at::Tensor& bias);

inline at::ScalarType opmath_type(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

// Per-channel sums the backward's reduction collects for one sample: P[c] = sum h xhat, Q[c] = sum h.
constexpr int kBackwardSums = 2;
// The double backward's: P, Q, R[c] = sum gg_x h, G1[c] = sum gg_x, G2[c] = sum gg_x xhat.
constexpr int kDoubleSums = 5;

// gx = rstd w[c] h + k_xhat xhat + k_one for one sample.
template <typename T>
struct BackwardCoeffs {
  T k_xhat, k_one;
};

// From one sample's sums (P at sums[c], Q at sums[C + c]).
template <typename T>
C10_HOST_DEVICE inline BackwardCoeffs<T> backward_coeffs(const T* sums, const T* w, T rstd, int64_t C,
                                                         int64_t D) {
  T a = 0, b = 0;
  for (int64_t c = 0; c < C; ++c) {
    a += w[c] * sums[C + c];
    b += w[c] * sums[c];
  }
  return {-rstd * b / T(D), -rstd * a / T(D)};
}

// For one sample, with Gamma1 = mean(gg_x), Gamma2 = mean(gg_x xhat), u = w h and the means
// A, B as in the backward:
//   d/dg  = a(z) (rstd w[c] gg_x + t_xhat[c] xhat + t_one[c])
//   d/dx  = k_gg gg_x + rstd t_xhat[c] h + k_xhat xhat + k_one
//   d/dw  = sum over samples of rstd (R[c] - Gamma1 Q[c] - Gamma2 P[c])   (this sample's share: gw)
// where t_xhat = gg_w - rstd w Gamma2 and t_one = gg_b - rstd w Gamma1; the bias has none (a is
// piecewise constant). The x term includes how mean and rstd move with x.
template <typename T>
struct DoubleCoeffs {
  T k_gg, k_xhat, k_one;
};

// From one sample's kDoubleSums x C sums; gg_w and gg_b may be null (zero). Writes t_xhat,
// t_one (2 x C) and this sample's share of d/dw (C).
template <typename T>
C10_HOST_DEVICE inline DoubleCoeffs<T> double_coeffs(const T* sums, const T* w, const T* gg_w, const T* gg_b,
                                                     T rstd, int64_t C, int64_t D, T* chan, T* gw) {
  const T *P = sums, *Q = sums + C, *R = sums + 2 * C, *G1 = sums + 3 * C, *G2 = sums + 4 * C;
  T g1 = 0, g2 = 0, a = 0, b = 0, e = 0, f1 = 0, f2 = 0;
  for (int64_t c = 0; c < C; ++c) {
    g1 += G1[c];
    g2 += G2[c];
    a += w[c] * Q[c];
    b += w[c] * P[c];
    e += w[c] * R[c];
    if (gg_w != nullptr) {
      f1 += gg_w[c] * Q[c];
      f2 += gg_w[c] * P[c];
    }
  }
  const T inv = T(1) / T(D);
  g1 *= inv, g2 *= inv, a *= inv, b *= inv, e *= inv, f1 *= inv, f2 *= inv;
  const T r = rstd;
  for (int64_t c = 0; c < C; ++c) {
    const T wr = w[c] * r;
    chan[c] = (gg_w != nullptr ? gg_w[c] : T(0)) - wr * g2;
    chan[C + c] = (gg_b != nullptr ? gg_b[c] : T(0)) - wr * g1;
    gw[c] = r * (R[c] - g1 * Q[c] - g2 * P[c]);
  }
  // q = -r (gg_x B + Gamma2 u) + gg_w h;  d/dx = r (q - mean(q) - xhat (mean(q xhat) + r T)),
  // T = mean(gg_x (u - A - xhat B)) = E - A Gamma1 - B Gamma2.
  const T mean_q = -r * (b * g1 + g2 * a) + f1;
  const T mean_qx = T(-2) * r * b * g2 + f2;
  const T k = mean_qx + r * (e - a * g1 - b * g2);
  return {-r * r * b, -r * k, -r * mean_q};
}

}  // namespace gantools
