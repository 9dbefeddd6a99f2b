// C++ test of the gantools ops through the dispatcher, against values worked out by hand.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <tuple>

namespace {

int passed = 0;
int failed = 0;

void expect_close(const std::string& name, const at::Tensor& got, const at::Tensor& want) {
  const bool ok = got.sizes() == want.sizes() && at::allclose(got, want, 1e-6, 1e-6);
  std::printf("%s %s\n", ok ? "PASS" : "FAIL", name.c_str());
  if (!ok) {
    std::printf("  got  %s\n  want %s\n", got.toString().c_str(), want.toString().c_str());
    std::fflush(stdout);
  }
  (ok ? passed : failed)++;
}

at::Tensor tensor(std::initializer_list<double> values) {
  return at::tensor(std::vector<double>(values), at::kDouble);
}

at::Tensor scalar(double value) {
  return at::scalar_tensor(value, at::kDouble);
}

c10::OperatorHandle op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
}

void test_bias_leaky_relu() {
  auto forward = op("gantools::bias_leaky_relu")
                     .typed<at::Tensor(const at::Tensor&, const std::optional<at::Tensor>&, double,
                                       double)>();
  auto backward = op("gantools::bias_leaky_relu_backward")
                      .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double, double)>();
  // x: (1, 2, 2); channel 0 gets bias 0.5, channel 1 gets -1; slope 0.2, gain 2.
  // channel 0: -1 + 0.5 = -0.5 -> -0.1 * 2 = -0.2;  1 + 0.5 = 1.5 -> 3
  // channel 1:  0.5 - 1 = -0.5 -> -0.2;             3 - 1 = 2 -> 4
  const at::Tensor x = tensor({-1, 1, 0.5, 3}).view({1, 2, 2});
  const at::Tensor y = forward.call(x, tensor({0.5, -1}), 0.2, 2.0);
  expect_close("bias_leaky_relu forward", y, tensor({-0.2, 3, -0.2, 4}).view({1, 2, 2}));
  // Without bias and with slope 0 it is ReLU: max(x, 0) * 2.
  expect_close("bias_leaky_relu relu", forward.call(x, std::nullopt, 0.0, 2.0),
               tensor({0, 2, 1, 6}).view({1, 2, 2}));
  // Channels innermost (2-D input): bias follows the column.
  expect_close("bias_leaky_relu 2-D", forward.call(tensor({-1, 1, 1, -3}).view({2, 2}),
                                                   tensor({2, 0}), 0.5, 1.0),
               tensor({1, 1, 3, -1.5}).view({2, 2}));
  // Gradient: grad * gain where the output is positive, grad * gain * slope elsewhere.
  expect_close("bias_leaky_relu backward", backward.call(tensor({1, 1, 1, 1}).view({1, 2, 2}), y, 0.2, 2.0),
               tensor({0.4, 2, 0.4, 2}).view({1, 2, 2}));
}

void test_gradient_penalty() {
  auto forward = op("gantools::gradient_penalty")
                     .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, double, double, bool)>();
  auto backward = op("gantools::gradient_penalty_backward")
                      .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, double,
                                        double, bool)>();
  // Norms 5 and 0; center 1: gaps 4 and -1, mean of squares 8.5, weight 10 -> 85.
  const at::Tensor g = tensor({3, 4, 0, 0}).view({2, 2});
  auto [penalty, norms] = forward.call(g, 10.0, 1.0, false);
  expect_close("gradient_penalty forward", penalty, scalar(85));
  expect_close("gradient_penalty norms", norms, tensor({5, 0}));
  // One-sided: the second gap is clamped to 0 -> 10 * 16 / 2 = 80.
  expect_close("gradient_penalty one-sided", std::get<0>(forward.call(g, 10.0, 1.0, true)),
               scalar(80));
  // d/dg = 2 * 10 / 2 * gap / norm * g = 10 * 4 / 5 * (3, 4) = (24, 32); 0 where the norm is 0.
  expect_close("gradient_penalty backward", backward.call(scalar(1), g, norms, 10.0, 1.0, false),
               tensor({24, 32, 0, 0}).view({2, 2}));
}

void test_layer_norm_leaky_relu() {
  using Triple = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
  auto forward = op("gantools::layer_norm_leaky_relu")
                     .typed<Triple(const at::Tensor&, const at::Tensor&, const at::Tensor&, double, double, double)>();
  auto backward = op("gantools::layer_norm_leaky_relu_backward")
                      .typed<Triple(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                    const at::Tensor&, const at::Tensor&, double, double, double, bool)>();
  auto double_backward =
      op("gantools::layer_norm_leaky_relu_double_backward")
          .typed<Triple(const at::Tensor&, const std::optional<at::Tensor>&, const std::optional<at::Tensor>&,
                        const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                        const at::Tensor&, const at::Tensor&, double, double)>();
  // x: (1, 2, 2) = (-1, 1 | -1, 1): mean 0, variance 1, so with eps 0 xhat = x. weight (2, 0.5),
  // bias (0.5, -1): z = (-1.5, 2.5 | -1.5, -0.5); slope 0.2, gain 2: y = z * (2 or 0.4).
  const at::Tensor x = tensor({-1, 1, -1, 1}).view({1, 2, 2});
  const at::Tensor w = tensor({2, 0.5}), b = tensor({0.5, -1});
  auto [y, mean, rstd] = forward.call(x, w, b, 0.2, 2.0, 0.0);
  expect_close("layer_norm_leaky_relu forward", y, tensor({-0.6, 5, -0.6, -0.2}).view({1, 2, 2}));
  expect_close("layer_norm_leaky_relu mean, rstd", at::cat({mean, rstd}), tensor({0, 1}));
  // Rows of channels (2-D input): sample (3, 5) has mean 4 and variance 1, so the same xhat.
  expect_close("layer_norm_leaky_relu 2-D", std::get<0>(forward.call(tensor({-1, 1, 3, 5}).view({2, 2}), w, b, 0.2, 2.0, 0.0)),
               tensor({-0.6, -0.2, -0.6, -0.2}).view({2, 2}));
  // grad = 1: h = a(z) = (0.4, 2 | 0.4, 0.4), u = w h = (0.8, 4 | 0.2, 0.2), A = mean(u) = 1.3,
  // B = mean(u xhat) = 0.8: grad_x = u - A - xhat B; grad_weight = sum h xhat, grad_bias = sum h.
  const at::Tensor ones = at::ones_like(x);
  auto [gx, gw, gb] = backward.call(ones, x, w, b, mean, rstd, 0.2, 2.0, 0.0, true);
  expect_close("layer_norm_leaky_relu backward x", gx, tensor({0.3, 1.9, -0.3, -1.9}).view({1, 2, 2}));
  expect_close("layer_norm_leaky_relu backward weight, bias", at::cat({gw, gb}), tensor({1.6, 0, 2.4, 0.8}));
  expect_close("layer_norm_leaky_relu backward, no affine",
               std::get<0>(backward.call(ones, x, w, b, mean, rstd, 0.2, 2.0, 0.0, false)), gx);
  // Gradient of <grad_x, (1, 0, 0, 0)>: v = (0.5, 0 | -0.5, 0), d grad = a w v, d weight = sum v h,
  // d x = q - mean(q) - xhat (mean(q xhat) + mean(gg (u - A - xhat B))) with q = -0.8 gg + 0.25 u.
  const at::Tensor gg = tensor({1, 0, 0, 0}).view({1, 2, 2});
  auto [d_g, d_x, d_w] = double_backward.call(gg, std::nullopt, std::nullopt, ones, x, w, b, mean, rstd, 0.2, 2.0);
  expect_close("layer_norm_leaky_relu double backward grad", d_g, tensor({0.4, 0, -0.1, 0}).view({1, 2, 2}));
  expect_close("layer_norm_leaky_relu double backward x", d_x, tensor({-0.25, 0.4, 0.4, -0.55}).view({1, 2, 2}));
  expect_close("layer_norm_leaky_relu double backward weight", d_w, tensor({0.2, -0.2}));
}

// The ops' autograd is registered in C++: differentiate through the dispatcher, twice.
void test_autograd() {
  using torch::autograd::grad;
  auto blrelu = op("gantools::bias_leaky_relu")
                    .typed<at::Tensor(const at::Tensor&, const std::optional<at::Tensor>&, double,
                                      double)>();
  const at::Tensor x = tensor({-1, 1, 0.5, 3}).view({1, 2, 2}).requires_grad_(true);
  const at::Tensor b = tensor({0.5, -1}).requires_grad_(true);
  const at::Tensor y = blrelu.call(x, b, 0.2, 2.0);
  // Outputs -0.2, 3, -0.2, 4: d/dx = gain * (slope or 1); d/db sums each channel's row.
  const auto first = grad({y}, {x, b}, {at::ones_like(y)}, std::nullopt, /*create_graph=*/true);
  expect_close("bias_leaky_relu autograd x", first[0], tensor({0.4, 2, 0.4, 2}).view({1, 2, 2}));
  expect_close("bias_leaky_relu autograd bias", first[1], tensor({2.4, 2.4}));

  auto penalty = op("gantools::gradient_penalty")
                     .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, double, double, bool)>();
  const at::Tensor g = tensor({3, 4}).view({1, 2}).requires_grad_(true);
  // center 0: penalty r^2 = 25, gradient 2 g = (6, 8), Hessian 2 I.
  const at::Tensor p0 = std::get<0>(penalty.call(g, 1.0, 0.0, false));
  const at::Tensor d0 = grad({p0}, {g}, {}, std::nullopt, true)[0];
  expect_close("gradient_penalty autograd", d0, tensor({6, 8}).view({1, 2}));
  expect_close("gradient_penalty double backward, center 0",
               grad({d0.sum()}, {g})[0], tensor({2, 2}).view({1, 2}));
  // center 1, r = 5: Hessian 2 ((1 - 1/r) I + g g^T / r^3); times (1, 1): (1.936, 2.048).
  const at::Tensor p1 = std::get<0>(penalty.call(g, 1.0, 1.0, false));
  const at::Tensor d1 = grad({p1}, {g}, {}, std::nullopt, true)[0];
  expect_close("gradient_penalty double backward, center 1",
               grad({d1.sum()}, {g})[0], tensor({1.936, 2.048}).view({1, 2}));

  // layer_norm_leaky_relu through autograd: the double backward above, reached by differentiating twice.
  auto lnrelu = op("gantools::layer_norm_leaky_relu")
                    .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                                          const at::Tensor&, double, double, double)>();
  const at::Tensor xl = tensor({-1, 1, -1, 1}).view({1, 2, 2}).requires_grad_(true);
  const at::Tensor wl = tensor({2, 0.5}).requires_grad_(true);
  const at::Tensor yl = std::get<0>(lnrelu.call(xl, wl, tensor({0.5, -1}), 0.2, 2.0, 0.0));
  const at::Tensor gl = at::ones_like(yl).requires_grad_(true);
  const at::Tensor gxl = grad({yl}, {xl}, {gl}, std::nullopt, true)[0];
  const auto second = grad({gxl.flatten()[0]}, {gl, xl, wl});
  expect_close("layer_norm_leaky_relu autograd grad", second[0], tensor({0.4, 0, -0.1, 0}).view({1, 2, 2}));
  expect_close("layer_norm_leaky_relu autograd x", second[1], tensor({-0.25, 0.4, 0.4, -0.55}).view({1, 2, 2}));
  expect_close("layer_norm_leaky_relu autograd weight", second[2], tensor({0.2, -0.2}));
}

}  // namespace

int main() {
  try {
    test_bias_leaky_relu();
    test_gradient_penalty();
    test_layer_norm_leaky_relu();
    test_autograd();
  } catch (const std::exception& e) {
    std::printf("FAIL exception: %s\n", e.what());
    failed++;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
