// bias_leaky_relu: schema, argument checks and CPU kernels of y = leaky_relu(x + b[c]) * gain.
//
// The gradient is a separate op, bias_leaky_relu_backward(grad, out) =
// grad * gain * (out > 0 ? 1 : slope), which is linear in `grad` and piecewise
// constant in `out`: its own gradient is the same op again, so any order of
// differentiation stays fused. It reads the saved output's sign, never the
// input, which is why negative slopes (that would flip the sign) are refused.
//
// Autograd is registered here too, in C++ at the Autograd key (for every
// device), so neither the forward nor any order of backward goes through Python.
#include "bias_leaky_relu.h"

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <vector>

#include "common.h"

namespace gantools {

namespace {

// Elements per parallel task: large enough to amortise scheduling, small
// enough to split an (N, C, H, W) activation between cores.
constexpr int64_t kGrain = 32768;

at::ScalarType opmath_type(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

}  // namespace

BiasLeakyReluPlan plan_bias_leaky_relu(const at::Tensor& x, const std::optional<at::Tensor>& bias,
                                       double negative_slope) {
  TORCH_CHECK(at::isFloatingType(x.scalar_type()),
              "bias_leaky_relu: x must be a floating-point tensor, got ", x.scalar_type());
  TORCH_CHECK(negative_slope >= 0.0,
              "bias_leaky_relu: negative_slope must be >= 0 (the gradient is read from the output's "
              "sign), got ", negative_slope);
  BiasLeakyReluPlan plan;
  plan.format = kernel_format(x);
  plan.x = x.contiguous(plan.format);
  plan.channels = 1;
  plan.run = x.numel() > 0 ? x.numel() : 1;
  if (bias.has_value() && bias->defined()) {
    const at::Tensor& b = *bias;
    TORCH_CHECK(x.dim() >= 2, "bias_leaky_relu: x must have a channel dim (N, C, ...) when bias is "
                "given, got shape ", x.sizes());
    TORCH_CHECK(b.dim() == 1 && b.size(0) == x.size(1), "bias_leaky_relu: bias must have shape (",
                x.size(1), ",) to match x.size(1), got ", b.sizes());
    TORCH_CHECK(b.device() == x.device(), "bias_leaky_relu: bias is on ", b.device(),
                " but x is on ", x.device());
    TORCH_CHECK(at::isFloatingType(b.scalar_type()),
                "bias_leaky_relu: bias must be a floating-point tensor, got ", b.scalar_type());
    // The arithmetic runs in op-math precision, so a float32 bias next to a
    // bfloat16 activation (autocast) is used as is, without rounding it first.
    plan.bias = b.to(opmath_type(x.scalar_type())).contiguous();
    plan.channels = x.size(1);
    plan.run = channel_run(x, plan.format);
  }
  return plan;
}

std::pair<at::Tensor, at::Tensor> plan_bias_leaky_relu_backward(const at::Tensor& grad,
                                                                const at::Tensor& out,
                                                                double negative_slope) {
  TORCH_CHECK(grad.sizes() == out.sizes(), "bias_leaky_relu_backward: grad has shape ",
              grad.sizes(), " but out has shape ", out.sizes());
  TORCH_CHECK(grad.scalar_type() == out.scalar_type(), "bias_leaky_relu_backward: grad is ",
              grad.scalar_type(), " but out is ", out.scalar_type());
  TORCH_CHECK(grad.device() == out.device(), "bias_leaky_relu_backward: grad is on ",
              grad.device(), " but out is on ", out.device());
  TORCH_CHECK(at::isFloatingType(out.scalar_type()),
              "bias_leaky_relu_backward: out must be a floating-point tensor, got ",
              out.scalar_type());
  TORCH_CHECK(negative_slope >= 0.0, "bias_leaky_relu_backward: negative_slope must be >= 0, got ",
              negative_slope);
  const at::MemoryFormat format = kernel_format(out);
  return {grad.contiguous(format), out.contiguous(format)};
}

namespace {

// The inner loops are free functions taking everything by value: inside a
// lambda that captures by reference, every store could alias the captures and
// the compiler reloads them each iteration.
template <typename scalar_t>
void leaky_span(const scalar_t* __restrict__ in, scalar_t* __restrict__ out, int64_t n, scalar_t b,
                scalar_t gain, scalar_t neg_gain) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const Vec vb(b), vpos(gain), vneg(neg_gain), zero(scalar_t(0));
  int64_t i = 0;
  for (; i + Vec::size() <= n; i += Vec::size()) {
    const Vec v = Vec::loadu(in + i) + vb;
    Vec::blendv(v * vneg, v * vpos, v > zero).store(out + i);
  }
  for (; i < n; ++i) {
    const scalar_t v = in[i] + b;
    out[i] = v > scalar_t(0) ? v * gain : v * neg_gain;
  }
}

// One row of a channels-innermost tensor: element c takes bias[c].
template <typename scalar_t>
void leaky_row(const scalar_t* __restrict__ in, const scalar_t* __restrict__ bias,
               scalar_t* __restrict__ out, int64_t n, scalar_t gain, scalar_t neg_gain) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const Vec vpos(gain), vneg(neg_gain), zero(scalar_t(0));
  int64_t c = 0;
  for (; c + Vec::size() <= n; c += Vec::size()) {
    const Vec v = Vec::loadu(in + c) + Vec::loadu(bias + c);
    Vec::blendv(v * vneg, v * vpos, v > zero).store(out + c);
  }
  for (; c < n; ++c) {
    const scalar_t v = in[c] + bias[c];
    out[c] = v > scalar_t(0) ? v * gain : v * neg_gain;
  }
}

template <typename scalar_t>
void grad_span(const scalar_t* __restrict__ g, const scalar_t* __restrict__ o, scalar_t* __restrict__ dst,
               int64_t n, scalar_t gain, scalar_t neg_gain, scalar_t sign) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const Vec vpos(gain), vneg(neg_gain), vsign(sign), zero(scalar_t(0));
  int64_t i = 0;
  for (; i + Vec::size() <= n; i += Vec::size()) {
    const Vec factor = Vec::blendv(vneg, vpos, Vec::loadu(o + i) * vsign > zero);
    (Vec::loadu(g + i) * factor).store(dst + i);
  }
  for (; i < n; ++i) {
    dst[i] = g[i] * (o[i] * sign > scalar_t(0) ? gain : neg_gain);
  }
}

template <typename scalar_t>
void forward_cpu(const BiasLeakyReluPlan& plan, at::Tensor& y, scalar_t slope, scalar_t gain) {
  const scalar_t* in = plan.x.const_data_ptr<scalar_t>();
  scalar_t* out = y.mutable_data_ptr<scalar_t>();
  const scalar_t neg_gain = slope * gain;
  const int64_t numel = plan.x.numel();
  const int64_t run = plan.run, channels = plan.channels;
  const scalar_t* bias = plan.bias.defined() ? plan.bias.const_data_ptr<scalar_t>() : nullptr;

  if (bias == nullptr || run > 1) {
    // Stretches of `run` elements share one bias value.
    at::parallel_for(0, numel, kGrain, [=](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end;) {
        const int64_t r = i / run;
        const int64_t stop = std::min(end, (r + 1) * run);
        leaky_span<scalar_t>(in + i, out + i, stop - i, bias ? bias[r % channels] : scalar_t(0), gain,
                             neg_gain);
        i = stop;
      }
    });
    return;
  }
  // Channels innermost (channels_last, or (N, C)): each row of C elements
  // takes the whole bias vector.
  const int64_t rows = numel / channels;
  at::parallel_for(0, rows, std::max<int64_t>(1, kGrain / channels), [=](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      leaky_row<scalar_t>(in + r * channels, bias, out + r * channels, channels, gain, neg_gain);
    }
  });
}

template <typename scalar_t>
void backward_cpu(const at::Tensor& grad, const at::Tensor& out, at::Tensor& gx, scalar_t slope,
                  scalar_t gain) {
  const scalar_t* g = grad.const_data_ptr<scalar_t>();
  const scalar_t* o = out.const_data_ptr<scalar_t>();
  scalar_t* dst = gx.mutable_data_ptr<scalar_t>();
  const scalar_t neg_gain = slope * gain;
  // With a negative gain the active side of the output is below zero.
  const scalar_t sign = gain < scalar_t(0) ? scalar_t(-1) : scalar_t(1);
  at::parallel_for(0, grad.numel(), kGrain, [=](int64_t begin, int64_t end) {
    grad_span<scalar_t>(g + begin, o + begin, dst + begin, end - begin, gain, neg_gain, sign);
  });
}

void check_cpu_dtype(const at::Tensor& t, const char* op) {
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, op,
              ": the CPU kernel takes float32 or float64, got ", t.scalar_type());
}

at::Tensor bias_leaky_relu_cpu(const at::Tensor& x, const std::optional<at::Tensor>& bias,
                               double negative_slope, double gain) {
  check_cpu_dtype(x, "bias_leaky_relu");
  const BiasLeakyReluPlan plan = plan_bias_leaky_relu(x, bias, negative_slope);
  at::Tensor y = at::empty_like(plan.x, plan.format);
  if (y.numel() == 0) {
    return y;
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bias_leaky_relu_cpu", [&] {
    forward_cpu<scalar_t>(plan, y, static_cast<scalar_t>(negative_slope),
                          static_cast<scalar_t>(gain));
  });
  return y;
}

at::Tensor bias_leaky_relu_backward_cpu(const at::Tensor& grad, const at::Tensor& out,
                                        double negative_slope, double gain) {
  check_cpu_dtype(out, "bias_leaky_relu_backward");
  auto [g, o] = plan_bias_leaky_relu_backward(grad, out, negative_slope);
  at::Tensor gx = at::empty_like(o, kernel_format(o));
  if (gx.numel() == 0) {
    return gx;
  }
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "bias_leaky_relu_backward_cpu", [&] {
    backward_cpu<scalar_t>(g, o, gx, static_cast<scalar_t>(negative_slope),
                           static_cast<scalar_t>(gain));
  });
  return gx;
}

// ---- Autograd ------------------------------------------------------------

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Calls below the Autograd key (the caller holds AutoDispatchBelowADInplaceOrView).
at::Tensor call_forward(const at::Tensor& x, const std::optional<at::Tensor>& bias, double slope,
                        double gain) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("gantools::bias_leaky_relu", "")
                             .typed<at::Tensor(const at::Tensor&, const std::optional<at::Tensor>&,
                                               double, double)>();
  return op.call(x, bias, slope, gain);
}

at::Tensor call_backward(const at::Tensor& grad, const at::Tensor& out, double slope, double gain) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("gantools::bias_leaky_relu_backward", "")
                             .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double, double)>();
  return op.call(grad, out, slope, gain);
}

// The gradient op g -> g * gain * (out > 0 ? 1 : slope) is linear in g and
// piecewise constant in out, so its gradient is the same op (and zero for out):
// every order of backward stays fused.
class BiasLeakyReluGradFunction : public torch::autograd::Function<BiasLeakyReluGradFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& grad, const at::Tensor& out,
                            double slope, double gain) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    // An undefined incoming gradient means "no gradient": keep it undefined rather than
    // materialising zeros, so that nothing runs behind it (see BiasLeakyReluFunction).
    ctx->set_materialize_grads(false);
    ctx->saved_data["slope"] = slope;
    ctx->saved_data["gain"] = gain;
    ctx->save_for_backward({out});
    return call_backward(grad, out, slope, gain);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    at::Tensor grad_grad;
    if (grads[0].defined()) {
      grad_grad = apply(grads[0], ctx->get_saved_variables()[0], ctx->saved_data["slope"].toDouble(),
                        ctx->saved_data["gain"].toDouble());
    }
    return {grad_grad, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

class BiasLeakyReluFunction : public torch::autograd::Function<BiasLeakyReluFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x,
                            const std::optional<at::Tensor>& bias, double slope, double gain) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    ctx->set_materialize_grads(false);
    const bool with_bias = bias.has_value() && bias->defined();
    ctx->saved_data["slope"] = slope;
    ctx->saved_data["gain"] = gain;
    ctx->saved_data["with_bias"] = with_bias;
    ctx->saved_data["bias_dtype"] = with_bias ? bias->scalar_type() : x.scalar_type();
    at::Tensor y = call_forward(x, bias, slope, gain);
    // The output's sign says which side of the kink each element is on.
    ctx->save_for_backward({y});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    // In a penalty's second backward, the only path into the forward activations runs
    // through the gradient op's `out` input, whose gradient is zero (undefined): stopping
    // here saves a whole backward pass of zeros through the critic's convolutions.
    if (!grads[0].defined()) {
      return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    }
    const at::Tensor grad_x =
        BiasLeakyReluGradFunction::apply(grads[0], ctx->get_saved_variables()[0],
                                         ctx->saved_data["slope"].toDouble(),
                                         ctx->saved_data["gain"].toDouble());
    at::Tensor grad_bias;
    // Edge 1 is the bias when there is one. A penalty's input gradient (autograd.grad
    // with respect to the critic's input) asks for no parameter gradients: skip the sum.
    if (ctx->saved_data["with_bias"].toBool() && ctx->needs_input_grad(1)) {
      std::vector<int64_t> dims{0};
      for (int64_t d = 2; d < grad_x.dim(); ++d) {
        dims.push_back(d);
      }
      grad_bias = grad_x.sum(dims).to(ctx->saved_data["bias_dtype"].toScalarType());
    }
    return {grad_x, grad_bias, at::Tensor(), at::Tensor()};
  }
};

at::Tensor bias_leaky_relu_autograd(const at::Tensor& x, const std::optional<at::Tensor>& bias,
                                    double negative_slope, double gain) {
  return BiasLeakyReluFunction::apply(x, bias, negative_slope, gain);
}

at::Tensor bias_leaky_relu_backward_autograd(const at::Tensor& grad, const at::Tensor& out,
                                             double negative_slope, double gain) {
  return BiasLeakyReluGradFunction::apply(grad, out, negative_slope, gain);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(gantools, m) {
  m.def("bias_leaky_relu(Tensor x, Tensor? bias, float negative_slope, float gain) -> Tensor");
  m.def("bias_leaky_relu_backward(Tensor grad, Tensor out, float negative_slope, float gain) -> "
        "Tensor");
}

TORCH_LIBRARY_IMPL(gantools, CPU, m) {
  m.impl("bias_leaky_relu", &bias_leaky_relu_cpu);
  m.impl("bias_leaky_relu_backward", &bias_leaky_relu_backward_cpu);
}

TORCH_LIBRARY_IMPL(gantools, Autograd, m) {
  m.impl("bias_leaky_relu", &bias_leaky_relu_autograd);
  m.impl("bias_leaky_relu_backward", &bias_leaky_relu_backward_autograd);
}

}  // namespace gantools
