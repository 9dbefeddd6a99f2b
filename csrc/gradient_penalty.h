// Argument checks for the gradient-penalty reduction, shared by the CPU and CUDA kernels.
#pragma once

#include <ATen/ATen.h>
#include <c10/macros/Macros.h>

namespace gantools {

// Checks the critic's input gradient and returns it with each sample's
// elements in one dense block (contiguous or channels_last).
at::Tensor plan_gradient_penalty(const at::Tensor& grad, double weight, double center);

// Checks the backward op's arguments; returns the dense gradient.
at::Tensor plan_gradient_penalty_backward(const at::Tensor& grad_output, const at::Tensor& grad,
                                          const at::Tensor& norms, double weight, double center);

// Per-sample factor of the penalty's gradient: d penalty / d g = factor(norm) * g
// (host and device code share it).
template <typename T>
C10_HOST_DEVICE inline T penalty_factor(T norm, T weight, T center, bool one_sided, int64_t batch) {
  T gap = norm - center;
  if (one_sided && gap < T(0)) {
    gap = T(0);
  }
  // The norm's derivative g / ||g|| is taken as 0 at g = 0, like torch.norm.
  return norm > T(0) ? T(2) * weight * gap / (norm * T(batch)) : T(0);
}

}  // namespace gantools
