// gradient_penalty: schema, argument checks and CPU kernels of the fused WGAN-GP reduction.
//
// Forward: per-sample L2 norm of the critic's input gradient over all
// non-batch dims, then weight * mean((norm - center)^2) (gap clamped at 0 when
// one_sided), in one pass over the gradient. It also returns the norms (in
// op-math precision) so the backward needs no second reduction:
// d penalty / d g = 2 weight / N * gap / norm * g, a scale per sample.
//
// Autograd is registered here too, in C++ at the Autograd key (for every
// device): the backward is the fused gradient op, whose own gradient (needed
// when the penalty's gradient is itself differentiated) is composed of ATen ops.
#include "gradient_penalty.h"

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "common.h"

namespace gantools {

at::Tensor plan_gradient_penalty(const at::Tensor& grad, double weight, double center) {
  TORCH_CHECK(grad.dim() >= 1, "gradient_penalty: grad must have a batch dim, got a 0-dim tensor");
  TORCH_CHECK(at::isFloatingType(grad.scalar_type()),
              "gradient_penalty: grad must be a floating-point tensor, got ", grad.scalar_type());
  TORCH_CHECK(std::isfinite(weight), "gradient_penalty: weight must be finite, got ", weight);
  TORCH_CHECK(std::isfinite(center), "gradient_penalty: center must be finite, got ", center);
  return grad.contiguous(kernel_format(grad));
}

at::Tensor plan_gradient_penalty_backward(const at::Tensor& grad_output, const at::Tensor& grad,
                                          const at::Tensor& norms, double weight, double center) {
  at::Tensor g = plan_gradient_penalty(grad, weight, center);
  TORCH_CHECK(grad_output.numel() == 1, "gradient_penalty_backward: grad_output must hold one "
              "element (the penalty is a scalar), got shape ", grad_output.sizes());
  TORCH_CHECK(norms.dim() == 1 && norms.size(0) == grad.size(0), "gradient_penalty_backward: "
              "norms must have shape (", grad.size(0), ",), got ", norms.sizes());
  const at::ScalarType opmath = grad.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  TORCH_CHECK(norms.scalar_type() == opmath, "gradient_penalty_backward: norms must be ", opmath,
              " for a ", grad.scalar_type(), " grad, got ", norms.scalar_type());
  TORCH_CHECK(grad_output.device() == grad.device() && norms.device() == grad.device(),
              "gradient_penalty_backward: grad_output, grad and norms must share a device, got ",
              grad_output.device(), ", ", grad.device(), ", ", norms.device());
  return g;
}

namespace {

// Elements of one sample handled by one parallel task.
constexpr int64_t kChunk = 32768;

// Tasks per thread so that each thread gets at least kChunk elements: waking the
// thread pool for less work costs more than it saves (milliseconds on a busy machine).
int64_t task_grain(int64_t per_sample) {
  return std::max<int64_t>(1, kChunk / std::max<int64_t>(1, std::min(per_sample, kChunk)));
}

template <typename scalar_t>
scalar_t sum_squares(const scalar_t* __restrict__ p, int64_t n) {
  using Vec = at::vec::Vectorized<scalar_t>;
  // Two accumulators keep two independent FMA chains in flight.
  Vec acc0(scalar_t(0)), acc1(scalar_t(0));
  int64_t i = 0;
  for (; i + 2 * Vec::size() <= n; i += 2 * Vec::size()) {
    const Vec a = Vec::loadu(p + i), b = Vec::loadu(p + i + Vec::size());
    acc0 = at::vec::fmadd(a, a, acc0);
    acc1 = at::vec::fmadd(b, b, acc1);
  }
  scalar_t total = at::vec::vec_reduce_all<scalar_t>(
      [](const Vec& x, const Vec& y) { return x + y; }, acc0 + acc1);
  for (; i < n; ++i) {
    total += p[i] * p[i];
  }
  return total;
}

template <typename scalar_t>
void scale_span(const scalar_t* __restrict__ p, scalar_t* __restrict__ dst, int64_t n, scalar_t scale) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const Vec vscale(scale);
  int64_t i = 0;
  for (; i + Vec::size() <= n; i += Vec::size()) {
    (Vec::loadu(p + i) * vscale).store(dst + i);
  }
  for (; i < n; ++i) {
    dst[i] = p[i] * scale;
  }
}

std::tuple<at::Tensor, at::Tensor> gradient_penalty_cpu(const at::Tensor& grad, double weight,
                                                        double center, bool one_sided) {
  TORCH_CHECK(grad.scalar_type() == at::kFloat || grad.scalar_type() == at::kDouble,
              "gradient_penalty: the CPU kernel takes float32 or float64, got ", grad.scalar_type());
  const at::Tensor g = plan_gradient_penalty(grad, weight, center);
  const int64_t batch = g.size(0);
  const int64_t per_sample = batch > 0 ? g.numel() / batch : 0;
  at::Tensor norms = at::empty({batch}, g.options());
  at::Tensor penalty = at::empty({}, g.options());
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "gradient_penalty_cpu", [&] {
    const scalar_t* p = g.const_data_ptr<scalar_t>();
    const int64_t chunks = std::max<int64_t>(1, (per_sample + kChunk - 1) / kChunk);
    // Partial sums per (sample, chunk), combined in a fixed order afterwards,
    // so the result does not depend on how the work was split between threads.
    std::vector<double> partial(batch * chunks, 0.0);
    at::parallel_for(0, batch * chunks, task_grain(per_sample), [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t n = t / chunks, k = t % chunks;
        const int64_t begin = k * kChunk, end = std::min(per_sample, begin + kChunk);
        if (begin < end) {
          partial[t] = sum_squares<scalar_t>(p + n * per_sample + begin, end - begin);
        }
      }
    });
    scalar_t* norm_out = norms.mutable_data_ptr<scalar_t>();
    double total = 0.0;
    for (int64_t n = 0; n < batch; ++n) {
      double sq = 0.0;
      for (int64_t k = 0; k < chunks; ++k) {
        sq += partial[n * chunks + k];
      }
      const double norm = std::sqrt(sq);
      double gap = norm - center;
      if (one_sided && gap < 0.0) {
        gap = 0.0;
      }
      norm_out[n] = static_cast<scalar_t>(norm);
      total += gap * gap;
    }
    // An empty batch gives NaN, as the mean of nothing does in PyTorch.
    *penalty.mutable_data_ptr<scalar_t>() =
        static_cast<scalar_t>(weight * (total / static_cast<double>(batch)));
  });
  return {penalty, norms};
}

at::Tensor gradient_penalty_backward_cpu(const at::Tensor& grad_output, const at::Tensor& grad,
                                         const at::Tensor& norms, double weight, double center,
                                         bool one_sided) {
  TORCH_CHECK(grad.scalar_type() == at::kFloat || grad.scalar_type() == at::kDouble,
              "gradient_penalty_backward: the CPU kernel takes float32 or float64, got ",
              grad.scalar_type());
  const at::Tensor g = plan_gradient_penalty_backward(grad_output, grad, norms, weight, center);
  at::Tensor out = at::empty_like(g, kernel_format(g));
  const int64_t batch = g.size(0);
  if (out.numel() == 0) {
    return out;
  }
  const int64_t per_sample = g.numel() / batch;
  const double upstream = grad_output.item<double>();
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "gradient_penalty_backward_cpu", [&] {
    const scalar_t* p = g.const_data_ptr<scalar_t>();
    const scalar_t* norm = norms.const_data_ptr<scalar_t>();
    scalar_t* dst = out.mutable_data_ptr<scalar_t>();
    const int64_t chunks = (per_sample + kChunk - 1) / kChunk;
    at::parallel_for(0, batch * chunks, task_grain(per_sample), [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t n = t / chunks, k = t % chunks;
        const int64_t begin = n * per_sample + k * kChunk;
        const int64_t end = n * per_sample + std::min(per_sample, (k + 1) * kChunk);
        const scalar_t scale = static_cast<scalar_t>(
            upstream * penalty_factor<double>(norm[n], weight, center, one_sided, batch));
        scale_span<scalar_t>(p + begin, dst + begin, end - begin, scale);
      }
    });
  });
  return out;
}

// ---- Autograd ------------------------------------------------------------

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Calls below the Autograd key (the caller holds AutoDispatchBelowADInplaceOrView).
std::tuple<at::Tensor, at::Tensor> call_forward(const at::Tensor& grad, double weight, double center,
                                                bool one_sided) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("gantools::gradient_penalty", "")
          .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, double, double, bool)>();
  return op.call(grad, weight, center, one_sided);
}

at::Tensor call_backward(const at::Tensor& grad_output, const at::Tensor& grad, const at::Tensor& norms,
                         double weight, double center, bool one_sided) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("gantools::gradient_penalty_backward", "")
                             .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                               double, double, bool)>();
  return op.call(grad_output, grad, norms, weight, center, one_sided);
}

void save_options(AutogradContext* ctx, double weight, double center, bool one_sided) {
  ctx->saved_data["weight"] = weight;
  ctx->saved_data["center"] = center;
  ctx->saved_data["one_sided"] = one_sided;
}

// backward(u, g) = u * c(r) * g per sample, r = ||g||, c(r) = 2 w / N * gap(r) / r. Its gradient
// for an incoming hh, with s = <hh_n, g_n>:
//   d/du = sum_n c_n s_n,   d/dg = u * (c_n hh_n + s_n c'(r_n) / r_n g_n),   c'(r) / r = 2 w c / (N r^3)
// where the gap is active (c = center). Composite ATen ops, so higher orders work too.
class GradientPenaltyBackwardFunction
    : public torch::autograd::Function<GradientPenaltyBackwardFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& grad_output, const at::Tensor& grad,
                            const at::Tensor& norms, double weight, double center, bool one_sided) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    ctx->set_materialize_grads(false);  // undefined incoming gradients stay undefined
    save_options(ctx, weight, center, one_sided);
    ctx->save_for_backward({grad_output, grad});
    return call_backward(grad_output, grad, norms, weight, center, one_sided);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& u = saved[0];
    const at::Tensor& g = saved[1];
    const at::Tensor& hh = grads[0];
    const double weight = ctx->saved_data["weight"].toDouble();
    const double center = ctx->saved_data["center"].toDouble();
    const bool one_sided = ctx->saved_data["one_sided"].toBool();
    // Sizes stay symbolic here (SymInt) so that the formula can be traced with dynamic shapes.
    if (!hh.defined()) {
      return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    }
    if (g.sym_numel() == 0) {
      return {at::zeros_like(u), at::zeros_like(g), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    }
    const at::Tensor flat = g.flatten(1);  // (N, D)
    const at::Tensor r = flat.norm(2, {1});
    const at::Tensor gap = r - center;
    at::Tensor active = r > 0;
    if (one_sided) {
      active = active.logical_and(gap >= 0);
    }
    const at::Scalar batch(g.sym_size(0));  // N > 0 here, as g has elements
    const double k = 2.0 * weight;          // times 1 / N below
    const at::Tensor safe_r = at::where(active, r, at::ones_like(r));
    const at::Tensor coef = at::where(active, gap / safe_r, at::zeros_like(r)) * k / batch;
    const at::Tensor slope = at::where(active, center / safe_r.pow(3), at::zeros_like(r)) * k / batch;
    const at::Tensor s = (hh.flatten(1) * flat).sum(1);  // (N,)
    at::Tensor coef_b = coef, s_slope_b = s * slope;
    for (int64_t d = 1; d < g.dim(); ++d) {
      coef_b = coef_b.unsqueeze(-1);
      s_slope_b = s_slope_b.unsqueeze(-1);
    }
    const at::Tensor d_u = (coef * s).sum().reshape_as(u);
    const at::Tensor d_g = u * (coef_b * hh + s_slope_b * g);
    return {d_u, d_g, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

class GradientPenaltyFunction : public torch::autograd::Function<GradientPenaltyFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& grad, double weight,
                               double center, bool one_sided) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    ctx->set_materialize_grads(false);  // undefined incoming gradients stay undefined
    save_options(ctx, weight, center, one_sided);
    auto [penalty, norms] = call_forward(grad, weight, center, one_sided);
    ctx->mark_non_differentiable({norms});
    ctx->save_for_backward({grad, norms});
    return {penalty, norms};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    at::Tensor d_grad;
    if (grads[0].defined()) {
      const variable_list saved = ctx->get_saved_variables();
      d_grad = GradientPenaltyBackwardFunction::apply(
          grads[0], saved[0], saved[1], ctx->saved_data["weight"].toDouble(),
          ctx->saved_data["center"].toDouble(), ctx->saved_data["one_sided"].toBool());
    }
    return {d_grad, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

std::tuple<at::Tensor, at::Tensor> gradient_penalty_autograd(const at::Tensor& grad, double weight,
                                                             double center, bool one_sided) {
  const variable_list out = GradientPenaltyFunction::apply(grad, weight, center, one_sided);
  return {out[0], out[1]};
}

at::Tensor gradient_penalty_backward_autograd(const at::Tensor& grad_output, const at::Tensor& grad,
                                              const at::Tensor& norms, double weight, double center,
                                              bool one_sided) {
  return GradientPenaltyBackwardFunction::apply(grad_output, grad, norms, weight, center, one_sided);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(gantools, m) {
  m.def("gradient_penalty(Tensor grad, float weight, float center, bool one_sided) -> "
        "(Tensor, Tensor)");
  m.def("gradient_penalty_backward(Tensor grad_output, Tensor grad, Tensor norms, float weight, "
        "float center, bool one_sided) -> Tensor");
}

TORCH_LIBRARY_IMPL(gantools, CPU, m) {
  m.impl("gradient_penalty", &gradient_penalty_cpu);
  m.impl("gradient_penalty_backward", &gradient_penalty_backward_cpu);
}

TORCH_LIBRARY_IMPL(gantools, Autograd, m) {
  m.impl("gradient_penalty", &gradient_penalty_autograd);
  m.impl("gradient_penalty_backward", &gradient_penalty_backward_autograd);
}

}  // namespace gantools
