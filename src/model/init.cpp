// Compensated truncated normal (reference/eqr_spec.md §1.2) and generator helpers.

#include "eqr/model/init.h"

#include <cmath>
#include <mutex>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>
#include <torch/version.h>

namespace eqr::model {

namespace {

constexpr double kSqrt2 = 1.41421356237309504880;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;  // (2 pi)^-1/2

/// Where the samples are drawn: the generator's device when it differs from the tensor's.
bool draw_elsewhere(const at::Tensor& tensor, const std::optional<at::Generator>& gen) {
  return gen.has_value() && gen->defined() && gen->device() != tensor.device();
}

c10::optional<at::Generator> as_c10(const std::optional<at::Generator>& gen) {
  if (gen.has_value() && gen->defined()) return c10::optional<at::Generator>(*gen);
  return c10::nullopt;
}

}  // namespace

double truncated_unit_std() {
  // Same closed form as the reference (lower = -2, upper = 2).
  const double lower = -kTruncBound;
  const double upper = kTruncBound;
  const double a = std::erf(lower / kSqrt2);
  const double b = std::erf(upper / kSqrt2);
  const double z = (b - a) / 2.0;
  const double pdf_u = kInvSqrt2Pi * std::exp(-0.5 * lower * lower);
  const double pdf_l = kInvSqrt2Pi * std::exp(-0.5 * upper * upper);
  const double r = (pdf_u - pdf_l) / z;
  return std::sqrt(1.0 - (upper * pdf_u - lower * pdf_l) / z - r * r);
}

double compensated_std(double std) { return std / truncated_unit_std(); }

at::Tensor& trunc_normal_(at::Tensor& tensor, double std, std::optional<at::Generator> gen) {
  torch::NoGradGuard no_grad;
  if (std == 0.0) {
    tensor.zero_();
    return tensor;
  }
  const double a = std::erf(-kTruncBound / kSqrt2);
  const double b = std::erf(kTruncBound / kSqrt2);
  const double comp = compensated_std(std);
  at::Tensor work = draw_elsewhere(tensor, gen) ? at::empty(tensor.sizes(), tensor.options().device(gen->device()))
                                                : tensor;
  work.uniform_(a, b, as_c10(gen));
  work.erfinv_();
  work.mul_(kSqrt2 * comp);
  work.clamp_(-kTruncBound * comp, kTruncBound * comp);
  if (!work.is_same(tensor)) tensor.copy_(work);
  return tensor;
}

at::Tensor trunc_normal(c10::IntArrayRef shape, double std, const c10::TensorOptions& options,
                        std::optional<at::Generator> gen) {
  at::Tensor t = at::empty(shape, options);
  trunc_normal_(t, std, gen);
  return t;
}

at::Tensor randn(c10::IntArrayRef shape, const c10::TensorOptions& options, std::optional<at::Generator> gen) {
  torch::NoGradGuard no_grad;
  const auto opts = options.requires_grad(false);
  if (gen.has_value() && gen->defined() && gen->device() != opts.device()) {
    return at::randn(shape, as_c10(gen), opts.device(gen->device())).to(opts.device());
  }
  return at::randn(shape, as_c10(gen), opts);
}

at::Generator copy_generator(const at::Generator& gen) {
#if TORCH_VERSION_MAJOR < 2
  if (gen.device().is_cpu()) {
    at::Generator copy = at::detail::createCPUGenerator();
    copy.set_state(gen.get_state());
    return copy;
  }
#endif
  return gen.clone();
}

at::Generator make_generator(const c10::Device& device, uint64_t seed) {
  at::Generator base = at::globalContext().defaultGenerator(device);  // a handle: shares the default
  at::Generator gen;
  {
    std::lock_guard<std::mutex> lock(base.mutex());
    gen = copy_generator(base);
  }
  gen.set_current_seed(seed);
  return gen;
}

}  // namespace eqr::model
