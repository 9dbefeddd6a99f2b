// Argument checks and layout planning for bias_leaky_relu, shared by the CPU and CUDA kernels.
#pragma once

#include <ATen/ATen.h>

#include <optional>

namespace gantools {

// Everything a device kernel needs, after the checks: dense input, the bias
// converted to the type the arithmetic runs in, and the channel geometry.
struct BiasLeakyReluPlan {
  at::Tensor x;     // dense in `format`
  at::Tensor bias;  // undefined, or (C,) contiguous in the op-math dtype
  at::MemoryFormat format;
  int64_t channels;  // size of dim 1 (1 without bias)
  int64_t run;       // consecutive elements sharing a channel
};

BiasLeakyReluPlan plan_bias_leaky_relu(const at::Tensor& x, const std::optional<at::Tensor>& bias,
                                       double negative_slope);

// The gradient op walks `grad` in the layout of `out`; returns both dense in it.
std::pair<at::Tensor, at::Tensor> plan_bias_leaky_relu_backward(const at::Tensor& grad,
                                                                const at::Tensor& out,
                                                                double negative_slope);

}  // namespace gantools
